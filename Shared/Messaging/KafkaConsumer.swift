import CRdKafka
import Foundation
import Logging
import NIOConcurrencyHelpers
import OrchardObservability
import OrchardStorage
import ServiceLifecycle

/// Thrown by a handler for a message that can never succeed (malformed, unknown type, wrong version):
/// the message goes to the dead-letter topic at once instead of being retried.
public struct MessageRejected: Error, CustomStringConvertible {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// A consumer-group member. Messages of one partition are handled in order, partitions in parallel.
/// An offset is stored for commit only after its handler succeeded, so delivery is at least once:
/// handlers must be idempotent (see `Inbox`). A handler that keeps failing, or rejects a message,
/// sends it to `orchard.dead-letters.v1` so that one bad message never blocks its partition.
public final class KafkaConsumer: Service, @unchecked Sendable {
    public typealias Handler = @Sendable (ConsumedMessage) async throws -> Void
    /// Handles, at once and in order, messages of one partition that arrived while the previous ones were handled
    /// (a copy written in one transaction instead of one per message). If it throws anything but "the database is
    /// away", the messages are handled one by one with `Handler`, so a bad message is dead-lettered alone.
    public typealias BatchHandler = @Sendable ([ConsumedMessage]) async throws -> Void

    public static let deadLetterTopic = "orchard.dead-letters.v1"

    private let settings: KafkaSettings
    private let groupID: String
    private let topics: [String]
    private let handler: Handler
    private let batchHandler: BatchHandler?
    fileprivate let maxBatch: Int
    private let deadLetters: KafkaProducer
    private let logger: Logger
    fileprivate let maxInFlight: Int
    private let maxAttempts: Int
    private let stopSignal = StopSignal()
    private let assigned = NIOLockedValueBox(false)

    public init(settings: KafkaSettings, groupID: String, topics: [String], deadLetters: KafkaProducer,
                logger: Logger, maxInFlight: Int = 256, maxAttempts: Int = 5, handler: @escaping Handler,
                batchHandler: BatchHandler? = nil, maxBatch: Int = 200) {
        self.settings = settings
        self.groupID = groupID
        self.topics = topics
        self.handler = handler
        self.batchHandler = batchHandler
        self.maxBatch = batchHandler == nil ? 1 : max(1, maxBatch)
        self.deadLetters = deadLetters
        self.logger = logger
        self.maxInFlight = maxInFlight
        self.maxAttempts = maxAttempts
    }

    /// Whether the group has given this member partitions (once true, stays true).
    public var hasAssignment: Bool { assigned.withLockedValue { $0 } }

    /// Asks `run` to finish: in-flight handlers complete, their offsets are committed, the member leaves.
    public func stop() { stopSignal.fire() }

    public func run() async throws {
        var properties = settings.common
        properties["group.id"] = groupID
        properties["enable.auto.commit"] = "true"
        properties["auto.commit.interval.ms"] = "500"
        properties["enable.auto.offset.store"] = "false"
        properties["auto.offset.reset"] = "earliest"
        properties["fetch.wait.max.ms"] = String(settings.fetchWaitMaxMs)
        properties["session.timeout.ms"] = String(settings.sessionTimeoutMs)
        properties["heartbeat.interval.ms"] = String(max(100, settings.sessionTimeoutMs / 5))
        // Incremental rebalancing: when a replica joins or leaves, only the partitions that move pause.
        properties["partition.assignment.strategy"] = "cooperative-sticky"
        properties.merge(settings.extra) { $1 }
        let handle = try makeClient(RD_KAFKA_CONSUMER, try makeConfiguration(properties))
        rd_kafka_poll_set_consumer(handle)
        let list = rd_kafka_topic_partition_list_new(Int32(topics.count))
        for topic in topics { rd_kafka_topic_partition_list_add(list, topic, RD_KAFKA_PARTITION_UA) }
        let err = rd_kafka_subscribe(handle, list)
        rd_kafka_topic_partition_list_destroy(list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            rd_kafka_destroy(handle)
            throw KafkaError("subscribe to \(topics)", code: err)
        }
        logger.info("consumer started", metadata: ["group": "\(groupID)", "topics": "\(topics.joined(separator: ","))"])

        let loop = PollLoop(consumer: self, handle: handle)
        let workers: [Task<Void, Never>] = await withCheckedContinuation { continuation in
            let thread = Thread { continuation.resume(returning: loop.run()) }
            thread.name = "kafka-consumer-\(groupID)"
            thread.start()
            Task {
                await withTaskCancellationHandler {
                    await withGracefulShutdownHandler {
                        await self.stopSignal.wait()
                    } onGracefulShutdown: {
                        self.stopSignal.fire()
                    }
                } onCancel: {
                    self.stopSignal.fire()
                }
                loop.stop()
            }
        }
        for worker in workers { await worker.value }
        // librdkafka 2.0.2 (Debian's) aborts in the cooperative-sticky assignor when a consumer is destroyed before
        // its first assignment (librdkafka#4312, fixed in 2.3.0): profile-signer stopped with SIGTERM during
        // start-up died with SIGABRT in 6 of 30 runs (Deploy/fault-signer-sigterm.sh). Such a consumer has no
        // offsets to commit: it is left to the process's exit, and the group forgets it after session.timeout.ms.
        var assignment: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        let assigned = rd_kafka_assignment(handle, &assignment) == RD_KAFKA_RESP_ERR_NO_ERROR && (assignment?.pointee.cnt ?? 0) > 0
        if let assignment { rd_kafka_topic_partition_list_destroy(assignment) }
        guard assigned else {
            logger.info("consumer stopped before its first assignment", metadata: ["group": "\(groupID)"])
            return
        }
        // Commits the stored offsets and leaves the group.
        rd_kafka_consumer_close(handle)
        rd_kafka_destroy(handle)
        logger.info("consumer stopped", metadata: ["group": "\(groupID)"])
    }

    /// Handles messages of one partition in order; returns how many of them (a prefix) are done, so that their offsets
    /// may be stored. Several at once go to the batch handler (retried while the database is away); if it fails
    /// otherwise, each is handled on its own.
    fileprivate func process(batch: [ConsumedMessage]) async -> Int {
        if batch.count > 1, let batchHandler {
            var attempt = 0
            while true {
                attempt += 1
                do {
                    try await batchHandler(batch)
                    for message in batch { OrchardMetrics.consumed(topic: message.topic).increment() }
                    return batch.count
                } catch {
                    guard (error as? PostgresError)?.isUnavailable == true else {
                        logger.warning("batch of \(batch.count) failed, handling each message: \(error)",
                                       metadata: ["topic": "\(batch[0].topic)", "partition": "\(batch[0].partition)"])
                        break
                    }
                    if attempt == 1 || attempt % 10 == 0 {
                        logger.warning("database unavailable, retrying a batch of \(batch.count) (attempt \(attempt)): \(error)")
                    }
                    if stopSignal.isFired { return 0 }
                    try? await Task.sleep(for: .milliseconds(50 << min(attempt, 6)))
                }
            }
        }
        for (index, message) in batch.enumerated() where !(await process(message)) { return index }
        return batch.count
    }

    /// Handles one message with retries; returns whether its offset may be stored.
    fileprivate func process(_ message: ConsumedMessage) async -> Bool {
        var metadata: Logger.Metadata = ["topic": "\(message.topic)", "partition": "\(message.partition)",
                                         "offset": "\(message.offset)"]
        if let id = message.correlationID { metadata["correlation-id"] = "\(id)" }
        var attempt = 0
        while true {
            attempt += 1
            do {
                try await handler(message)
                OrchardMetrics.consumed(topic: message.topic).increment()
                return true
            } catch let rejection as MessageRejected {
                logger.warning("message rejected: \(rejection.reason)", metadata: metadata)
                return await deadLetter(message, reason: rejection.reason)
            } catch {
                // The database away (restarting, unreachable) is no fault of the message: retried until it is
                // back (or the consumer stops), never dead-lettered. A PostgreSQL restart used to dead-letter
                // the activity entries the gateway was storing then (fault suite).
                if (error as? PostgresError)?.isUnavailable == true {
                    if attempt == 1 || attempt % 10 == 0 {
                        logger.warning("database unavailable, retrying (attempt \(attempt)): \(error)", metadata: metadata)
                    }
                    if stopSignal.isFired { return false }
                    try? await Task.sleep(for: .milliseconds(50 << min(attempt, 6)))
                    continue
                }
                if attempt >= maxAttempts {
                    logger.error("handler failed \(attempt) times, dead-lettering: \(error)", metadata: metadata)
                    return await deadLetter(message, reason: "\(error)")
                }
                logger.warning("handler failed (attempt \(attempt)): \(error)", metadata: metadata)
                if stopSignal.isFired { return false }
                try? await Task.sleep(for: .milliseconds(50 << min(attempt, 6)))
            }
        }
    }

    private func deadLetter(_ message: ConsumedMessage, reason: String) async -> Bool {
        var headers = message.headers
        headers["dead-letter-reason"] = String(reason.prefix(1000))
        headers["original-topic"] = message.topic
        headers["original-partition"] = String(message.partition)
        headers["original-offset"] = String(message.offset)
        headers["consumer-group"] = groupID
        OrchardMetrics.deadLetters(topic: message.topic).increment()
        do {
            try await deadLetters.send(OutgoingMessage(topic: Self.deadLetterTopic, key: message.key,
                                                       value: message.value, headers: headers))
            return true
        } catch {
            // Without a dead letter the offset must not move on, or the message would be lost.
            logger.error("could not dead-letter message: \(error)")
            return false
        }
    }

    fileprivate func markAssigned() { assigned.withLockedValue { $0 = true } }
}

/// The consumer's poll thread: reads messages and feeds one ordered worker per partition.
private final class PollLoop: @unchecked Sendable {
    private unowned let consumer: KafkaConsumer
    private let handle: OpaquePointer
    private let running = NIOLockedValueBox(true)
    /// A partition's messages waiting for its worker: the poll thread appends, the worker takes what has gathered
    /// (at most `maxBatch`) each time it is woken.
    private final class Pending: Sendable {
        let messages: NIOLockedValueBox<[ConsumedMessage]>
        let wake: AsyncStream<Void>.Continuation
        let task: Task<Void, Never>
        init(messages: NIOLockedValueBox<[ConsumedMessage]>, wake: AsyncStream<Void>.Continuation, task: Task<Void, Never>) {
            self.messages = messages; self.wake = wake; self.task = task
        }
    }
    // Touched only by the poll thread.
    private var workers: [String: Pending] = [:]
    private let inFlight: DispatchSemaphore

    init(consumer: KafkaConsumer, handle: OpaquePointer) {
        self.consumer = consumer
        self.handle = handle
        self.inFlight = DispatchSemaphore(value: consumer.maxInFlight)
    }

    func stop() { running.withLockedValue { $0 = false } }

    private func checkAssignment() {
        var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        guard rd_kafka_assignment(handle, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list else { return }
        if list.pointee.cnt > 0 { consumer.markAssigned() }
        rd_kafka_topic_partition_list_destroy(list)
    }

    /// Polls until stopped; returns the workers to await.
    func run() -> [Task<Void, Never>] {
        while running.withLockedValue({ $0 }) {
            // Until the group gives this member partitions, look each turn (readiness waits for it).
            if !consumer.hasAssignment { checkAssignment() }
            guard let message = rd_kafka_consumer_poll(handle, 100) else { continue }
            defer { rd_kafka_message_destroy(message) }
            if message.pointee.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                if message.pointee.err != RD_KAFKA_RESP_ERR__PARTITION_EOF {
                    let text = String(cString: rd_kafka_err2str(message.pointee.err))
                    consumer.logFetchError(text)
                }
                continue
            }
            consumer.markAssigned()
            // Back-pressure: at most maxInFlight messages in flight across this member's partitions.
            while inFlight.wait(timeout: .now() + .milliseconds(100)) == .timedOut {
                if !running.withLockedValue({ $0 }) { return finish() }
            }
            let copy = ConsumedMessage(copying: message)
            let pending = worker(for: copy)
            pending.messages.withLockedValue { $0.append(copy) }
            pending.wake.yield()
        }
        return finish()
    }

    private func finish() -> [Task<Void, Never>] {
        workers.values.forEach { $0.wake.finish() }
        return workers.values.map(\.task)
    }

    private func worker(for message: ConsumedMessage) -> Pending {
        let key = "\(message.topic)/\(message.partition)"
        if let existing = workers[key] { return existing }
        // One wake stands for any number of appends: the worker takes everything that has gathered.
        let (stream, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let messages = NIOLockedValueBox<[ConsumedMessage]>([])
        let handle = self.handle, inFlight = self.inFlight, consumer = self.consumer, maxBatch = consumer.maxBatch
        let task = Task {
            // After a message that could not be finished (shutdown, dead-letter topic unreachable), later
            // ones of the partition are left alone so that no offset moves past it; they are redelivered.
            var blocked = false
            for await _ in stream {
                while true {
                    let batch = messages.withLockedValue { waiting -> [ConsumedMessage] in
                        let taken = Array(waiting.prefix(maxBatch))
                        waiting.removeFirst(taken.count)
                        return taken
                    }
                    if batch.isEmpty { break }
                    if !blocked {
                        let done = await consumer.process(batch: batch)
                        if done > 0 { storeOffset(handle, batch[done - 1]) }
                        if done < batch.count { blocked = true }
                    }
                    for _ in batch { inFlight.signal() }
                }
            }
        }
        let pending = Pending(messages: messages, wake: wake, task: task)
        workers[key] = pending
        return pending
    }
}

extension KafkaConsumer {
    fileprivate func logFetchError(_ text: String) {
        logger.warning("consume error: \(text)")
    }
}

/// Marks message as done: the next auto-commit (or close) commits offset + 1.
private func storeOffset(_ handle: OpaquePointer, _ message: ConsumedMessage) {
    let list = rd_kafka_topic_partition_list_new(1)
    rd_kafka_topic_partition_list_add(list, message.topic, message.partition).pointee.offset = message.offset + 1
    // Fails harmlessly if the partition was revoked meanwhile; the new owner redelivers.
    _ = rd_kafka_offsets_store(handle, list)
    rd_kafka_topic_partition_list_destroy(list)
}
