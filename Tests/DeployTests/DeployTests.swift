import Foundation
import OrchardSchemas
import XCTest
import Yams

/// No Docker engine runs here, so the container files are checked as text.
final class DeployTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let services = ["checkin-gateway", "token-service", "profile-signer", "abm-sync", "user-enrollment-auth"]

    func text(_ path: String) throws -> String {
        try String(contentsOf: Self.root.appendingPathComponent(path), encoding: .utf8)
    }

    func compose() throws -> [String: Any] {
        try XCTUnwrap(try Yams.load(yaml: try text("docker-compose.yml")) as? [String: Any])
    }

    /// Environment variables the code reads, and which of them every service requires (read without a
    /// default by the service kit; a service's own settings may be required only in some modes).
    func variablesInSource() throws -> (all: Set<String>, required: Set<String>) {
        var all = Set<String>(), required = Set<String>()
        let pattern = try NSRegularExpression(pattern: #"\.(string|int|optional)\("((?:ORCHARD|KAFKA)_[A-Z0-9_]+)"(\))?"#)
        for folder in ["Shared", "Services"] {
            let enumerator = FileManager.default.enumerator(at: Self.root.appendingPathComponent(folder), includingPropertiesForKeys: nil)
            while let url = enumerator?.nextObject() as? URL {
                guard url.pathExtension == "swift" else { continue }
                let source = try String(contentsOf: url, encoding: .utf8)
                for match in pattern.matches(in: source, range: NSRange(source.startIndex..., in: source)) {
                    let name = String(source[Range(match.range(at: 2), in: source)!])
                    all.insert(name)
                    let kind = String(source[Range(match.range(at: 1), in: source)!])
                    if kind == "string" && match.range(at: 3).location != NSNotFound && url.path.contains("/Shared/ServiceKit/") {
                        required.insert(name)
                    }
                }
            }
        }
        return (all, required)
    }

    /// The local trial's stand-ins never reach a container: the image holds the five services only, and no service there
    /// is told to trust stand-ins.
    func testContainersNeverRunOrTrustTheLocalTrialsStandIns() throws {
        let dockerfile = try text("Deploy/Dockerfile")
        let runtime = try XCTUnwrap(dockerfile.components(separatedBy: "FROM debian").last)
        XCTAssertFalse(runtime.contains("orchard-sim") || runtime.contains("standins") || runtime.contains("Deploy/trial"), runtime)
        XCTAssertTrue(runtime.contains("cp checkin-gateway token-service profile-signer abm-sync user-enrollment-auth /out/")
                      || dockerfile.contains("cp checkin-gateway token-service profile-signer abm-sync user-enrollment-auth /out/"))
        let compose = try text("docker-compose.yml")
        XCTAssertFalse(compose.contains("ORCHARD_LOCAL_TRIAL"), "compose sets no local trial")
        XCTAssertFalse(compose.contains("Orchard stand-in"))
    }

    func testComposeRunsKafkaPostgresTopicsAndTheFiveServices() throws {
        let services = try XCTUnwrap(try compose()["services"] as? [String: Any])
        for name in ["postgres", "kafka", "kafka-topics"] + Self.services {
            XCTAssertNotNil(services[name], "docker-compose.yml has no service \(name)")
        }
        let kafka = try XCTUnwrap(services["kafka"] as? [String: Any])
        let kafkaEnv = try XCTUnwrap(kafka["environment"] as? [String: Any])
        XCTAssertEqual(kafkaEnv["KAFKA_PROCESS_ROLES"] as? String, "broker,controller", "Kafka runs in KRaft mode")
    }

    func testEveryRequiredVariableIsSetForEveryService() throws {
        let (_, required) = try variablesInSource()
        XCTAssertTrue(required.isSuperset(of: ["ORCHARD_DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS"]), "\(required)")
        let services = try XCTUnwrap(try compose()["services"] as? [String: Any])
        for name in Self.services {
            let service = try XCTUnwrap(services[name] as? [String: Any])
            let environment = try XCTUnwrap(service["environment"] as? [String: Any], name)
            for variable in required {
                let value = environment[variable].map { "\($0)" } ?? ""
                XCTAssertFalse(value.isEmpty, "\(name) lacks \(variable)")
            }
            XCTAssertEqual(service["command"] as? [String], [name])
            XCTAssertNotNil((service["depends_on"] as? [String: Any])?["kafka-topics"], "\(name) waits for topic creation")
        }
    }

    func testComposeCreatesExactlyTheTopicsTheCodeUses() throws {
        let services = try XCTUnwrap(try compose()["services"] as? [String: Any])
        let topics = try XCTUnwrap(services["kafka-topics"] as? [String: Any])
        let command = try XCTUnwrap(topics["command"] as? [String]).joined(separator: " ")
        let pattern = try NSRegularExpression(pattern: #"--topic (\S+) --partitions (\d+)"#)
        var created: [String: Int] = [:]
        for m in pattern.matches(in: command, range: NSRange(command.startIndex..., in: command)) {
            created[String(command[Range(m.range(at: 1), in: command)!])] = Int(command[Range(m.range(at: 2), in: command)!])
        }
        XCTAssertEqual(created, Dictionary(uniqueKeysWithValues: Topics.all.map { ($0.name, $0.partitions) }))
    }

    func testDockerfileIsMultiStageWithSlimRuntime() throws {
        let dockerfile = try text("Deploy/Dockerfile")
        let stages = dockerfile.split(separator: "\n").filter { $0.hasPrefix("FROM ") }
        XCTAssertEqual(stages.count, 2)
        XCTAssertTrue(stages[1].contains("slim"))
        for lib in ["librdkafka1", "libpq5", "libssl3"] { XCTAssertTrue(dockerfile.contains(lib), lib) }
        for service in Self.services { XCTAssertTrue(dockerfile.contains(service), service) }
    }

    func testReadmeDocumentsEveryVariableAndBothCommands() throws {
        let readme = try text("README.md")
        let (all, _) = try variablesInSource()
        for variable in all.sorted() {
            XCTAssertTrue(readme.contains("| `\(variable)` |"), "README's configuration table lacks \(variable)")
        }
        XCTAssertTrue(readme.contains("./Deploy/run-local.sh"))
        XCTAssertTrue(readme.contains("./Deploy/test.sh"))
        XCTAssertTrue(try text(".ci/run").contains("./Deploy/test.sh"), ".ci/run calls the README's test command")
    }
}

/// docs/openapi.yaml describes exactly the admin routes the gateway registers.
final class OpenAPITests: XCTestCase {
    func testEveryAdminRouteIsDocumentedAndNothingElse() throws {
        let root = DeployTests.root
        // Every file of the gateway that registers admin routes (one resource per file).
        let gateway = root.appendingPathComponent("Services/CheckinGateway")
        var source = ""
        for case let url as URL in FileManager.default.enumerator(at: gateway, includingPropertiesForKeys: nil)! where url.pathExtension == "swift" {
            source += try String(contentsOf: url, encoding: .utf8)
        }
        let pattern = try NSRegularExpression(pattern: #"admin\.(get|post|put|delete)\("([^"]+)""#)
        var registered = Set<String>()
        for m in pattern.matches(in: source, range: NSRange(source.startIndex..., in: source)) {
            let method = String(source[Range(m.range(at: 1), in: source)!])
            let path = String(source[Range(m.range(at: 2), in: source)!])
                .split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }.joined(separator: "/")
            registered.insert("\(method) /\(path)")
        }
        let spec = try XCTUnwrap(try Yams.load(yaml: try String(contentsOf: root.appendingPathComponent("docs/openapi.yaml"), encoding: .utf8)) as? [String: Any])
        var documented = Set<String>()
        for (path, operations) in try XCTUnwrap(spec["paths"] as? [String: Any]) {
            for method in (operations as? [String: Any] ?? [:]).keys where ["get", "post", "put", "delete", "patch"].contains(method) {
                documented.insert("\(method) \(path)")
            }
        }
        XCTAssertGreaterThan(registered.count, 15)
        XCTAssertEqual(registered.subtracting(documented), [], "routes missing from docs/openapi.yaml")
        XCTAssertEqual(documented.subtracting(registered), [], "documented routes that do not exist")
    }
}
