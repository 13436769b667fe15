import Foundation
import OrchardCore
import Logging

/// Writes one JSON object per line to standard error: time, level, service, message and metadata
/// (the correlation id travels as metadata key `correlation-id`).
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let label: String
    private let service: String

    public init(label: String, service: String, level: Logger.Level) {
        self.label = label
        self.service = service
        self.logLevel = level
    }

    /// Installs the handler for the whole process.
    public static func bootstrap(service: String, level: Logger.Level) {
        LoggingSystem.bootstrap { JSONLogHandler(label: $0, service: service, level: level) }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var object: [String: Any] = [
            "time": ISO8601.string(from: Date()),
            "level": event.level.rawValue,
            "service": service,
            "logger": label,
            "message": event.message.description,
        ]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) {
            object[key] = value.description
        }
        if event.level >= .error { object["source"] = "\(event.file):\(event.line)" }
        guard var data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        data.append(0x0A)
        writeToStandardError(data)
    }
}

/// Writes a log line to fd 2 with write(2), giving up quietly if it cannot: a log reader that went away (its
/// pipe closed) must not take the service with it. Foundation's FileHandle.write traps on EPIPE: services
/// whose log reader died crashed (SIGILL) on their next log line (found by the fault scripts).
public func writeToStandardError(_ data: Data) {
    data.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) in
        guard var pointer = buffer.baseAddress else { return }
        var left = buffer.count
        while left > 0 {
            let written = write(2, pointer, left)
            if written > 0 {
                pointer += written
                left -= written
            } else if written < 0 && errno == EINTR {
                continue
            } else {
                return
            }
        }
    }
}
