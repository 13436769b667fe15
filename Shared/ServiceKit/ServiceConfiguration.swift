import Foundation
import Logging
import OrchardMessaging

/// A required setting is missing or malformed; the service refuses to start and says which.
public struct ConfigurationError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Reads typed settings from environment variables.
public struct EnvironmentReader: Sendable {
    public let values: [String: String]

    public init(_ values: [String: String] = ProcessInfo.processInfo.environment) { self.values = values }

    public func string(_ name: String, default value: String? = nil) throws -> String {
        if let v = values[name], !v.isEmpty { return v }
        if let value { return value }
        throw ConfigurationError("\(name) is required")
    }

    public func optional(_ name: String) -> String? {
        values[name].flatMap { $0.isEmpty ? nil : $0 }
    }

    public func int(_ name: String, default value: Int, range: ClosedRange<Int> = 0...Int.max) throws -> Int {
        guard let text = optional(name) else { return value }
        guard let parsed = Int(text), range.contains(parsed) else {
            throw ConfigurationError("\(name) must be an integer in \(range.lowerBound)...\(range.upperBound), got \(text)")
        }
        return parsed
    }
}

/// The settings every Orchard service reads (see the README's configuration table).
public struct ServiceConfiguration: Sendable {
    public let service: String
    public let instanceID: String
    public let httpHost: String
    public let httpPort: Int
    public let databaseURL: String
    public let databasePoolSize: Int
    public let kafka: KafkaSettings
    public let requestTimeout: Duration
    public let logLevel: Logger.Level
    /// The key-encryption key for secrets at rest (32 bytes), when configured.
    public let keyEncryptionKey: [UInt8]?
    public let environment: EnvironmentReader

    public init(service: String, defaultPort: Int, environment: EnvironmentReader = EnvironmentReader()) throws {
        self.service = service
        self.environment = environment
        let host = ProcessInfo.processInfo.hostName
        instanceID = environment.optional("ORCHARD_INSTANCE_ID") ?? "\(service)-\(host)-\(getpid())"
        httpHost = try environment.string("ORCHARD_HTTP_HOST", default: "0.0.0.0")
        httpPort = try environment.int("ORCHARD_HTTP_PORT", default: defaultPort, range: 0...65535)
        databaseURL = try environment.string("ORCHARD_DATABASE_URL")
        databasePoolSize = try environment.int("ORCHARD_DATABASE_POOL_SIZE", default: 8, range: 1...200)
        var kafka = KafkaSettings(bootstrapServers: try environment.string("KAFKA_BOOTSTRAP_SERVERS"),
                                  clientID: instanceID)
        kafka.lingerMs = try environment.int("ORCHARD_KAFKA_LINGER_MS", default: 0, range: 0...1000)
        kafka.fetchWaitMaxMs = try environment.int("ORCHARD_KAFKA_FETCH_WAIT_MAX_MS", default: 100, range: 0...1000)
        kafka.sessionTimeoutMs = try environment.int("ORCHARD_KAFKA_SESSION_TIMEOUT_MS", default: 10_000,
                                                     range: 1000...300_000)
        kafka.consumerMaxBatch = try environment.int("ORCHARD_KAFKA_CONSUMER_MAX_BATCH", default: 200, range: 1...5000)
        self.kafka = kafka
        requestTimeout = .milliseconds(try environment.int("ORCHARD_REQUEST_TIMEOUT_MS", default: 5000, range: 10...60_000))
        let level = try environment.string("ORCHARD_LOG_LEVEL", default: "info")
        guard let parsed = Logger.Level(rawValue: level) else {
            throw ConfigurationError("ORCHARD_LOG_LEVEL must be one of trace, debug, info, notice, warning, error, critical")
        }
        logLevel = parsed
        if let kek = environment.optional("ORCHARD_KEK") {
            guard let bytes = Data(base64Encoded: kek), bytes.count == 32 else {
                throw ConfigurationError("ORCHARD_KEK must be 32 bytes in base64 (head -c 32 /dev/urandom | base64)")
            }
            keyEncryptionKey = Array(bytes)
        } else {
            keyEncryptionKey = nil
        }
    }
}
