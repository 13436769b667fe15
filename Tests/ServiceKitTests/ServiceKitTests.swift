import Foundation
import OrchardCore
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Hummingbird
import HummingbirdTesting
import Logging
import OrchardMessaging
import OrchardObservability
import OrchardStorage
import OrchardTestSupport
@testable import OrchardServiceKit
import XCTest

final class ConfigurationTests: XCTestCase {
    let minimal = ["ORCHARD_DATABASE_URL": "postgres://x@127.0.0.1/x", "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092"]

    func testDefaultsAndOverrides() throws {
        var env = minimal
        env["ORCHARD_HTTP_PORT"] = "9999"
        env["ORCHARD_KAFKA_FETCH_WAIT_MAX_MS"] = "0"
        env["ORCHARD_INSTANCE_ID"] = "gw-1"
        let config = try ServiceConfiguration(service: "checkin-gateway", defaultPort: 8080, environment: EnvironmentReader(env))
        XCTAssertEqual(config.httpPort, 9999)
        XCTAssertEqual(config.kafka.fetchWaitMaxMs, 0)
        XCTAssertEqual(config.kafka.lingerMs, 0)
        XCTAssertEqual(config.instanceID, "gw-1")
        XCTAssertEqual(config.requestTimeout, .milliseconds(5000))
        XCTAssertEqual(try ServiceConfiguration(service: "s", defaultPort: 8081, environment: EnvironmentReader(minimal)).httpPort, 8081)
    }

    func testMissingOrMalformedSettingsNameTheVariable() {
        XCTAssertThrowsError(try ServiceConfiguration(service: "s", defaultPort: 1, environment: EnvironmentReader([:]))) {
            XCTAssertEqual("\($0)", "ORCHARD_DATABASE_URL is required")
        }
        var env = minimal
        env["ORCHARD_HTTP_PORT"] = "eighty"
        XCTAssertThrowsError(try ServiceConfiguration(service: "s", defaultPort: 1, environment: EnvironmentReader(env))) {
            XCTAssertTrue("\($0)".contains("ORCHARD_HTTP_PORT"), "\($0)")
        }
        env = minimal
        env["ORCHARD_LOG_LEVEL"] = "loud"
        XCTAssertThrowsError(try ServiceConfiguration(service: "s", defaultPort: 1, environment: EnvironmentReader(env)))
    }
}

final class MiddlewareTests: XCTestCase {
    func testCorrelationIDIsEchoedOrCreatedAndHostileOnesReplaced() async throws {
        let router = Router()
        router.add(middleware: ObservabilityMiddleware())
        router.get("echo") { _, context in context.correlationID }
        router.get("fail") { _, _ -> String in throw HTTPError(.badRequest, message: "bad thing") }
        let app = Application(router: router)
        try await app.test(.router) { client in
            try await client.execute(uri: "/echo", method: .get, headers: [ObservabilityMiddleware<BasicRequestContext>.headerName: "abc-123"]) { r in
                XCTAssertEqual(r.headers[ObservabilityMiddleware<BasicRequestContext>.headerName], "abc-123")
                XCTAssertEqual(String(buffer: r.body), "abc-123")
            }
            try await client.execute(uri: "/echo", method: .get, headers: [ObservabilityMiddleware<BasicRequestContext>.headerName: "evil\"\n{}"]) { r in
                let id = try XCTUnwrap(r.headers[ObservabilityMiddleware<BasicRequestContext>.headerName])
                XCTAssertNotNil(UUID(uuidString: id), "a hostile id is replaced by a new one")
            }
            try await client.execute(uri: "/fail", method: .get) { r in
                XCTAssertEqual(r.status, .badRequest)
                XCTAssertTrue(String(buffer: r.body).contains("bad thing"))
            }
        }
        XCTAssertTrue(OrchardMetrics.render().contains(#"orchard_http_requests_total{method="GET",route="/fail",status="400"}"#),
                      OrchardMetrics.render())
    }

    func testMetricsExposition() {
        OrchardMetrics.httpRequests(route: "/exposition", method: "PUT", status: 201).increment()
        OrchardMetrics.httpRequestLatency(route: "/exposition").record(.milliseconds(3))
        let text = OrchardMetrics.render()
        XCTAssertTrue(text.contains("# TYPE orchard_http_requests_total counter"), text)
        XCTAssertTrue(text.contains("# HELP orchard_http_requests_total HTTP requests served"), text)
        XCTAssertTrue(text.contains(#"orchard_http_requests_total{method="PUT",route="/exposition",status="201"} 1"#), text)
        XCTAssertTrue(text.contains(#"orchard_http_request_seconds_bucket{route="/exposition",le="0.0025"} 0"#), text)
        XCTAssertTrue(text.contains(#"orchard_http_request_seconds_bucket{route="/exposition",le="0.005"} 1"#), text)
        XCTAssertTrue(text.contains(#"orchard_http_request_seconds_count{route="/exposition"} 1"#), text)
    }

    /// A service whose log reader went away (its stderr pipe closed) keeps running: the line is dropped.
    /// FileHandle.write trapped on EPIPE, and services died (SIGILL) on their next log line.
    func testALogLineToAClosedPipeIsDroppedNotFatal() {
        signal(SIGPIPE, SIG_IGN)  // as in the services (a closed socket must not kill them either)
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        close(fds[0])
        let saved = dup(2)
        dup2(fds[1], 2)
        let logger = Logger(label: "closed-pipe") { JSONLogHandler(label: $0, service: "test", level: .info) }
        logger.warning("nobody reads this line")
        let direct = write(2, "x", 1), error = errno
        dup2(saved, 2)
        close(saved)
        close(fds[1])
        XCTAssertEqual(direct, -1)
        XCTAssertEqual(error, EPIPE, "the pipe really was closed")
    }

    func testJSONStringEscaping() {
        var text = ""
        JSONText.string("a\"b\\c\n\u{01}", into: &text)
        XCTAssertEqual(text, #""a\"b\\c\n\u0001""#)
        XCTAssertEqual(JSONText.object(["b": "2", "a": "1"]), #"{"a":"1","b":"2"}"#)
    }
}

/// HTTP against the five running services started by Deploy/test.sh.
final class RunningServicesTests: XCTestCase {
    static let services = ["CHECKIN_GATEWAY", "TOKEN_SERVICE", "PROFILE_SIGNER", "ABM_SYNC", "USER_ENROLLMENT_AUTH"]

    func get(_ url: String) async throws -> (Int, String, [AnyHashable: Any]) {
        let (data, response) = try await URLSession.shared.data(from: URL(string: url)!)
        let http = response as! HTTPURLResponse
        return (http.statusCode, String(decoding: data, as: UTF8.self), http.allHeaderFields)
    }

    func testEveryServiceIsHealthyReadyAndMeasured() async throws {
        for name in Self.services {
            let base = try TestEnvironment.require("ORCHARD_URL_\(name)")
            let health = try await get("\(base)/healthz")
            XCTAssertEqual(health.0, 200, name)
            let ready = try await get("\(base)/readyz")
            XCTAssertEqual(ready.0, 200, "\(name): \(ready.1)")
            // Ready also means every request-serving consumer has its partitions (it answers at once).
            XCTAssertEqual(ready.1, #"{"consumers":"assigned","kafka":"ok","postgres":"ok"}"#)
            let metrics = try await get("\(base)/metrics")
            XCTAssertEqual(metrics.0, 200)
            XCTAssertTrue(metrics.1.contains("orchard_http_requests_total"), "\(name) metrics: \(metrics.1.prefix(300))")
            let missing = try await get("\(base)/no-such-thing")
            XCTAssertEqual(missing.0, 404, name)
            let body = try JSONSerialization.jsonObject(with: Data(missing.1.utf8)) as? [String: [String: String]]
            XCTAssertEqual(body?["error"]?["message"], "no route for GET /no-such-thing", "\(name): \(missing.1)")
        }
    }
}

/// The one mapping from a dependency's failure to the client's answer (DependencyFailure).
final class DependencyFailureTests: XCTestCase {
    func testUnavailableDependenciesAnswer503WithRetryAfterAndRefusalsKeepTheirStatus() async throws {
        let router = Router()
        router.add(middleware: ObservabilityMiddleware())
        router.get("database-down") { _, _ -> String in
            throw PostgresError(message: "server closed the connection unexpectedly", sqlState: nil)
        }
        router.get("database-restarting") { _, _ -> String in
            throw PostgresError(message: "terminating connection due to administrator command", sqlState: "57P01")
        }
        router.get("timed-out") { _, _ -> String in throw RequestTimedOut(type: "profile.build", correlationID: "c") }
        router.get("refused") { _, _ -> String in
            throw RequestRefused(code: "x.used", message: "already \"used\"", httpStatus: 409)
        }
        router.get("constraint") { _, _ -> String in throw PostgresError(message: "duplicate key", sqlState: "23505") }
        // Hardening issue 18, item 7: another service answered 503 (its own database was away): the client still learns when to retry.
        router.get("refused-unavailable") { _, _ -> String in
            throw RequestRefused(code: "abm.unreachable", message: "Apple Business Manager did not answer; retry shortly", httpStatus: 503)
        }
        let app = Application(router: router)
        try await app.test(.router) { client in
            for path in ["/database-down", "/database-restarting", "/timed-out", "/refused-unavailable"] {
                try await client.execute(uri: path, method: .get) { r in
                    XCTAssertEqual(r.status, .serviceUnavailable, path)
                    XCTAssertEqual(r.headers[.retryAfter], String(DependencyFailure.retryAfterSeconds), path)
                    let body = try JSONSerialization.jsonObject(with: Data(buffer: r.body)) as? [String: [String: String]]
                    XCTAssertTrue(body?["error"]?["message"]?.contains("retry") == true, path)
                }
            }
            try await client.execute(uri: "/refused", method: .get) { r in
                XCTAssertEqual(r.status.code, 409)
                let body = try JSONSerialization.jsonObject(with: Data(buffer: r.body)) as? [String: [String: String]]
                XCTAssertEqual(body?["error"]?["message"], "already \"used\"", "a JSON body, escaped")
            }
            try await client.execute(uri: "/constraint", method: .get) { r in
                XCTAssertEqual(r.status, .internalServerError, "a bug is not a retryable outage")
                XCTAssertNil(r.headers[.retryAfter])
            }
        }
    }
}
