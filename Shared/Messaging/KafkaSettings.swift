import CRdKafka

/// How to reach Kafka and how to tune the client. Defaults favour latency: devices wait on request/reply.
public struct KafkaSettings: Sendable {
    public var bootstrapServers: String
    public var clientID: String
    /// Producer batching delay; 0 sends at once.
    public var lingerMs: Int = 0
    /// How long a fetch may wait on the broker. A real Kafka broker answers as soon as data arrives, so a
    /// high value costs no latency there; librdkafka's mock broker holds every fetch this long, so the
    /// local scripts set 1 ms.
    public var fetchWaitMaxMs: Int = 100
    /// How soon a crashed consumer's partitions move to another member.
    public var sessionTimeoutMs: Int = 10_000
    /// At most this many messages of one partition to a consumer's batch handler at once (1: one at a time).
    public var consumerMaxBatch: Int = 200
    /// Any other librdkafka property, passed through as is.
    public var extra: [String: String] = [:]

    public init(bootstrapServers: String, clientID: String) {
        self.bootstrapServers = bootstrapServers
        self.clientID = clientID
    }

    var common: [String: String] {
        var c = [
            "bootstrap.servers": bootstrapServers,
            "client.id": clientID,
            "socket.nagle.disable": "true",
            "log.connection.close": "false",
        ]
        c.merge(extra) { $1 }
        return c
    }
}

/// A failure reported by librdkafka.
public struct KafkaError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }

    init(_ message: String) { self.message = message }
    init(_ operation: String, code: rd_kafka_resp_err_t) {
        self.message = "\(operation): \(String(cString: rd_kafka_err2str(code)))"
    }
}

/// Builds a librdkafka configuration; the caller owns the result until rd_kafka_new takes it.
func makeConfiguration(_ properties: [String: String]) throws -> OpaquePointer {
    let conf = rd_kafka_conf_new()!
    KafkaLog.install(on: conf)
    var error = [CChar](repeating: 0, count: 512)
    for (key, value) in properties.sorted(by: { $0.key < $1.key }) {
        if rd_kafka_conf_set(conf, key, value, &error, error.count) != RD_KAFKA_CONF_OK {
            rd_kafka_conf_destroy(conf)
            throw KafkaError("invalid Kafka setting \(key)=\(value): \(cText(error))")
        }
    }
    return conf
}

/// Creates a client handle, taking ownership of conf.
func makeClient(_ type: rd_kafka_type_t, _ conf: OpaquePointer) throws -> OpaquePointer {
    var error = [CChar](repeating: 0, count: 512)
    guard let handle = rd_kafka_new(type, conf, &error, error.count) else {
        rd_kafka_conf_destroy(conf)
        throw KafkaError("cannot create Kafka client: \(cText(error))")
    }
    return handle
}

/// Number of partitions of a topic, from broker metadata (blocks up to timeoutMs).
func partitionCount(_ handle: OpaquePointer, topic: String, timeoutMs: Int32 = 5000) throws -> Int {
    let topicHandle = rd_kafka_topic_new(handle, topic, nil)
    defer { rd_kafka_topic_destroy(topicHandle) }
    var metadata: UnsafePointer<rd_kafka_metadata>?
    let err = rd_kafka_metadata(handle, 0, topicHandle, &metadata, timeoutMs)
    guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else { throw KafkaError("metadata for \(topic)", code: err) }
    defer { rd_kafka_metadata_destroy(metadata) }
    guard metadata.pointee.topic_cnt == 1 else { throw KafkaError("topic \(topic) not found") }
    let info = metadata.pointee.topics[0]
    guard info.err == RD_KAFKA_RESP_ERR_NO_ERROR, info.partition_cnt > 0 else {
        throw KafkaError("metadata for \(topic)", code: info.err)
    }
    return Int(info.partition_cnt)
}

/// librdkafka's client handle is thread-safe; this lets its pointer cross into poll threads.
struct SendableHandle: @unchecked Sendable {
    let pointer: OpaquePointer
}

/// Reads a NUL-terminated error buffer filled by librdkafka.
func cText(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
