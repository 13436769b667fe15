import CRdKafka
import Foundation
import NIOConcurrencyHelpers
import OrchardObservability

/// Where a produced message landed.
public struct DeliveryReport: Sendable {
    public let partition: Int32
    public let offset: Int64
}

/// An idempotent producer: `send` returns once the broker has acknowledged the message
/// (acks=all), or throws with librdkafka's reason.
public final class KafkaProducer: @unchecked Sendable {
    // The handle is thread-safe for produce/poll per librdkafka's documentation.
    let handle: OpaquePointer
    private let running = NIOLockedValueBox(true)
    private let pollThreadExited = DispatchSemaphore(value: 0)

    public init(settings: KafkaSettings) throws {
        var properties = settings.common
        properties["enable.idempotence"] = "true"
        properties["acks"] = "all"
        properties["linger.ms"] = String(settings.lingerMs)
        properties.merge(settings.extra) { $1 }
        let conf = try makeConfiguration(properties)
        rd_kafka_conf_set_dr_msg_cb(conf, deliveryReportCallback)
        let handle = try makeClient(RD_KAFKA_PRODUCER, conf)
        self.handle = handle
        let running = self.running, exited = pollThreadExited, shared = SendableHandle(pointer: handle)
        // Delivery reports are served by rd_kafka_poll; it returns as soon as one is ready.
        let pollThread = Thread {
            while running.withLockedValue({ $0 }) { rd_kafka_poll(shared.pointer, 50) }
            exited.signal()
        }
        pollThread.name = "kafka-producer-poll"
        pollThread.start()
    }

    deinit {
        rd_kafka_flush(handle, 5000)
        running.withLockedValue { $0 = false }
        pollThreadExited.wait()
        rd_kafka_destroy(handle)
    }

    /// Produces one message and waits for the broker's acknowledgement.
    @discardableResult
    public func send(_ message: OutgoingMessage) async throws -> DeliveryReport {
        let started = DispatchTime.now()
        let report = try await enqueue(message).report()
        OrchardMetrics.produceLatency(topic: message.topic).record(.since(started))
        return report
    }

    /// Hands `message` to librdkafka now and returns its pending delivery. Messages enqueued one after the other
    /// reach their partition in that order (the idempotent producer keeps it); `send` from several tasks does not
    /// promise an order, since the tasks may start in any order.
    public func enqueue(_ message: OutgoingMessage) -> PendingDelivery {
        let pending = PendingDelivery()
        let box = Unmanaged.passRetained(pending).toOpaque()
        if let error = produce(message, opaque: box) {
            Unmanaged<PendingDelivery>.fromOpaque(box).release()
            pending.complete(.failure(error))
        }
        return pending
    }

    /// Waits until every queued message is delivered (shutdown).
    public func flush(timeoutMs: Int32 = 10_000) {
        rd_kafka_flush(handle, timeoutMs)
    }

    /// Whether a broker answers a metadata request within the timeout (for /readyz).
    public func isBrokerReachable(timeoutMs: Int32 = 1000) async -> Bool {
        let shared = SendableHandle(pointer: handle)
        return await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                var metadata: UnsafePointer<rd_kafka_metadata>?
                let err = rd_kafka_metadata(shared.pointer, 0, nil, &metadata, timeoutMs)
                if let metadata { rd_kafka_metadata_destroy(metadata) }
                continuation.resume(returning: err == RD_KAFKA_RESP_ERR_NO_ERROR)
            }
        }
    }

    /// Number of partitions of a topic.
    public func partitions(of topic: String) throws -> Int { try partitionCount(handle, topic: topic) }

    /// Hands the message to librdkafka (which copies it); nil on success.
    private func produce(_ message: OutgoingMessage, opaque: UnsafeMutableRawPointer) -> KafkaError? {
        var attempt = 0
        while true {
            let error = withVUs(message, opaque: opaque) { rd_kafka_produceva(handle, $0.baseAddress, $0.count) }
            guard let error else { return nil }
            let code = rd_kafka_error_code(error)
            let text = String(cString: rd_kafka_error_string(error))
            rd_kafka_error_destroy(error)
            // A full local queue drains as deliveries complete: wait briefly, then retry.
            if code == RD_KAFKA_RESP_ERR__QUEUE_FULL && attempt < 100 {
                attempt += 1
                usleep(10_000)
                continue
            }
            return KafkaError("produce to \(message.topic): \(text)")
        }
    }
}

/// A message handed to librdkafka: its broker acknowledgement or failure, once reported.
public final class PendingDelivery: @unchecked Sendable {
    private let lock = NIOLock()
    private var result: Result<DeliveryReport, any Error>?
    private var waiter: CheckedContinuation<DeliveryReport, any Error>?

    /// The report: waits for it, or until `giveUp` is called.
    public func report() async throws -> DeliveryReport {
        try await withCheckedThrowingContinuation { continuation in
            let ready: Result<DeliveryReport, any Error>? = lock.withLock {
                if result == nil { waiter = continuation }
                return result
            }
            if let ready { continuation.resume(with: ready) }
        }
    }

    /// Ends a wait for a report that has not come (a deadline passed); the report, if it comes later, is dropped.
    public func giveUp(_ error: any Error) { complete(.failure(error)) }

    func complete(_ outcome: Result<DeliveryReport, any Error>) {
        let waiting: CheckedContinuation<DeliveryReport, any Error>? = lock.withLock {
            guard result == nil else { return nil }
            result = outcome
            defer { waiter = nil }
            return waiter
        }
        waiting?.resume(with: outcome)
    }
}

private let deliveryReportCallback: @convention(c) (
    OpaquePointer?, UnsafePointer<rd_kafka_message_t>?, UnsafeMutableRawPointer?
) -> Void = { _, message, _ in
    guard let message, let opaque = message.pointee._private else { return }
    let pending = Unmanaged<PendingDelivery>.fromOpaque(opaque).takeRetainedValue()
    let m = message.pointee
    if m.err == RD_KAFKA_RESP_ERR_NO_ERROR {
        pending.complete(.success(DeliveryReport(partition: m.partition, offset: m.offset)))
    } else {
        pending.complete(.failure(KafkaError("delivery", code: m.err)))
    }
}

/// Builds the rd_kafka_vu_t argument list for rd_kafka_produceva, keeping every C string alive
/// for the call. RD_KAFKA_MSG_F_COPY makes librdkafka copy key and value before returning.
private func withVUs<T>(
    _ message: OutgoingMessage, opaque: UnsafeMutableRawPointer,
    _ body: (UnsafeMutableBufferPointer<rd_kafka_vu_t>) -> T
) -> T {
    var owned: [UnsafeMutablePointer<CChar>] = []
    defer { owned.forEach { free($0) } }
    func cString(_ s: String) -> UnsafeMutablePointer<CChar> {
        let p = strdup(s)!
        owned.append(p)
        return p
    }
    var vus: [rd_kafka_vu_t] = []
    var vu = rd_kafka_vu_t()
    vu.vtype = RD_KAFKA_VTYPE_TOPIC
    vu.u.cstr = UnsafePointer(cString(message.topic))
    vus.append(vu)
    vu = rd_kafka_vu_t()
    vu.vtype = RD_KAFKA_VTYPE_MSGFLAGS
    vu.u.i = RD_KAFKA_MSG_F_COPY
    vus.append(vu)
    vu = rd_kafka_vu_t()
    vu.vtype = RD_KAFKA_VTYPE_OPAQUE
    vu.u.ptr = opaque
    vus.append(vu)
    if let partition = message.partition {
        vu = rd_kafka_vu_t()
        vu.vtype = RD_KAFKA_VTYPE_PARTITION
        vu.u.i32 = partition
        vus.append(vu)
    }
    if let key = message.key {
        let bytes = Array(key.utf8)
        let p = cString(key)
        vu = rd_kafka_vu_t()
        vu.vtype = RD_KAFKA_VTYPE_KEY
        vu.u.mem.ptr = UnsafeMutableRawPointer(p)
        vu.u.mem.size = bytes.count
        vus.append(vu)
    }
    for (name, value) in message.headers.sorted(by: { $0.key < $1.key }) {
        vu = rd_kafka_vu_t()
        vu.vtype = RD_KAFKA_VTYPE_HEADER
        vu.u.header.name = UnsafePointer(cString(name))
        vu.u.header.val = UnsafeRawPointer(cString(value))
        vu.u.header.size = value.utf8.count
        vus.append(vu)
    }
    let valueCopy = UnsafeMutableRawPointer.allocate(byteCount: max(message.value.count, 1), alignment: 1)
    defer { valueCopy.deallocate() }
    if !message.value.isEmpty {
        message.value.withUnsafeBytes { valueCopy.copyMemory(from: $0.baseAddress!, byteCount: message.value.count) }
    }
    vu = rd_kafka_vu_t()
    vu.vtype = RD_KAFKA_VTYPE_VALUE
    vu.u.mem.ptr = valueCopy
    vu.u.mem.size = message.value.count
    vus.append(vu)
    return vus.withUnsafeMutableBufferPointer { body($0) }
}
