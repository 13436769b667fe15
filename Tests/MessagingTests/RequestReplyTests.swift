import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import OrchardCrypto
import OrchardSchemas
@testable import OrchardMessaging
import OrchardStorage
import OrchardTestSupport
import XCTest

/// Request/reply between OS processes through the local broker.
final class RequestReplyTests: XCTestCase {
    nonisolated(unsafe) static var responder: ChildProcess?

    override class func setUp() {
        responder = try? ChildProcess("orchard-bench", ["respond"])
    }

    override class func tearDown() {
        responder?.terminate()
        _ = responder?.waitForExit()
    }

    func client(_ instance: String) throws -> RequestClient {
        let settings = try TestStack.settings(instance)
        return try RequestClient(settings: settings, producer: try KafkaProducer(settings: settings),
                                 instanceID: instance, logger: TestStack.logger)
    }

    /// The bench responder joins its group a few seconds after start; wait for its first answer.
    func waitForResponder(_ client: RequestClient) async throws {
        let answered = try await eventually(timeout: 60) {
            (try? await client.request(BenchEcho(id: "warm", payload: ""), timeout: .seconds(1), correlationID: "warm")) != nil
        }
        XCTAssertTrue(answered, "bench responder never answered: \(Self.responder?.log ?? "not started")")
    }

    func testTokenServiceInAnotherProcessIssuesASecurityToken() async throws {
        let requests = try client("test-token-\(UUID().uuidString)")
        let udid = "00008301-\(UUID().uuidString.prefix(8))TEST"
        let reply = try await requests.request(IssueSecurityToken(watchUDID: udid), timeout: .seconds(15),
                                               correlationID: "test-\(udid)")
        XCTAssertNotNil(UUID(uuidString: reply.securityToken), "the security token is a UUID string")
        XCTAssertGreaterThan(reply.expiresAt, Date().addingTimeInterval(60))
        XCTAssertLessThan(reply.expiresAt, Date().addingTimeInterval(3600))

        // token-service stored a hash bound to the watch, never the token itself.
        let db = try Database(conninfo: try TestStack.require("ORCHARD_DATABASE_URL"), schema: "token_service",
                              maxConnections: 1)
        let rows = try await db.query("SELECT watch_udid, token_hash FROM security_tokens WHERE watch_udid = $1", [.text(udid)])
        XCTAssertEqual(rows.count, 1)
        XCTAssertEqual(rows.first?.bytes("token_hash"), Digest.sha256(Array(reply.securityToken.utf8)))
        let leaked = try await db.query("SELECT count(*) AS n FROM security_tokens WHERE encode(token_hash, 'escape') LIKE $1",
                                        [.text("%\(reply.securityToken)%")])
        XCTAssertEqual(leaked.first?.int("n"), 0)
        await db.shutdown()

        // …and announced it on the activity topic, through its outbox, with our correlation id.
        let events = try await collect(topic: ActivityRecorded.topic, settings: try TestStack.settings("test-activity")) { seen in
            seen.contains { $0.key == udid }
        }
        let event = try XCTUnwrap(events.first { $0.key == udid })
        XCTAssertEqual(event.correlationID, "test-\(udid)")
        let activity = try MessageCodec.decode(ActivityRecorded.self, from: event)
        XCTAssertEqual(activity.action, "security-token.issued")
        XCTAssertEqual(activity.outcome, .succeeded)
        XCTAssertEqual(activity.service, "token-service")
        XCTAssertFalse(String(decoding: event.value, as: UTF8.self).contains(reply.securityToken), "no token in the audit trail")
    }

    /// Verifying a pairing token does not spend it (the gateway spends it with the profile it delivers),
    /// so a watch whose profile request failed can present it again; another watch still cannot.
    func testAPairingTokenVerifiesAgainForItsWatchUntilTheGatewaySpendsIt() async throws {
        let requests = try client("test-pairing-\(UUID().uuidString)")
        let watch = "00008301-\(UUID().uuidString.prefix(8))PAIR", phone = "00008030-\(UUID().uuidString.prefix(8))PHON"
        let security = try await requests.request(IssueSecurityToken(watchUDID: watch), timeout: .seconds(15), correlationID: "pair-1")
        let pairing = try await requests.request(IssuePairingToken(securityToken: security.securityToken, phoneUDID: phone,
                                                                   watchUDID: watch, organization: "Orchard"),
                                                 timeout: .seconds(15), correlationID: "pair-2")
        let redeem = RedeemPairingToken(pairingToken: pairing.pairingToken, watchUDID: watch, organization: "Orchard")
        let first = try await requests.request(redeem, timeout: .seconds(15), correlationID: "pair-3")
        let retry = try await requests.request(redeem, timeout: .seconds(15), correlationID: "pair-4")
        XCTAssertEqual(first.phoneUDID, phone)
        XCTAssertEqual(retry, first, "the same token, the same single-use id")
        XCTAssertNotNil(first.tokenID)
        do {
            _ = try await requests.request(RedeemPairingToken(pairingToken: pairing.pairingToken, watchUDID: "00008301-OTHERWATCH",
                                                              organization: "Orchard"), timeout: .seconds(15), correlationID: "pair-5")
            XCTFail("another watch's redemption was accepted")
        } catch let refused as RequestRefused {
            XCTAssertEqual(refused.code, "pairing-token.other-watch")
        }
    }

    func testRefusalTravelsBackWithItsStatus() async throws {
        let requests = try client("test-refused-\(UUID().uuidString)")
        do {
            _ = try await requests.request(IssueSecurityToken(watchUDID: "not a udid!"), timeout: .seconds(15),
                                           correlationID: "refused")
            XCTFail("expected a refusal")
        } catch let refused as RequestRefused {
            XCTAssertEqual(refused.code, "invalid-udid")
            XCTAssertEqual(refused.httpStatus, 400)
        }
    }

    func testDeadlinePassesThenLateReplyIsDropped() async throws {
        let requests = try client("test-deadline-\(UUID().uuidString)")
        try await waitForResponder(requests)
        let started = Date()
        do {
            _ = try await requests.request(BenchEcho(id: "slow", payload: "sleep:1500"), timeout: .milliseconds(300),
                                           correlationID: "slow")
            XCTFail("expected a timeout")
        } catch is RequestTimedOut {
            XCTAssertLessThan(Date().timeIntervalSince(started), 1.2, "the caller is answered at its deadline")
        }
        // The late reply arrives while the next request waits; it must not be taken for that one's reply.
        let next = try await requests.request(BenchEcho(id: "next", payload: "sleep:1500"), timeout: .seconds(10),
                                              correlationID: "next")
        XCTAssertEqual(next.id, "next")
        do {
            _ = try await requests.request(BenchEcho(id: "r", payload: "refuse"), timeout: .seconds(10), correlationID: "r")
            XCTFail("expected a refusal")
        } catch let refused as RequestRefused {
            XCTAssertEqual(refused.httpStatus, 403)
        }
    }

    func testRepliesReachTheReplicaThatAsked() async throws {
        // Two requester replicas sharing one reply partition, and a third on another partition.
        let partitions = UInt32(Topics.all.first { $0.name == RequestClient.replyTopic }!.partitions)
        let base = "replica-\(UUID().uuidString.prefix(6))"
        let first = "\(base)-0"
        var sharing = "", other = ""
        for i in 1..<500 where sharing.isEmpty || other.isEmpty {
            let candidate = "\(base)-\(i)"
            if stableHash(candidate) % partitions == stableHash(first) % partitions { sharing = sharing.isEmpty ? candidate : sharing }
            else if other.isEmpty { other = candidate }
        }
        let clients = try [first, sharing, other].map { try client($0) }
        try await waitForResponder(clients[0])
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (c, requests) in clients.enumerated() {
                for i in 0..<100 {
                    group.addTask {
                        let id = "\(c)-\(i)"
                        let reply = try await requests.request(BenchEcho(id: id, payload: "p\(id)"), timeout: .seconds(15),
                                                               correlationID: id)
                        XCTAssertEqual(reply.id, id)
                        XCTAssertEqual(reply.payload, "p\(id)")
                    }
                }
            }
            try await group.waitForAll()
        }
    }
}

/// A service process stops cleanly on SIGTERM: it leaves the consumer group, flushes and exits 0.
final class ServiceShutdownTests: XCTestCase {
    func testTokenServiceStopsGracefullyOnSIGTERM() async throws {
        // A broker of its own: a replica joining and leaving the shared stack's consumer group would make
        // the stack's token-service rebalance, and other tests' watch requests wait (hardening issue, item 9).
        let bootstrapFile = FileManager.default.temporaryDirectory.appendingPathComponent("orchard-broker-\(UUID().uuidString)")
        let broker = try ChildProcess("orchard-local-broker", ["--bootstrap-file", bootstrapFile.path])
        defer { broker.terminate(); try? FileManager.default.removeItem(at: bootstrapFile) }
        let started = try await eventually(timeout: 30) { FileManager.default.fileExists(atPath: bootstrapFile.path) }
        XCTAssertTrue(started, broker.log)
        let bootstrap = try String(contentsOf: bootstrapFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let port = try freeTCPPort()
        // Ready means it answers: its request consumer has its partitions (it said ready ~9 s too early).
        let (service, requests) = try await startTokenService(bootstrap: bootstrap, port: port, instance: "token-service-shutdown-test")
        // Never left running when the test fails early: against the shared database with a broker that is gone, it
        // would keep taking the shared token-service's outbox rows (and its port, for the next run).
        defer { if service.process.isRunning { service.kill() } }
        let answered = try await requests.request(IssueSecurityToken(watchUDID: "00008301-READYZ"), timeout: .seconds(3),
                                                  correlationID: "readiness")
        XCTAssertFalse(answered.securityToken.isEmpty)
        service.terminate()
        XCTAssertTrue(service.waitForExit(timeout: 30), "token-service did not stop within 30 s of SIGTERM")
        XCTAssertEqual(service.process.terminationStatus, 0, service.log)
        XCTAssertTrue(service.log.contains(#""message":"consumer stopped""#), service.log)
        XCTAssertTrue(service.log.contains(#""message":"stopped""#), service.log)
        XCTAssertTrue(service.log.contains(#""service":"token-service""#), "JSON log lines name the service")
        for line in service.log.split(separator: "\n") where !line.isEmpty {
            XCTAssertNotNil(try? JSONSerialization.jsonObject(with: Data(line.utf8)), "not a JSON log line: \(line)")
        }
    }

    /// A service that cannot serve exits non-zero and says why (it used to hang, consuming, deaf to SIGTERM).
    func testAServiceWhosePortIsTakenExitsWithTheReason() throws {
        let taken = try unwrap(URL(string: try TestStack.require("ORCHARD_URL_TOKEN_SERVICE"))?.port)
        let service = try ChildProcess("token-service", [], environment: [
            "ORCHARD_HTTP_PORT": String(taken), "ORCHARD_INSTANCE_ID": "token-service-port-taken-test",
        ])
        XCTAssertTrue(service.waitForExit(timeout: 60), "still running with its port taken: \(service.log)")
        XCTAssertNotEqual(service.process.terminationStatus, 0, service.log)
        XCTAssertTrue(service.log.contains("cannot listen on") && service.log.contains(String(taken)), service.log)
        XCTAssertFalse(service.log.contains(#""message":"listening""#), service.log)
    }

    /// A setting outside its range stops the service at start-up, naming the variable and the range
    /// (a security-token lifetime of 2 s silently became 300 s).
    func testASettingOutOfRangeStopsTheServiceNamingIt() throws {
        let service = try ChildProcess("token-service", [], environment: [
            "ORCHARD_HTTP_PORT": String(18190 + Int.random(in: 0..<9)), "ORCHARD_SECURITY_TOKEN_TTL_SECONDS": "2",
        ])
        XCTAssertTrue(service.waitForExit(timeout: 60), service.log)
        XCTAssertNotEqual(service.process.terminationStatus, 0, service.log)
        XCTAssertTrue(service.log.contains("ORCHARD_SECURITY_TOKEN_TTL_SECONDS must be an integer in 10...3600"), service.log)
    }
}
