import CRdKafka
import Foundation
import OrchardCore
import Logging
import NIOConcurrencyHelpers
import OrchardObservability

/// The answer a responder gives when it refuses a request for a domain reason (invalid token,
/// not eligible…). It travels back to the requester and is thrown there, with the HTTP status to use.
public struct RequestRefused: Error, Codable, Sendable, CustomStringConvertible {
    public let code: String
    public let message: String
    public let httpStatus: Int

    public init(code: String, message: String, httpStatus: Int = 400) {
        self.code = code
        self.message = message
        self.httpStatus = httpStatus
    }

    public var description: String { "\(code): \(message)" }
}

/// The requester waited past the request's deadline; answer the device with 503 and Retry-After.
public struct RequestTimedOut: Error, CustomStringConvertible, Sendable {
    public let type: String
    public let correlationID: String
    public var description: String { "no reply to \(type) (correlation id \(correlationID)) before its deadline" }

    public init(type: String, correlationID: String) {
        self.type = type
        self.correlationID = correlationID
    }
}

/// Sends requests over Kafka and awaits their replies.
///
/// Replies travel on one shared topic. Each instance reads a single partition of it, chosen from
/// its instance id, and names that partition in `reply-to`; the responder produces the reply there.
/// Several instances may share a partition: each keeps only the correlation ids it is waiting for.
/// A reply that arrives after its deadline finds no waiter and is dropped.
public final class RequestClient: @unchecked Sendable {
    public static let replyTopic = "orchard.replies.v1"

    private let producer: KafkaProducer
    private let handle: OpaquePointer
    private let replyPartition: Int32
    private let pending = NIOLockedValueBox<[String: CheckedContinuation<ConsumedMessage, any Error>]>([:])
    private let running = NIOLockedValueBox(true)
    private let pollThreadExited = DispatchSemaphore(value: 0)
    private let logger: Logger

    public init(settings: KafkaSettings, producer: KafkaProducer, instanceID: String, logger: Logger) throws {
        self.producer = producer
        self.logger = logger
        var properties = settings.common
        // Never joins a group or commits: it reads its reply partition from the current end.
        properties["group.id"] = "orchard-replies-\(instanceID)"
        properties["enable.auto.commit"] = "false"
        // A broker that lost its log (the local broker restarted) answers "offset out of range": start
        // again from the beginning of the partition, not its end, or replies written meanwhile are skipped.
        properties["auto.offset.reset"] = "earliest"
        properties["fetch.wait.max.ms"] = String(settings.fetchWaitMaxMs)
        properties["fetch.error.backoff.ms"] = "10"
        properties.merge(settings.extra) { $1 }
        let handle = try makeClient(RD_KAFKA_CONSUMER, try makeConfiguration(properties))
        self.handle = handle
        do {
            let count = try partitionCount(handle, topic: Self.replyTopic)
            replyPartition = Int32(stableHash(instanceID) % UInt32(count))
            try assignAtEnd(handle, topic: Self.replyTopic, partition: replyPartition)
        } catch {
            rd_kafka_destroy(handle)
            throw error
        }
        let thread = Thread { [unowned self] in pollReplies() }
        thread.name = "kafka-replies"
        thread.start()
    }

    deinit {
        running.withLockedValue { $0 = false }
        pollThreadExited.wait()
        rd_kafka_consumer_close(handle)
        rd_kafka_destroy(handle)
    }

    /// Sends `request` and waits for its reply until `timeout` passes.
    /// Throws `RequestRefused` when the responder refused, `RequestTimedOut` past the deadline.
    public func request<R: RequestSchema>(_ request: R, timeout: Duration, correlationID: String,
                                          traceparent: String? = nil) async throws -> R.Reply {
        let started = DispatchTime.now()
        let deadline = Date().addingTimeInterval(timeout.seconds)
        let requestID = RandomUUID.lowercased()
        var headers = [
            Header.replyTo: "\(Self.replyTopic):\(replyPartition)",
            Header.deadline: String(Int64(deadline.timeIntervalSince1970 * 1000)),
            Header.messageID: requestID,
        ]
        if let traceparent { headers[Header.traceparent] = traceparent }
        // The request id, not the caller's correlation id, pairs reply with request: a caller may
        // send several requests under one correlation id.
        headers["request-id"] = requestID
        let message = try MessageCodec.outgoing(request, correlationID: correlationID, headers: headers)

        let reply: ConsumedMessage = try await withCheckedThrowingContinuation { continuation in
            pending.withLockedValue { $0[requestID] = continuation }
            DispatchQueue.global().asyncAfter(deadline: .now() + timeout.seconds) { [weak self] in
                self?.resume(requestID, with: .failure(RequestTimedOut(type: R.type, correlationID: correlationID)))
            }
            Task {
                do { try await producer.send(message) } catch { self.resume(requestID, with: .failure(error)) }
            }
        }
        OrchardMetrics.requestLatency(type: R.type).record(.since(started))
        if reply.headers[Header.status] == "refused" {
            throw try MessageCodec.decode(RequestRefused.self, from: reply.value)
        }
        return try MessageCodec.decode(R.Reply.self, from: reply.value)
    }

    private func resume(_ requestID: String, with result: Result<ConsumedMessage, any Error>) {
        guard let continuation = pending.withLockedValue({ $0.removeValue(forKey: requestID) }) else { return }
        continuation.resume(with: result)
    }

    private func pollReplies() {
        while running.withLockedValue({ $0 }) {
            guard let message = rd_kafka_consumer_poll(handle, 100) else { continue }
            defer { rd_kafka_message_destroy(message) }
            guard message.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR else { continue }
            let reply = ConsumedMessage(copying: message)
            guard let requestID = reply.headers["request-id"] else { continue }
            if pending.withLockedValue({ $0[requestID] == nil }) {
                // Another instance's reply on a shared partition, or a late one.
                continue
            }
            resume(requestID, with: .success(reply))
        }
        pollThreadExited.signal()
    }
}

/// Answers requests of one type. Use as (part of) a consumer's handler on the request topic.
public struct RequestResponder<R: RequestSchema>: Sendable {
    public typealias Handle = @Sendable (R, ConsumedMessage) async throws -> R.Reply

    private let producer: KafkaProducer
    private let logger: Logger
    private let handle: Handle

    public init(_ type: R.Type, producer: KafkaProducer, logger: Logger, handle: @escaping Handle) {
        self.producer = producer
        self.logger = logger
        self.handle = handle
    }

    /// Handles one request message: skips it when its deadline passed, otherwise replies with the
    /// handler's answer or its `RequestRefused`. Other errors propagate, so the consumer retries.
    public func respond(to message: ConsumedMessage) async throws {
        let request = try MessageCodec.decode(R.self, from: message)
        guard let replyTo = message.headers[Header.replyTo], let target = parseReplyTo(replyTo) else {
            throw MessageRejected("\(R.type) without a valid reply-to header")
        }
        if let deadline = message.headers[Header.deadline].flatMap(Int64.init),
           Int64(Date().timeIntervalSince1970 * 1000) > deadline {
            OrchardMetrics.requestsExpired(type: R.type).increment()
            logger.info("skipping expired request", metadata: ["type": "\(R.type)",
                                                               "correlation-id": "\(message.correlationID ?? "")"])
            return
        }
        var headers = [Header.type: R.type + ".reply", Header.version: String(R.version), Header.status: "ok"]
        headers[Header.correlationID] = message.correlationID
        headers["request-id"] = message.headers["request-id"]
        let body: [UInt8]
        do {
            body = try MessageCodec.encode(try await handle(request, message))
        } catch let refused as RequestRefused {
            headers[Header.status] = "refused"
            body = try MessageCodec.encode(refused)
        }
        try await producer.send(OutgoingMessage(topic: target.topic, key: message.key, value: body, headers: headers,
                                                partition: target.partition))
    }
}

/// Routes messages of several types arriving on one topic to their handlers by the `type` header.
public struct MessageRouter: Sendable {
    private var routes: [String: KafkaConsumer.Handler] = [:]

    public init() {}

    public mutating func on(_ type: String, _ handler: @escaping KafkaConsumer.Handler) {
        routes[type] = handler
    }

    public mutating func respond<R: RequestSchema>(_ responder: RequestResponder<R>) {
        routes[R.type] = { try await responder.respond(to: $0) }
    }

    public var handler: KafkaConsumer.Handler {
        let routes = self.routes
        return { message in
            guard let type = message.type, let route = routes[type] else {
                throw MessageRejected("no handler for message type \(message.type ?? "none")")
            }
            try await route(message)
        }
    }
}

func parseReplyTo(_ text: String) -> (topic: String, partition: Int32)? {
    guard let colon = text.lastIndex(of: ":"), let partition = Int32(text[text.index(after: colon)...]),
          partition >= 0 else { return nil }
    let topic = String(text[..<colon])
    guard topic.hasPrefix("orchard.replies.") else { return nil }
    return (topic, partition)
}

/// FNV-1a: the same instance id picks the same reply partition on every platform and run.
func stableHash(_ text: String) -> UInt32 {
    var hash: UInt32 = 2_166_136_261
    for byte in text.utf8 {
        hash ^= UInt32(byte)
        hash = hash &* 16_777_619
    }
    return hash
}

/// Assigns one partition starting at its current high watermark, resolved before returning so that
/// no reply produced after this call can be missed.
private func assignAtEnd(_ handle: OpaquePointer, topic: String, partition: Int32) throws {
    var low: Int64 = 0, high: Int64 = 0
    let err = rd_kafka_query_watermark_offsets(handle, topic, partition, &low, &high, 5000)
    guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError("watermarks of \(topic)", code: err) }
    let list = rd_kafka_topic_partition_list_new(1)
    defer { rd_kafka_topic_partition_list_destroy(list) }
    rd_kafka_topic_partition_list_add(list, topic, partition).pointee.offset = high
    let assignErr = rd_kafka_assign(handle, list)
    guard assignErr == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError("assign \(topic)", code: assignErr) }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
