import AppleProtocol
import Foundation
import OrchardCrypto
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

/// A link's use is spent when a device enrolls with the profile it paid for (hardening issue, item 5: "a use is
/// spent only when what it pays for has been delivered"; the fault suite's gateway kill showed that the profile's
/// record is not yet its delivery).
final class EnrollmentLinkClaimTests: XCTestCase {
    private func linkView(_ stack: Fixture.Ready, _ id: String) async throws -> [String: Any] {
        let page = try await stack.admin.expect(.GET, "/enrollment-links")
        return try unwrap((page["items"] as? [[String: Any]])?.first { $0["id"] as? String == id })
    }

    private func withDatabase(_ sql: String, _ parameters: [SQLValue]) async throws {
        let database = try Database(conninfo: try TestEnvironment.require("ORCHARD_DATABASE_URL"), schema: "checkin_gateway",
                                    maxConnections: 1)
        do { try await database.query(sql, parameters); await database.shutdown() }
        catch { await database.shutdown(); throw error }
    }

    /// A single-use link whose first answer never reached the device: the device downloads again and enrolls; of the
    /// other profiles the link served, none enrolls once its use is spent — not even two racing each other.
    func testADeviceWhoseAnswerWasLostDownloadsAgainAndOnlyOneDeviceEnrolls() async throws {
        let stack = try await Fixture.shared.prepare()
        let link = try await stack.admin.expect(.POST, "/enrollment-links", json: ["name": "lost answer", "maxUses": 1])
        let linkID = try unwrap(link["id"] as? String), url = try unwrap(link["url"] as? String)

        let lost = try await http(.GET, url)
        XCTAssertEqual(lost.status, 200, lost.text)
        let retried = try await http(.GET, url)
        XCTAssertEqual(retried.status, 200, "the use is not spent by a download: \(retried.text)")
        let third = try await http(.GET, url)
        XCTAssertEqual(third.status, 200, third.text)
        var view = try await linkView(stack, linkID)
        XCTAssertEqual(view["uses"] as? Int, 0)
        XCTAssertEqual(view["pendingProfiles"] as? Int, 3)

        func install(_ body: [UInt8]) throws -> (String, SimulatedDevice) {
            let udid = newUDID()
            return (udid, try SimulatedDevice.installing(body, roots: [stack.profileCA], udid: udid, serial: "SER\(udid.suffix(8))").0)
        }
        let (lostUDID, lostDevice) = try install(lost.body)
        let (retriedUDID, retriedDevice) = try install(retried.body)
        let (thirdUDID, thirdDevice) = try install(third.body)
        XCTAssertNotEqual(lostDevice.identity.certificate.der, retriedDevice.identity.certificate.der, "each download its own identity")

        // Two of them Authenticate at once: the link's one use goes to exactly one.
        async let a = retriedDevice.authenticate()
        async let b = thirdDevice.authenticate()
        let raced = try await [a, b]
        XCTAssertEqual(raced.map(\.status).sorted(), [200, 403], raced.map(\.text).joined(separator: " | "))
        let (winner, winnerUDID, loserUDID) = raced[0].status == 200 ? (retriedDevice, retriedUDID, thirdUDID)
                                                                     : (thirdDevice, thirdUDID, retriedUDID)
        XCTAssertTrue(raced.first { $0.status == 403 }?.text.contains("used up") == true)
        let tokenUpdate = try await winner.tokenUpdate()
        XCTAssertEqual(tokenUpdate.status, 200)

        view = try await linkView(stack, linkID)
        XCTAssertEqual(view["uses"] as? Int, 1)
        XCTAssertEqual(view["pendingProfiles"] as? Int, 2, "the winner's claim is settled; the others' expire")
        let spent = try await http(.GET, url)
        XCTAssertEqual(spent.status, 410, "spent by the device that enrolled")

        // The first profile's identity is refused too, and leaves nothing behind.
        let late = try await lostDevice.authenticate()
        XCTAssertEqual(late.status, 403, late.text)
        for refused in [lostUDID, loserUDID] {
            let device = try await stack.admin.call(.GET, "/devices/\(refused)")
            XCTAssertEqual(device.status, 404, "nothing stored for \(refused)")
        }
        // The winner's Authenticate again (it re-installs, or retries a lost answer) spends nothing more.
        let again = try await winner.authenticate()
        XCTAssertEqual(again.status, 200, again.text)
        view = try await linkView(stack, linkID)
        XCTAssertEqual(view["uses"] as? Int, 1)
        let enrolled = try await stack.admin.expect(.GET, "/devices/\(winnerUDID)")
        XCTAssertEqual(enrolled["id"] as? String, winnerUDID)
    }

    /// A limited link serves its uses left plus `spareClaims` profiles at a time (503 + Retry-After beyond, not 410:
    /// the device retries); claims expire — a download never recorded (the gateway died) soon, a delivered profile
    /// not enrolled with after an hour — and give their places back.
    func testALimitedLinkBoundsItsOutstandingClaimsAndExpiredClaimsComeBack() async throws {
        let stack = try await Fixture.shared.prepare()
        let link = try await stack.admin.expect(.POST, "/enrollment-links", json: ["name": "crash", "maxUses": 1])
        let linkID = try unwrap(link["id"] as? String), url = try unwrap(link["url"] as? String)
        // Four profiles delivered and one download under way, as other devices left them.
        try await withDatabase("""
            WITH counted AS (UPDATE enrollment_links SET outstanding = 5 WHERE id = $1::uuid RETURNING id)
            INSERT INTO link_claims (id, link_id, identity_fingerprint, delivered_at)
            SELECT gen_random_uuid(), id, CASE WHEN n < 5 THEN 'delivered-' || n END, CASE WHEN n < 5 THEN now() END
            FROM counted, generate_series(1, 5) n
            """, [.text(linkID)])
        let sixth = try await http(.GET, url)
        XCTAssertEqual(sixth.status, 200, "1 use left + 5 spare: \(sixth.text)")
        let seventh = try await http(.GET, url)
        XCTAssertEqual(seventh.status, 503, "not gone: the device is told to retry")
        XCTAssertNotNil(seventh.headers["retry-after"])

        // The gateway died during the download under way; the four profiles were never installed.
        try await withDatabase("""
            UPDATE link_claims SET claimed_at = now() - interval '3 hours',
                                   delivered_at = CASE WHEN delivered_at IS NOT NULL THEN now() - interval '2 hours' END
            WHERE link_id = $1::uuid AND (identity_fingerprint IS NULL OR identity_fingerprint LIKE 'delivered-%')
            """, [.text(linkID)])
        let back = try await eventually(timeout: 90) { try await http(.GET, url).status == 200 }
        XCTAssertTrue(back, "the expired claims gave their places back")
        let view = try await linkView(stack, linkID)
        XCTAssertEqual(view["pendingProfiles"] as? Int, 2, "the sixth's profile and the one just served")
        XCTAssertEqual(view["uses"] as? Int, 0)

        // The sixth's profile still enrolls: an outstanding claim is not needed to spend the use.
        let udid = newUDID()
        let (device, _) = try SimulatedDevice.installing(sixth.body, roots: [stack.profileCA], udid: udid, serial: "SER\(udid.suffix(8))")
        let authenticated = try await device.authenticate()
        XCTAssertEqual(authenticated.status, 200, authenticated.text)
        let spent = try await http(.GET, url)
        XCTAssertEqual(spent.status, 410)
    }

    /// A link without a limit counts its enrollments too; once revoked, its profiles not yet enrolled with are refused
    /// at Authenticate, while the devices it enrolled go on.
    func testAnUnlimitedLinkCountsEnrollmentsAndARevokedLinksProfilesNoLongerEnroll() async throws {
        let stack = try await Fixture.shared.prepare()
        let link = try await stack.admin.expect(.POST, "/enrollment-links", json: ["name": "no limit"])
        let linkID = try unwrap(link["id"] as? String), url = try unwrap(link["url"] as? String)
        var devices: [SimulatedDevice] = []
        for _ in 0..<2 {
            let download = try await http(.GET, url)
            XCTAssertEqual(download.status, 200, download.text)
            let udid = newUDID()
            devices.append(try SimulatedDevice.installing(download.body, roots: [stack.profileCA], udid: udid, serial: "SER\(udid.suffix(8))").0)
        }
        let first = try await devices[0].authenticate()
        XCTAssertEqual(first.status, 200, first.text)
        var view = try await linkView(stack, linkID)
        XCTAssertEqual(view["uses"] as? Int, 1)
        XCTAssertEqual(view["pendingProfiles"] as? Int, 1)

        let revoked = try await stack.admin.call(.DELETE, "/enrollment-links/\(linkID)")
        XCTAssertEqual(revoked.status, 204)
        let late = try await devices[1].authenticate()
        XCTAssertEqual(late.status, 403, late.text)
        XCTAssertTrue(late.text.contains("revoked"), late.text)
        let enrolled = try await devices[0].tokenUpdate()
        XCTAssertEqual(enrolled.status, 200, "a device the link enrolled goes on")
        let gone = try await http(.GET, url)
        XCTAssertEqual(gone.status, 410)
        view = try await linkView(stack, linkID)
        XCTAssertEqual(view["uses"] as? Int, 1)
    }
}
