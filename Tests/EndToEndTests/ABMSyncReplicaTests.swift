import Foundation
import OrchardCrypto
import OrchardMessaging
import OrchardSchemas
import OrchardStorage
import OrchardTestSupport
import XCTest

/// Two abm-sync replicas with the hourly schedule on (ADE issue, item 3): exactly one syncs a given token at a
/// time, and when it is killed in the middle of a sync the other takes over once its lease lapses and finishes
/// the mirror — every device once, no change published twice. The replicas run on a database and a broker of
/// this test's own, so that neither their schedule nor their consumer group touches the other tests' stack.
final class ABMSyncReplicaTests: XCTestCase {
    func testOneReplicaSyncsATokenAtATimeAndTheOtherTakesOverWhenItDies() async throws {
        let standIn = try ABMStandIn()
        let consumerKey = "CK_replicas_\(UUID().uuidString.prefix(8))"
        let databaseName = "orchard_replicas_\(UUID().uuidString.prefix(8).lowercased())"
        let conninfo = try TestEnvironment.require("ORCHARD_DATABASE_URL")
        let admin = try Database(conninfo: conninfo, schema: "public", maxConnections: 1)
        try await admin.query("CREATE DATABASE \(databaseName)")
        let slash = try unwrap(conninfo.lastIndex(of: "/"), "ORCHARD_DATABASE_URL is a postgres:// URL")
        let privateURL = "\(conninfo[..<slash])/\(databaseName)"

        let brokerPort = try freeTCPPort()
        let broker = try ChildProcess("orchard-local-broker", ["--port", String(brokerPort)])
        defer { broker.terminate() }
        let bootstrap = "127.0.0.1:\(brokerPort)"
        var replicas: [ChildProcess] = []
        var ports: [Int] = []
        for i in 0..<2 {
            let port = try freeTCPPort()
            ports.append(port)
            replicas.append(try ChildProcess("abm-sync", [], environment: [
                "ORCHARD_HTTP_PORT": String(port), "ORCHARD_INSTANCE_ID": "abm-sync-replica-\(i)", "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "ORCHARD_DATABASE_URL": privateURL, "ORCHARD_ABM_SYNC_INTERVAL_SECONDS": "60", "ORCHARD_ABM_SYNC_LEASE_SECONDS": "10",
            ]))
        }
        defer { for replica in replicas { replica.terminate(); _ = replica.waitForExit() } }
        for (i, port) in ports.enumerated() {
            let ready = await eventually(timeout: 90) { (try? await http(.GET, "http://127.0.0.1:\(port)/readyz"))?.status == 200 }
            XCTAssertTrue(ready, replicas[i].log)
        }
        let database = try Database(conninfo: privateURL, schema: "abm_sync", maxConnections: 2)
        var requests: RequestClient?
        defer {
            Task { await database.shutdown(); await admin.shutdown() }
            _ = requests
        }

        // ABM: 6,000 devices, each page of 1,000 answered 1.5 s late, so that the fetch takes ~9 s.
        try await standIn.control("tokens", ["consumer_key": consumerKey, "consumer_secret": "CS_secret", "access_token": "AT_token",
                                             "access_secret": "AS_secret", "server_name": "Replicas", "org_name": "Acme"])
        let prefix = "R\(UUID().uuidString.prefix(5))"
        try await standIn.control("devices", ["consumer_key": consumerKey, "hidden": true,
                                              "devices": (0..<6000).map { ["serial_number": String(format: "%@%05d", prefix, $0)] }])
        try await standIn.control("delay", ["consumer_key": consumerKey, "ms": 1500])

        // The token, through the replicas' own request topic (as the admin API sends it).
        var settings = try testKafkaSettings("replicas-\(UUID().uuidString)")
        settings.bootstrapServers = bootstrap
        let client = try RequestClient(settings: settings, producer: try KafkaProducer(settings: settings),
                                       instanceID: "replicas-test-\(UUID().uuidString.prefix(8))", logger: quietLogger)
        requests = client
        let created = try await client.request(CreateABMToken(name: "replicas", actor: "test"), timeout: .seconds(30), correlationID: "replicas-test")
        let certificate = try Certificate.parsePEM(Array(created.certificatePEM.utf8))[0]
        _ = try await client.request(UploadABMServerToken(id: created.id, p7m: Data(try serverTokenFile(
            for: certificate, consumerKey: consumerKey, expiry: Date().addingTimeInterval(86400 * 100))), actor: "test"),
                                     timeout: .seconds(30), correlationID: "replicas-test")

        // Both schedules see the token due; one takes the lease.
        var holder = ""
        let started = await eventually(timeout: 60) {
            let row = try? await database.query("SELECT sync_lease_holder, sync_lease_until > now() AS held FROM abm_tokens").first
            holder = row?.string("sync_lease_holder") ?? ""
            return row?.bool("held") == true
        }
        XCTAssertTrue(started, "a replica started the sync")
        let first = try unwrap(Int(holder.split(separator: "-").last ?? ""))
        // Kill it after its first pages, in the middle of the fetch.
        let fetchedSome = await eventually(timeout: 60) {
            ((try? await database.query("SELECT count(*)::int AS n FROM abm_devices").first?.int("n")) ?? 0) >= 1000
        }
        XCTAssertTrue(fetchedSome)
        replicas[first].kill()
        XCTAssertTrue(replicas[first].waitForExit())
        let killedAt = Date()

        // The other takes over once the lease lapses, and finishes the fetch.
        let finished = await eventually(timeout: 90) {
            let row = try? await database.query("""
                SELECT sync_lease_holder, last_sync_at IS NOT NULL AS synced, (SELECT count(*)::int FROM abm_devices) AS n FROM abm_tokens
                """).first
            return row?.bool("synced") == true && row?.int("n") == 6000 && row?.string("sync_lease_holder") == "abm-sync-replica-\(1 - first)"
        }
        XCTAssertTrue(finished, replicas[1 - first].log.suffix(3000).description)
        XCTAssertLessThan(Date().timeIntervalSince(killedAt), 60, "taken over within a minute")

        // One at a time: ABM never saw two fetches of the same page, and each device was published once.
        let calls = try await standIn.requests(consumerKey).filter { $0["path"] as? String == "/server/devices" && $0["status"] as? Int == 200 }
        XCTAssertLessThanOrEqual(calls.count, 6 + 1, "at most the page the killed replica had not committed is fetched again")
        var eventSettings = try testKafkaSettings("replica-events-\(UUID().uuidString)")
        eventSettings.bootstrapServers = bootstrap
        // Read for 20 s (a doubled event would make it more than 6,000).
        let messages = try await collect(topic: ABMDeviceEvent.topic, settings: eventSettings, timeout: .seconds(20)) { $0.count > 6000 }
        XCTAssertEqual(messages.count, 6000, "one added event per device, none twice")
        XCTAssertEqual(Set(messages.compactMap(\.key)).count, 6000)
    }
}
