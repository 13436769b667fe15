import CRdKafka
import Foundation

/// Header names every Orchard message may carry.
public enum Header {
    public static let type = "type"
    public static let version = "version"
    public static let messageID = "message-id"
    public static let correlationID = "correlation-id"
    public static let replyTo = "reply-to"
    public static let deadline = "deadline"
    public static let traceparent = "traceparent"
    public static let status = "status"
    /// The service whose outbox published the message.
    public static let origin = "origin"
}

/// A message to produce.
public struct OutgoingMessage: Sendable {
    public var topic: String
    public var key: String?
    public var value: [UInt8]
    public var headers: [String: String]
    /// An explicit partition, or nil for the partitioner's choice by key.
    public var partition: Int32?

    public init(topic: String, key: String?, value: [UInt8], headers: [String: String] = [:], partition: Int32? = nil) {
        self.topic = topic
        self.key = key
        self.value = value
        self.headers = headers
        self.partition = partition
    }
}

/// A message as consumed, copied out of librdkafka's buffers.
public struct ConsumedMessage: Sendable {
    public let topic: String
    public let partition: Int32
    public let offset: Int64
    public let key: String?
    public let value: [UInt8]
    public let headers: [String: String]

    public var type: String? { headers[Header.type] }
    public var messageID: String? { headers[Header.messageID] }
    public var correlationID: String? { headers[Header.correlationID] }

    public init(topic: String, partition: Int32, offset: Int64, key: String?, value: [UInt8], headers: [String: String]) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.headers = headers
    }

    init(copying message: UnsafeMutablePointer<rd_kafka_message_t>) {
        let m = message.pointee
        topic = String(cString: rd_kafka_topic_name(m.rkt))
        partition = m.partition
        offset = m.offset
        key = m.key.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: m.key_len), as: UTF8.self) }
        value = m.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: m.len)) } ?? []
        var headers: [String: String] = [:]
        var list: OpaquePointer?
        if rd_kafka_message_headers(message, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list {
            var index = 0
            var name: UnsafePointer<CChar>?
            var valuePointer: UnsafeRawPointer?
            var size = 0
            while rd_kafka_header_get_all(list, index, &name, &valuePointer, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
                if let name {
                    let bytes = valuePointer.map { UnsafeRawBufferPointer(start: $0, count: size) }
                    headers[String(cString: name)] = bytes.map { String(decoding: $0, as: UTF8.self) } ?? ""
                }
                index += 1
            }
        }
        self.headers = headers
    }
}
