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

/// A link use is spent only once its profile was recorded (hardening issue, item 5).
final class EnrollmentLinkClaimTests: XCTestCase {
    /// The state a gateway killed between claiming a use and recording the profile leaves behind: the
    /// use counted, its claim unsettled. The device is told to retry (503 + Retry-After), and gets its link back soon after.
    func testAUseWhoseDeliveryNeverCompletedIsGivenBack() async throws {
        let stack = try await Fixture.shared.prepare()
        let link = try await stack.admin.expect(.POST, "/enrollment-links", json: ["name": "crash", "maxUses": 1])
        let linkID = try unwrap(link["id"] as? String), url = try unwrap(link["url"] as? String)
        let database = try Database(conninfo: try TestEnvironment.require("ORCHARD_DATABASE_URL"), schema: "checkin_gateway",
                                    maxConnections: 1)
        try await database.query("""
            WITH used AS (UPDATE enrollment_links SET uses = 1 WHERE id = $1::uuid RETURNING id)
            INSERT INTO link_claims (id, link_id, claimed_at) SELECT gen_random_uuid(), id, now() - interval '1 hour' FROM used
            """, [.text(linkID)])
        await database.shutdown()
        // Not 410 (gone for good) while the claim stands: the device is told to retry (fault suite, gateway kill -9).
        let refused = try await http(.GET, url)
        XCTAssertEqual(refused.status, 503, "held by an unsettled claim")
        XCTAssertNotNil(refused.headers["retry-after"])
        let back = try await eventually(timeout: 90) { try await http(.GET, url).status == 200 }
        XCTAssertTrue(back, "the unsettled use was given back")
        // Its profile was recorded, so the use is spent for good now.
        let again = try await http(.GET, url)
        XCTAssertEqual(again.status, 410)
    }

    /// A download that succeeds settles its claim: nothing is given back later.
    func testADeliveredProfileSettlesItsClaim() async throws {
        let stack = try await Fixture.shared.prepare()
        let link = try await stack.admin.expect(.POST, "/enrollment-links", json: ["name": "settled", "maxUses": 1])
        let served = try await http(.GET, try unwrap(link["url"] as? String))
        XCTAssertEqual(served.status, 200)
        let database = try Database(conninfo: try TestEnvironment.require("ORCHARD_DATABASE_URL"), schema: "checkin_gateway",
                                    maxConnections: 1)
        let claims = try await database.query("SELECT count(*)::int AS n FROM link_claims WHERE link_id = $1::uuid",
                                              [.text(try unwrap(link["id"] as? String))]).first?.int("n")
        await database.shutdown()
        XCTAssertEqual(claims, 0)
    }
}
