import Foundation
import Logging
import OrchardMessaging
import OrchardSchemas
import OrchardStorage
import OrchardTestSupport
import XCTest

/// The outbox publisher against the real PostgreSQL and broker: two replicas draining one outbox publish every row
/// once, in order per key, and leave the table empty.
final class OutboxPublisherTests: XCTestCase {
    func testTwoReplicasPublishEveryRowOnceInOrderPerKey() async throws {
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
        // Both replicas drain at once until nothing is left.
        let published = try await withThrowingTaskGroup(of: Int.self) { group in
            for publisher in publishers {
                group.addTask {
                    var count = 0
                    while true {
                        let n = try await publisher.publishBatch()
                        if n == 0 { return count }
                        count += n
                    }
                }
            }
            return try await group.reduce(0, +)
        }
        XCTAssertEqual(published, total, "every row published by one replica or the other, none twice")
        let left = try await db.query("SELECT count(*) AS n FROM outbox").first?.int("n")
        XCTAssertEqual(left, 0, "published rows are deleted")

        let messages = try await collect(topic: BenchEvent.topic, settings: settings, timeout: .seconds(60)) { seen in
            seen.filter { String(decoding: $0.value, as: UTF8.self).contains(stream) }.count >= total
        }.filter { String(decoding: $0.value, as: UTF8.self).contains(stream) }
        let events = try messages.map { try MessageCodec.decode(BenchEvent.self, from: $0) }
        XCTAssertEqual(Set(events.map(\.sequence)).count, total, "no row lost")
        XCTAssertEqual(events.count, total, "no row published twice")
        XCTAssertTrue(messages.allSatisfy { $0.headers[Header.origin] == "outbox-test" && $0.headers[Header.correlationID] == "c-\(stream)" })
        // Per key (one partition each), the order they were appended in.
        for (key, group) in Dictionary(grouping: events, by: \.key) {
            let sequences = group.map(\.sequence)
            XCTAssertEqual(sequences, sequences.sorted(), "out of order for key \(key)")
        }
        await db.shutdown()
    }
}
