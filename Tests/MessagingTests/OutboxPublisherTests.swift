import Foundation
import Logging
import OrchardMessaging
import OrchardSchemas
import OrchardStorage
import OrchardTestSupport
import XCTest

/// The outbox publisher against the real PostgreSQL and broker: one replica publishes a key's rows in the order they
/// were written; two replicas draining one outbox publish every row once and leave the table empty.
final class OutboxPublisherTests: XCTestCase {
    func testOneReplicaKeepsEachKeysOrderAndTwoPublishEveryRowOnce() async throws {
        let stream = "outbox\(UUID().uuidString.prefix(8).lowercased())"
        let schema = "outbox_test_\(UUID().uuidString.prefix(8).lowercased())"
        let settings = try TestStack.settings("test-outbox-\(stream)")
        let db = try Database(conninfo: try TestStack.require("ORCHARD_DATABASE_URL"), schema: schema, maxConnections: 4)
        try await db.migrate([MessagingTables.migration(version: 1)])
        let total = 1000
        for start in stride(from: 0, to: total, by: 100) {
            try await db.transaction { c in
                try Outbox.append((start..<start + 100).map { BenchEvent(sequence: $0, stream: stream) }, correlationID: "c-\(stream)", on: c)
            }
        }
        var logger = Logger(label: "outbox-test")
        logger.logLevel = .critical
        let publishers = try (0..<2).map { _ in
            OutboxPublisher(database: db, producer: try KafkaProducer(settings: settings), logger: logger, origin: "outbox-test")
        }
        func drain(_ publisher: OutboxPublisher) async throws -> Int {
            var count = 0
            while true {
                let n = try await publisher.publishBatch()
                if n == 0 { return count }
                count += n
            }
        }
        // One replica: 1,000 rows in batches of 200, each batch's rows on many partitions.
        let first = try await drain(publishers[0])
        XCTAssertEqual(first, total)
        // Then 1,000 more, drained by both replicas at once.
        for start in stride(from: total, to: 2 * total, by: 100) {
            try await db.transaction { c in
                try Outbox.append((start..<start + 100).map { BenchEvent(sequence: $0, stream: stream) }, correlationID: "c-\(stream)", on: c)
            }
        }
        let second = try await withThrowingTaskGroup(of: Int.self) { group in
            for publisher in publishers { group.addTask { try await drain(publisher) } }
            return try await group.reduce(0, +)
        }
        XCTAssertEqual(second, total, "every row published by one replica or the other, none twice")
        let left = try await db.query("SELECT count(*) AS n FROM outbox").first?.int("n")
        XCTAssertEqual(left, 0, "published rows are deleted")

        let messages = try await collect(topic: BenchEvent.topic, settings: settings, timeout: .seconds(60)) { seen in
            seen.filter { String(decoding: $0.value, as: UTF8.self).contains(stream) }.count >= 2 * total
        }.filter { String(decoding: $0.value, as: UTF8.self).contains(stream) }
        let events = try messages.map { try MessageCodec.decode(BenchEvent.self, from: $0) }
        XCTAssertEqual(Set(events.map(\.sequence)).count, 2 * total, "no row lost")
        XCTAssertEqual(events.count, 2 * total, "no row published twice")
        XCTAssertTrue(messages.allSatisfy { $0.headers[Header.origin] == "outbox-test" && $0.headers[Header.correlationID] == "c-\(stream)" })
        // Per key (one partition each), the order one replica was given them in.
        for (key, group) in Dictionary(grouping: events.filter { $0.sequence < total }, by: \.key) {
            let sequences = group.map(\.sequence)
            XCTAssertEqual(sequences, sequences.sorted(), "out of order for key \(key)")
        }
        await db.shutdown()
    }
}
