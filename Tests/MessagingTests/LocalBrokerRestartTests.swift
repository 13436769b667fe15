import Foundation
import OrchardMessaging
import OrchardSchemas
import OrchardTestSupport
import XCTest
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The local broker (run-local.sh's) after a crash: restarted on the address it had, every client finds it
/// again; it says what it held that was not yet consumed (hardening issue, item 8: it came back on a new
/// random port and no service ever reconnected).
final class LocalBrokerRestartTests: XCTestCase {
    func testServicesAndClientsFindTheLocalBrokerAgainAfterItIsKilled() async throws {
        let port = try freeTCPPort()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("orchard-broker-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let bootstrapFile = folder.appendingPathComponent("bootstrap"), snapshotFile = folder.appendingPathComponent("snapshot")
        func startBroker() async throws -> ChildProcess {
            try? FileManager.default.removeItem(at: bootstrapFile)
            let broker = try ChildProcess("orchard-local-broker", [
                "--port", String(port), "--bootstrap-file", bootstrapFile.path, "--snapshot-file", snapshotFile.path,
            ])
            let started = try await eventually(timeout: 30) { FileManager.default.fileExists(atPath: bootstrapFile.path) }
            XCTAssertTrue(started, broker.log)
            return broker
        }
        var broker = try await startBroker()
        defer { broker.terminate() }
        let bootstrap = try String(contentsOf: bootstrapFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(bootstrap, "127.0.0.1:\(port)")

        // A second broker on the same address refuses to start, naming it.
        let second = try ChildProcess("orchard-local-broker", ["--port", String(port)])
        XCTAssertTrue(second.waitForExit(timeout: 30), second.log)
        XCTAssertNotEqual(second.process.terminationStatus, 0)
        XCTAssertTrue(second.log.contains("cannot listen on 127.0.0.1:\(port)"), second.log)

        let httpPort = try freeTCPPort()
        let (service, requests) = try await startTokenService(bootstrap: bootstrap, port: httpPort,
                                                              instance: "token-service-broker-restart-test")
        defer { service.terminate(); _ = service.waitForExit() }
        let before = try await requests.request(IssueSecurityToken(watchUDID: "00008301-BROKER-1"), timeout: .seconds(5),
                                                correlationID: "before-restart")
        XCTAssertFalse(before.securityToken.isEmpty)
        let snapshotWritten = try await eventually(timeout: 30) {
            ((try? String(contentsOf: snapshotFile, encoding: .utf8)) ?? "").contains("the local broker held")
        }
        XCTAssertTrue(snapshotWritten, broker.log)

        broker.kill()
        XCTAssertTrue(broker.waitForExit(timeout: 30))
        broker = try await startBroker()
        XCTAssertEqual(try String(contentsOf: bootstrapFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines),
                       bootstrap, "restarted on the same address")

        // The same token-service process and the same clients here, none restarted: a request is answered again.
        let answered = try await eventually(timeout: 120) {
            let reply = try? await requests.request(IssueSecurityToken(watchUDID: "00008301-BROKER-2"), timeout: .seconds(3),
                                                    correlationID: "after-restart")
            return reply.map { !$0.securityToken.isEmpty } ?? false
        }
        XCTAssertTrue(answered, "no answer after the broker came back:\n\(service.log.suffix(4000))")
    }
}
