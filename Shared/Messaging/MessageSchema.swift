import Foundation
import OrchardCore

/// A typed Kafka message: the Swift type fixes its topic, its `type` header and its schema version.
/// Adding an optional field keeps the version; any other change is a new version (and topic suffix).
/// Unknown fields are ignored on decode, so older readers keep working.
public protocol MessageSchema: Codable, Sendable {
    static var topic: String { get }
    static var type: String { get }
    static var version: Int { get }
    /// The partitioning key: the device or enrollment it concerns, so one device's messages stay in order.
    var key: String { get }
}

/// A message that expects an answer from another service while a caller waits.
public protocol RequestSchema: MessageSchema {
    associatedtype Reply: Codable & Sendable
}

/// A message written on every device request writes its JSON itself: `JSONEncoder` was about 6% of
/// the gateway's CPU per check-in. The text must decode with `MessageCodec.decode` to the same value
/// (tests check each such type).
public protocol DirectJSONEncodable {
    func jsonText() -> String
}

/// Builds a JSON object with its keys in sorted order, as `MessageCodec` writes them.
public struct JSONObjectWriter {
    private var fields: [(String, String)] = []
    public init() {}

    public mutating func string(_ key: String, _ value: String?) {
        guard let value else { return }
        var text = ""
        JSONText.string(value, into: &text)
        fields.append((key, text))
    }

    public mutating func date(_ key: String, _ value: Date) { string(key, ISO8601.string(from: value)) }

    public mutating func strings(_ key: String, _ values: [String]) {
        var text = "["
        for (i, v) in values.enumerated() {
            if i > 0 { text += "," }
            JSONText.string(v, into: &text)
        }
        fields.append((key, text + "]"))
    }

    public mutating func stringMap(_ key: String, _ map: [String: String]) { fields.append((key, JSONText.object(map))) }

    public func text() -> String {
        var out = "{"
        for (i, field) in fields.sorted(by: { $0.0 < $1.0 }).enumerated() {
            if i > 0 { out += "," }
            JSONText.string(field.0, into: &out)
            out += ":" + field.1
        }
        return out + "}"
    }
}

/// JSON with ISO 8601 dates, the wire format of every Orchard message.
public enum MessageCodec {
    public static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        if let direct = value as? any DirectJSONEncodable { return Array(direct.jsonText().utf8) }
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601WithFractions
        encoder.outputFormatting = [.sortedKeys]
        return Array(try encoder.encode(value))
    }

    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601WithOptionalFractions
        return try decoder.decode(type, from: Data(bytes))
    }

    /// Decodes a consumed message as `T`, checking its type and version headers.
    /// A mismatch or malformed body is a `MessageRejected`: retrying cannot fix it.
    public static func decode<T: MessageSchema>(_ type: T.Type, from message: ConsumedMessage) throws -> T {
        guard message.headers[Header.type] == T.type else {
            throw MessageRejected("expected type \(T.type), got \(message.headers[Header.type] ?? "none")")
        }
        guard message.headers[Header.version] == String(T.version) else {
            throw MessageRejected("\(T.type): unsupported version \(message.headers[Header.version] ?? "none")")
        }
        do {
            return try decode(T.self, from: message.value)
        } catch {
            throw MessageRejected("\(T.type): malformed body: \(error)")
        }
    }

    /// The outgoing form of a typed message, with its standard headers.
    public static func outgoing<T: MessageSchema>(_ value: T, correlationID: String? = nil,
                                                  headers extra: [String: String] = [:]) throws -> OutgoingMessage {
        var headers = extra
        headers[Header.type] = T.type
        headers[Header.version] = String(T.version)
        headers[Header.messageID] = headers[Header.messageID] ?? RandomUUID.lowercased()
        if let correlationID { headers[Header.correlationID] = correlationID }
        return OutgoingMessage(topic: T.topic, key: value.key, value: try encode(value), headers: headers)
    }
}

extension JSONEncoder.DateEncodingStrategy {
    static let iso8601WithFractions = JSONEncoder.DateEncodingStrategy.custom { date, encoder in
        var container = encoder.singleValueContainer()
        try container.encode(ISO8601.string(from: date))
    }
}

extension JSONDecoder.DateDecodingStrategy {
    static let iso8601WithOptionalFractions = JSONDecoder.DateDecodingStrategy.custom { decoder in
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        if let date = ISO8601.date(from: text) { return date }
        throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an ISO 8601 date: \(text)")
    }
}

extension KafkaProducer {
    /// Publishes a typed message and waits for the broker's acknowledgement.
    @discardableResult
    public func publish<T: MessageSchema>(_ value: T, correlationID: String? = nil) async throws -> DeliveryReport {
        try await send(MessageCodec.outgoing(value, correlationID: correlationID))
    }
}
