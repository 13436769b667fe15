import Foundation
import NIOConcurrencyHelpers
import OrchardSchemas
import OrchardMessaging
import OrchardStorage
import OrchardTestSupport
import XCTest

/// A consumer process is killed and stopped mid-stream; every event is applied exactly once in the end.
final class ConsumerDeliveryTests: XCTestCase {
    func testNoMessageLostNoneAppliedTwiceAcrossCrashAndStop() async throws {
        let stream = "s\(UUID().uuidString.prefix(8).lowercased())"
        let total = 3000
        let settings = try TestStack.settings("test-emit-\(stream)")
        let producer = try KafkaProducer(settings: settings)
        let db = try Database(conninfo: try TestStack.require("ORCHARD_DATABASE_URL"), schema: "bench", maxConnections: 2)
        let environment = ["ORCHARD_KAFKA_SESSION_TIMEOUT_MS": "3000"]
        func applied() async throws -> (rows: Int, distinct: Int) {
            let row = try await db.query("""
                SELECT count(*) AS n, count(DISTINCT sequence) AS d FROM applied_events WHERE stream = $1
                """, [.text(stream)]).first
            return (row?.int("n") ?? 0, row?.int("d") ?? 0)
        }

        var consumer = try ChildProcess("orchard-bench", ["apply", "--stream", stream, "--delay-ms", "2"], environment: environment)
        // One malformed message in the middle of the stream.
        for i in 0..<total {
            if i == total / 2 {
                try await producer.send(OutgoingMessage(topic: BenchEvent.topic, key: stream, value: Array("not json \(stream)".utf8),
                                                        headers: [Header.type: BenchEvent.type, Header.version: "1"]))
            }
            try await producer.publish(BenchEvent(sequence: i, stream: stream))
        }

        // Crash: no chance to commit what it had handled.
        var reached = try await eventually(timeout: 90) { (try? await applied().rows) ?? 0 >= 400 }
        XCTAssertTrue(reached, "first consumer made no progress: \(consumer.log)")
        consumer.kill()
        XCTAssertTrue(consumer.waitForExit())
        let atCrash = try await applied()
        XCTAssertLessThan(atCrash.distinct, total, "the crash must happen mid-stream")

        // Graceful stop mid-stream: finishes in-flight work, commits, leaves the group.
        consumer = try ChildProcess("orchard-bench", ["apply", "--stream", stream, "--delay-ms", "2"], environment: environment)
        reached = try await eventually(timeout: 90) { (try? await applied().distinct) ?? 0 >= atCrash.distinct + 400 }
        XCTAssertTrue(reached, "second consumer made no progress: \(consumer.log)")
        consumer.terminate()
        XCTAssertTrue(consumer.waitForExit(), "SIGTERM must stop the consumer")
        XCTAssertTrue(consumer.log.contains("apply stopped"), consumer.log)
        let atStop = try await applied()
        XCTAssertLessThan(atStop.distinct, total, "the stop must happen mid-stream")

        consumer = try ChildProcess("orchard-bench", ["apply", "--stream", stream], environment: environment)
        defer { consumer.terminate(); _ = consumer.waitForExit() }
        reached = try await eventually(timeout: 120) { (try? await applied().distinct) ?? 0 >= total }
        let progress = try await applied()
        XCTAssertTrue(reached, "not every event was applied: \(progress)")
        // Stopped and gone, it can apply nothing more: what is stored now is final.
        consumer.terminate()
        XCTAssertTrue(consumer.waitForExit(), "SIGTERM must stop the consumer")
        let final = try await applied()
        XCTAssertEqual(final.distinct, total, "no message lost")
        XCTAssertEqual(final.rows, total, "none applied twice")

        // The malformed message went to the dead-letter topic with its reason, and blocked nothing.
        let letters = try await collect(topic: KafkaConsumer.deadLetterTopic, settings: settings) { seen in
            seen.contains { String(decoding: $0.value, as: UTF8.self) == "not json \(stream)" }
        }
        let letter = try XCTUnwrap(letters.first { String(decoding: $0.value, as: UTF8.self) == "not json \(stream)" })
        XCTAssertEqual(letter.headers["original-topic"], BenchEvent.topic)
        XCTAssertTrue(letter.headers["dead-letter-reason"]?.contains("malformed") == true, "\(letter.headers)")
        await db.shutdown()
    }
}

/// A handler that finds the database away (restarting) is retried until it is back, however many attempts
/// that takes; a PostgreSQL restart used to dead-letter what the consumers were storing (fault suite).
final class ConsumerDatabaseAwayTests: XCTestCase {
    func testAMessageWhoseDatabaseIsAwayIsRetriedNotDeadLettered() async throws {
        let stream = "away\(UUID().uuidString.prefix(8).lowercased())"
        let settings = try TestStack.settings("test-db-away-\(stream)")
        let producer = try KafkaProducer(settings: settings)
        let calls = NIOLockedValueBox(0), handled = NIOLockedValueBox(false)
        let consumer = KafkaConsumer(settings: settings, groupID: "test-db-away-\(stream)", topics: [BenchEvent.topic],
                                     deadLetters: producer, logger: TestStack.logger) { message in
            guard let event = try? MessageCodec.decode(BenchEvent.self, from: message), event.stream == stream else { return }
            let attempt = calls.withLockedValue { $0 += 1; return $0 }
            // More failures than the consumer's maxAttempts (5), which dead-letters other errors.
            if attempt <= 6 { throw PostgresError(message: "the database system is shutting down", sqlState: "57P01") }
            handled.withLockedValue { $0 = true }
        }
        let running = Task { try await consumer.run() }
        defer { consumer.stop(); running.cancel() }
        let assigned = try await eventually(timeout: 60) { consumer.hasAssignment }
        XCTAssertTrue(assigned)
        try await producer.publish(BenchEvent(sequence: 0, stream: stream))
        let done = try await eventually(timeout: 90) { handled.withLockedValue { $0 } }
        XCTAssertTrue(done, "not handled after \(calls.withLockedValue { $0 }) attempts")
        XCTAssertEqual(calls.withLockedValue { $0 }, 7)
    }
}

/// Messages that gather while a handler runs are handed to the batch handler together, in their order; a batch
/// that fails (here: a malformed message in it) is handled one message at a time, so only the bad one is
/// dead-lettered and nothing is skipped or applied twice.
final class ConsumerBatchTests: XCTestCase {
    func testMessagesThatGatherAreHandledTogetherInOrderAndABadOneAlone() async throws {
        let stream = "batch\(UUID().uuidString.prefix(8).lowercased())"
        let settings = try TestStack.settings("test-batch-\(stream)")
        let producer = try KafkaProducer(settings: settings)
        let applied = NIOLockedValueBox<[Int]>([]), sizes = NIOLockedValueBox<[Int]>([]), allSent = NIOLockedValueBox(false)
        let consumer = KafkaConsumer(settings: settings, groupID: "test-batch-\(stream)", topics: [BenchEvent.topic],
                                     deadLetters: producer, logger: TestStack.logger, handler: { message in
            let event = try MessageCodec.decode(BenchEvent.self, from: message)
            guard event.stream == stream else { return }
            // The first one waits until everything after it was sent: what follows gathers meanwhile.
            if event.sequence == 0 {
                let released = try await eventually(timeout: 60) { allSent.withLockedValue { $0 } }
                XCTAssertTrue(released)
            }
            applied.withLockedValue { $0.append(event.sequence) }
        }, batchHandler: { messages in
            let events = try messages.map { try MessageCodec.decode(BenchEvent.self, from: $0) }.filter { $0.stream == stream }
            sizes.withLockedValue { $0.append(events.count) }
            applied.withLockedValue { $0 += events.map(\.sequence) }
        })
        let running = Task { try await consumer.run() }
        defer { consumer.stop(); running.cancel() }
        let assigned = try await eventually(timeout: 60) { consumer.hasAssignment }
        XCTAssertTrue(assigned)
        let total = 300
        for i in 0..<total {
            if i == 150 {
                try await producer.send(OutgoingMessage(topic: BenchEvent.topic, key: stream, value: Array("not json \(stream)".utf8),
                                                        headers: [Header.type: BenchEvent.type, Header.version: "1"]))
            }
            try await producer.publish(BenchEvent(sequence: i, stream: stream))
        }
        allSent.withLockedValue { $0 = true }
        let done = try await eventually(timeout: 90) { applied.withLockedValue { $0.count } >= total }
        XCTAssertTrue(done, "applied \(applied.withLockedValue { $0.count }) of \(total)")
        let order = applied.withLockedValue { $0 }
        XCTAssertEqual(order.count, total, "none applied twice")
        XCTAssertEqual(order.sorted(), Array(0..<total), "none skipped")
        // BenchEvent's key spreads a stream over 64 keys (so over partitions); within a key, the order is kept.
        for key in 0..<64 {
            let ofKey = order.filter { $0 % 64 == key }
            XCTAssertEqual(ofKey, ofKey.sorted(), "key \(key) in order")
        }
        XCTAssertGreaterThan(sizes.withLockedValue { $0.max() ?? 0 }, 1, "messages that gathered came as one batch")
        let letters = try await collect(topic: KafkaConsumer.deadLetterTopic, settings: settings) { seen in
            seen.contains { String(decoding: $0.value, as: UTF8.self) == "not json \(stream)" }
        }
        XCTAssertEqual(letters.filter { String(decoding: $0.value, as: UTF8.self) == "not json \(stream)" }.count, 1, "the bad one alone")
    }
}
