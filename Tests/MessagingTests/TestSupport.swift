import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import NIOConcurrencyHelpers
import OrchardMessaging
import OrchardTestSupport
import XCTest

/// The stack started by Deploy/test.sh.
enum TestStack {
    static func require(_ name: String) throws -> String { try TestEnvironment.require(name) }

    static func settings(_ client: String) throws -> KafkaSettings {
        _ = try require("KAFKA_BOOTSTRAP_SERVERS")
        return try testKafkaSettings(client)
    }

    static let logger = quietLogger
}

/// Polls until the condition holds or the timeout passes.
func eventually(timeout: TimeInterval = 60, _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(200))
    }
    return false
}

/// A token-service of the test's own on `bootstrap` (a broker the test started), once its /readyz answers
/// 200, and a request client on the same broker.
func startTokenService(bootstrap: String, port: Int, instance: String) async throws -> (ChildProcess, RequestClient) {
    let service = try ChildProcess("token-service", [], environment: [
        "ORCHARD_HTTP_PORT": String(port), "ORCHARD_INSTANCE_ID": instance, "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
    ])
    let ready = try await eventually(timeout: 60) {
        guard let (_, response) = try? await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)/readyz")!) else {
            return false
        }
        return (response as? HTTPURLResponse)?.statusCode == 200
    }
    XCTAssertTrue(ready, service.log)
    var settings = try testKafkaSettings("\(instance)-\(UUID().uuidString)")
    settings.bootstrapServers = bootstrap
    let requests = try RequestClient(settings: settings, producer: try KafkaProducer(settings: settings),
                                     instanceID: "\(instance)-\(UUID().uuidString.prefix(8))", logger: TestStack.logger)
    return (service, requests)
}
