import AppleProtocol
import Foundation
import OrchardStorage
import OrchardTestSupport
import XCTest

/// Admin input at and beyond its documented limits gets a 4xx with a message, never a 500
/// (hardening issue, items 11 and 12).
final class AdminInputTests: XCTestCase {
    func testBadParametersAreRefusedWithAMessage() async throws {
        let stack = try await Fixture.shared.prepare()
        for path in ["/devices?limit=-1", "/devices?limit=1001", "/devices?limit=many", "/activity?limit=0", "/activity?limit=-1"] {
            let answer = try await stack.admin.call(.GET, path)
            XCTAssertEqual(answer.status, 400, "\(path): \(answer.text)")
            XCTAssertTrue(answer.text.contains("limit must be"), answer.text)
        }
        let atLimit = try await stack.admin.call(.GET, "/devices?limit=1000")
        XCTAssertEqual(atLimit.status, 200)

        let hugeUses = try await stack.admin.call(.POST, "/enrollment-links", json: ["name": "x", "maxUses": 127_919_335_875])
        XCTAssertEqual(hugeUses.status, 400, hugeUses.text)
        let controlName = try await stack.admin.call(.POST, "/enrollment-links", json: ["name": "bad\u{0}name"])
        XCTAssertEqual(controlName.status, 400, controlName.text)
        // A NUL inside a JSON string reaches PostgreSQL, which refuses it: a 400, not a 500.
        let device = try await Fixture.shared.enrollWithExternalIdentity()
        let nul = try await stack.admin.call(.PUT, "/devices/\(device.udid)/declarations", json: ["identifiers": ["bad\u{0}id"]])
        XCTAssertEqual(nul.status, 400, nul.text)
        let named = try await stack.admin.call(.PUT, "/declarations/\(String(repeating: "d", count: 65))", json: [
            "type": "com.apple.configuration.passcode.settings", "payload": ["MinimumLength": 4],
        ])
        XCTAssertEqual(named.status, 400, named.text)
    }

    /// A command queued for more enrollments than one statement's 65,535 parameters allow activity
    /// entries for (it was a 500 above ~4,000 enrolled devices).
    func testACommandForThousandsOfEnrollmentsIsQueuedForEach() async throws {
        let stack = try await Fixture.shared.prepare()
        let database = try Database(conninfo: try TestEnvironment.require("ORCHARD_DATABASE_URL"), schema: "checkin_gateway",
                                    maxConnections: 1)
        let prefix = "BULK\(UUID().uuidString.prefix(8))-"
        let ids = (0..<7000).map { "\(prefix)\($0)" }
        try await database.query("""
            INSERT INTO enrollments (id, udid, enrollment_kind, status, identity_fingerprint, topic, product_name)
            SELECT x, x, 'device', 'enrolled', 'bulk-test-' || x, 'bulk', 'BulkTest' FROM unnest($1::text[]) AS x
            """, [.text("{" + ids.joined(separator: ",") + "}")])
        do {
            try await queueForAll(ids, prefix: prefix, stack: stack, database: database)
        } catch {
            try await database.query("DELETE FROM enrollments WHERE id LIKE $1", [.text("\(prefix)%")])
            throw error
        }
        // Other tests list devices: these go again.
        try await database.query("DELETE FROM enrollments WHERE id LIKE $1", [.text("\(prefix)%")])
        await database.shutdown()
    }

    private func queueForAll(_ ids: [String], prefix: String, stack: Fixture.Ready, database: Database) async throws {
        let queued = try await stack.admin.call(.POST, "/commands", json: ["enrollmentIDs": ids, "command": ["type": "DeviceInformation"]])
        XCTAssertEqual(queued.status, 200, String(queued.text.prefix(300)))
        XCTAssertEqual((try queued.json()["queuedFor"] as? [String])?.count, 7000)
        let audited = try await database.query("SELECT count(*)::int AS n FROM activity_log WHERE device_id LIKE $1 AND action = 'command.queued'",
                                               [.text("\(prefix)%")]).first?.int("n")
        XCTAssertEqual(audited, 7000, "one audit entry per enrollment")
        let tooMany = try await stack.admin.call(.POST, "/commands", json: ["enrollmentIDs": ids + ids, "command": ["type": "DeviceInformation"]])
        XCTAssertEqual(tooMany.status, 400, "the documented limit is 10,000")
    }
}
