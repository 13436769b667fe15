import Foundation
import OrchardCrypto
import OrchardMessaging
import OrchardSchemas
import OrchardStorage
import OrchardTestSupport
import XCTest

/// The device mirror (ADE issue, item 3) against the ABM stand-in: a fetch of several pages, deltas from the
/// sync feed (with a serial twice and a release), the echoed-cursor bug, and the full fetch that finds what
/// the feed never showed; every change published once on orchard.abm-device-events.v1.
final class ABMDeviceSyncTests: XCTestCase {
    func testMirrorFollowsABMThroughFetchSyncEchoedCursorAndFullFetch() async throws {
        let stack = try await Fixture.shared.prepare()
        let standIn = try ABMStandIn()
        let consumerKey = "CK_sync_\(UUID().uuidString.prefix(8))"
        let prefix = "S\(UUID().uuidString.prefix(6))"
        func serial(_ i: Int) -> String { "\(prefix)\(String(format: "%05d", i))" }
        func sync(full: Bool = false) async throws -> [String: Any] {
            try await stack.admin.expect(.POST, "/abm/tokens/\(id)/sync\(full ? "?fullFetch=true" : "")")
        }
        let id = try await uploadedToken(stack, standIn: standIn, consumerKey: consumerKey)

        try await step("1. ABM assigns 2,500 devices; the first sync fetches them in three pages") {
            try await standIn.control("devices", ["consumer_key": consumerKey, "devices": (0..<2500).map {
                ["serial_number": serial($0), "model": "iPhone 16", "os": "iOS", "device_family": "iPhone"]
            }])
            let first = try await sync()
            XCTAssertEqual(first["mode"] as? String, "fetch")
            XCTAssertEqual(first["pages"] as? Int, 3)
            XCTAssertEqual(first["added"] as? Int, 2500)
            XCTAssertEqual(first["devices"] as? Int, 2500)
        }

        try await step("2. Deltas: two devices change (one of them twice), one is released, one is new") {
            try await standIn.control("devices", ["consumer_key": consumerKey, "op_type": "modified", "devices": [
                ["serial_number": serial(1), "profile_status": "assigned", "profile_uuid": "P1"],
                ["serial_number": serial(2), "profile_status": "assigned", "profile_uuid": "P1"]]])
            try await standIn.control("devices", ["consumer_key": consumerKey, "op_type": "modified", "devices": [
                ["serial_number": serial(2), "profile_status": "pushed", "profile_uuid": "P1"]]])
            try await standIn.control("devices", ["consumer_key": consumerKey, "op_type": "deleted", "devices": [["serial_number": serial(3)]]])
            try await standIn.control("devices", ["consumer_key": consumerKey, "devices": [["serial_number": serial(9000), "model": "Mac"]]])
            let delta = try await sync()
            XCTAssertEqual(delta["mode"] as? String, "sync")
            XCTAssertEqual(delta["added"] as? Int, 1)
            XCTAssertEqual(delta["modified"] as? Int, 2)
            XCTAssertEqual(delta["deleted"] as? Int, 1)
            XCTAssertEqual(delta["devices"] as? Int, 2500)
            let database = try Database(conninfo: try TestEnvironment.require("ORCHARD_DATABASE_URL"), schema: "abm_sync", maxConnections: 1)
            let rows = try await database.query("""
                SELECT serial_number, profile_status, deleted_at IS NOT NULL AS deleted FROM abm_devices
                WHERE token_id = $1::uuid AND serial_number IN ($2, $3)
                """, [.text(id), .text(serial(2)), .text(serial(3))])
            await database.shutdown()
            let bySerial = Dictionary(uniqueKeysWithValues: rows.map { ($0.string("serial_number") ?? "", $0) })
            XCTAssertEqual(bySerial[serial(2)]?.string("profile_status"), "pushed", "the latest change of a serial wins")
            XCTAssertEqual(bySerial[serial(3)]?.bool("deleted"), true, "released: out of the mirror, its history kept")
        }

        try await step("3. ABM echoes the cursor with more_to_follow: the cycle ends instead of looping") {
            try await standIn.control("cursor", ["consumer_key": consumerKey, "echo": 1])
            let echoed = try await sync()
            XCTAssertEqual(echoed["cursorEchoed"] as? Bool, true)
            XCTAssertEqual(echoed["pages"] as? Int, 1)
            let next = try await sync()
            XCTAssertEqual(next["cursorEchoed"] as? Bool, false)
        }

        try await step("4. A device the feed never showed, and one released without a feed entry: the full fetch finds both") {
            try await standIn.control("devices", ["consumer_key": consumerKey, "hidden": true, "devices": [["serial_number": serial(9001)]]])
            try await standIn.control("devices", ["consumer_key": consumerKey, "hidden": true, "op_type": "deleted",
                                                  "devices": [["serial_number": serial(4)]]])
            let quiet = try await sync()
            XCTAssertEqual(quiet["added"] as? Int, 0, "the sync feed does not show it")
            let full = try await sync(full: true)
            XCTAssertEqual(full["mode"] as? String, "fetch")
            XCTAssertEqual(full["added"] as? Int, 1)
            XCTAssertEqual(full["deleted"] as? Int, 1)
            XCTAssertEqual(full["modified"] as? Int, 0, "devices seen again unchanged are no change")
            XCTAssertEqual(full["devices"] as? Int, 2500)
        }

        try await step("5. Every change was published once on orchard.abm-device-events.v1") {
            let expected: [ABMDeviceEvent.Change: Int] = [.added: 2502, .modified: 2, .deleted: 2]
            let messages = try await collect(topic: ABMDeviceEvent.topic, settings: try testKafkaSettings("abm-events-\(prefix)"),
                                             timeout: .seconds(60)) { seen in
                seen.filter { $0.key?.hasPrefix(prefix) == true }.count >= 2506
            }
            let mine = messages.filter { $0.key?.hasPrefix(prefix) == true }
            let events = mine.compactMap { try? MessageCodec.decode(ABMDeviceEvent.self, from: $0) }
            XCTAssertEqual(Set(mine.compactMap { $0.headers[Header.messageID] }).count, mine.count, "no message twice")
            var counts: [ABMDeviceEvent.Change: Int] = [:]
            for event in events where event.tokenID == id { counts[event.change, default: 0] += 1 }
            XCTAssertEqual(counts, expected)
        }

        try await step("6. ABM moves a device here from another MDM server with a deadline: the mirror shows it (protocol 8+)") {
            let deadline = "2027-01-15T00:00:00Z"
            try await standIn.control("devices", ["consumer_key": consumerKey, "op_type": "modified", "devices": [
                ["serial_number": serial(5), "profile_status": "empty", "mdm_migration_deadline": deadline]]])
            let delta = try await sync()
            XCTAssertEqual(delta["modified"] as? Int, 1, "a new deadline is a change")
            let page = try await stack.admin.expect(.GET, "/abm/devices?tokenId=\(id)&after=\(serial(4))&limit=2")
            let items = page["items"] as? [[String: Any]] ?? []
            XCTAssertEqual(items.first?["serialNumber"] as? String, serial(5))
            XCTAssertEqual(items.first?["migrationDeadline"] as? String, deadline)
            XCTAssertNil(items.dropFirst().first?["migrationDeadline"], "a device that is not migrating has none")
        }
    }
}

/// The tests' ABM stand-in (Deploy/standins/abm_standin.py), driven over its /_control endpoints.
struct ABMStandIn {
    let url: String
    init() throws { url = "http://127.0.0.1:\(try TestEnvironment.require("ORCHARD_TEST_ABM_PORT"))" }

    func control(_ path: String, _ json: [String: Any]) async throws {
        let answer = try await http(.POST, "\(url)/_control/\(path)", headers: [("Content-Type", "application/json")],
                                    body: Array(try JSONSerialization.data(withJSONObject: json)))
        XCTAssertEqual(answer.status, 204, answer.text)
    }

    func requests(_ consumerKey: String) async throws -> [[String: Any]] {
        let answer = try await http(.GET, "\(url)/_control/requests?consumer_key=\(consumerKey)")
        return try JSONSerialization.jsonObject(with: Data(answer.body)) as? [[String: Any]] ?? []
    }
}

/// A server-token entry whose `.p7m` carries credentials the stand-in knows: its id.
func uploadedToken(_ stack: Fixture.Ready, standIn: ABMStandIn, consumerKey: String, orgName: String = "Acme Inc.") async throws -> String {
    try await standIn.control("tokens", ["consumer_key": consumerKey, "consumer_secret": "CS_secret", "access_token": "AT_token",
                                         "access_secret": "AS_secret", "server_name": "Orchard MDM", "org_name": orgName])
    let created = try await stack.admin.expect(.POST, "/abm/tokens", json: ["name": "token \(consumerKey)"])
    let id = try unwrap(created["id"] as? String)
    let certificate = try Certificate.parsePEM(Array(try unwrap(created["certificatePEM"] as? String).utf8))[0]
    let uploaded = try await stack.admin.call(.PUT, "/abm/tokens/\(id)/server-token",
                                              body: try serverTokenFile(for: certificate, consumerKey: consumerKey,
                                                                        expiry: Date().addingTimeInterval(86400 * 200)))
    XCTAssertEqual(uploaded.status, 200, uploaded.text)
    return id
}
