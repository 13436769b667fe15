import CRdKafka
import Logging
import NIOConcurrencyHelpers

/// Routes librdkafka's own log lines (rebalances, commit failures, connection trouble) into the
/// service's JSON log instead of raw lines on stderr.
enum KafkaLog {
    private static let logger = NIOLockedValueBox(Logger(label: "librdkafka"))

    /// Called by the service kit once logging is set up.
    static func use(_ logger: Logger) {
        self.logger.withLockedValue { $0 = logger }
    }

    static func install(on conf: OpaquePointer) {
        rd_kafka_conf_set_log_cb(conf) { _, level, facility, message in
            let text = message.map { String(cString: $0) } ?? ""
            let name = facility.map { String(cString: $0) } ?? ""
            let swiftLevel: Logger.Level = switch level {
            case 0...3: .error
            case 4: .warning
            case 5, 6: .info
            default: .debug
            }
            KafkaLog.logger.withLockedValue { $0 }.log(level: swiftLevel, "\(text)", metadata: ["kafka-facility": "\(name)"])
        }
    }
}

extension KafkaSettings {
    /// Sends librdkafka's log lines to `logger` for every client made after this call.
    public static func routeLibraryLogs(to logger: Logger) { KafkaLog.use(logger) }
}
