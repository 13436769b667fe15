import Foundation
import Logging
import OrchardCore
import NIOConcurrencyHelpers
import OrchardStorage
import ServiceLifecycle

/// The transactional outbox and inbox: a service writes the events announcing a state change in the
/// same transaction as the change (`Outbox.append`), and records every message it has applied in the
/// same transaction as its effect (`Inbox.firstDelivery`), so neither a crash nor a redelivery makes
/// the database and Kafka diverge.
public enum MessagingTables {
    /// The migration that creates `outbox` and `processed_messages` in a service's schema.
    public static func migration(version: Int) -> Migration {
        Migration(version, "messaging outbox and inbox", """
            CREATE TABLE outbox (
                id bigserial PRIMARY KEY,
                topic text NOT NULL,
                message_key text,
                headers jsonb NOT NULL,
                payload bytea NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                claimed_until timestamptz);
            CREATE TABLE processed_messages (
                message_id text PRIMARY KEY,
                processed_at timestamptz NOT NULL DEFAULT now());
            CREATE INDEX processed_messages_at ON processed_messages (processed_at);
            """)
    }
}

public enum Outbox {
    /// Adds a typed message to the outbox inside the caller's transaction.
    public static func append<T: MessageSchema>(_ value: T, correlationID: String?, on connection: Connection) throws {
        try append([value], correlationID: correlationID, on: connection)
    }

    /// Rows per INSERT: 4 parameters each keeps a statement far below PostgreSQL's 65,535 parameters.
    static let rowsPerStatement = 500

    /// Adds several messages with one statement per 500 (one round trip each).
    public static func append(_ values: [any MessageSchema], correlationID: String?, on connection: Connection) throws {
        for start in stride(from: 0, to: values.count, by: rowsPerStatement) {
            var parameters: [SQLValue] = []
            let sql = try insertStatement(Array(values[start..<min(start + rowsPerStatement, values.count)]),
                                          correlationID: correlationID, parameters: &parameters)
            try connection.queryAtCommit(sql, parameters)
        }
    }

    /// The INSERT that adds `values`, numbering its parameters after those already in `parameters`
    /// (so a caller can combine it with another statement: `WITH o AS (<this>) INSERT ...`).
    public static func insertStatement(_ values: [any MessageSchema], correlationID: String?,
                                       parameters: inout [SQLValue]) throws -> String {
        var rows: [String] = []
        for value in values {
            let message = try MessageCodec.outgoing(value, correlationID: correlationID)
            let headers = JSONText.object(message.headers)
            let n = parameters.count
            rows.append("($\(n + 1), $\(n + 2), $\(n + 3)::jsonb, $\(n + 4))")
            parameters += [.text(message.topic), .optionalText(message.key), .text(headers), .bytes(message.value)]
        }
        return "INSERT INTO outbox (topic, message_key, headers, payload) VALUES \(rows.joined(separator: ", "))"
    }
}

public enum Inbox {
    /// Records that the message was applied; false means it was applied before (a redelivery),
    /// and the caller should skip its effect. Call inside the transaction that applies it.
    public static func firstDelivery(of message: ConsumedMessage, on connection: Connection) throws -> Bool {
        let id = message.messageID ?? "\(message.topic)/\(message.partition)/\(message.offset)"
        return !(try connection.query(
            "INSERT INTO processed_messages (message_id) VALUES ($1) ON CONFLICT DO NOTHING RETURNING message_id",
            [.text(id)]).isEmpty)
    }
}

/// Publishes outbox rows to Kafka in id order and deletes them once the broker acknowledged them.
/// A batch's rows stay locked (SKIP LOCKED) by its open transaction until then, so replicas share the work without
/// publishing a row twice in normal operation; after a crash the rows are published again (at least once). One
/// replica keeps a key's order; two replicas' batches may interleave on a partition.
public final class OutboxPublisher: Service, Sendable {
    private let database: Database
    private let producer: KafkaProducer
    private let logger: Logger
    private let wake = NIOLockedValueBox<CheckedContinuation<Void, Never>?>(nil)
    private let pollInterval: Duration

    private let origin: String

    /// - Parameter origin: the publishing service, sent as the `origin` header of every message.
    public init(database: Database, producer: KafkaProducer, logger: Logger, origin: String,
                pollInterval: Duration = .milliseconds(500)) {
        self.origin = origin
        self.database = database
        self.producer = producer
        self.logger = logger
        self.pollInterval = pollInterval
    }

    /// Publishes soon instead of at the next poll; call after committing a transaction that appended.
    public func notify() {
        wake.withLockedValue { c in c?.resume(); c = nil }
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    let published = try await self.publishBatch()
                    if published > 0 { continue }
                } catch {
                    self.logger.warning("outbox publish failed: \(error)")
                }
                await self.sleepUntilWoken()
            }
        }
        _ = try? await publishBatch()
    }

    /// Publishes up to 200 rows; returns how many.
    ///
    /// One transaction per batch: the rows are deleted (`DELETE … RETURNING`, SKIP LOCKED: another replica takes
    /// the next ones), handed to the producer in id order, and the deletion commits once the broker acknowledged them
    /// all. A row not acknowledged within `batchDeadline` (a broker out of reach) counts as failed: the batch's
    /// rows go back for any replica after at most that long.
    /// A crash or a failed send rolls the deletion back and the rows are published again (at least once). This
    /// writes each row once more after its insert; the claim it replaces wrote a new version of the row (payload
    /// and all) and then deleted it in a second transaction.
    @discardableResult
    public func publishBatch() async throws -> Int {
        try await database.withHeldConnection { held in
            let rows = try await held.run { c in
                try c.beginOpenTransaction("""
                    DELETE FROM outbox WHERE id = ANY(ARRAY(SELECT id FROM outbox ORDER BY id LIMIT 200 FOR UPDATE SKIP LOCKED))
                    RETURNING id, topic, message_key, headers::text AS headers, payload
                    """)
            }
            guard !rows.isEmpty else {
                try await held.run { try $0.commitOpenTransaction() }
                return 0
            }
            let messages = rows.compactMap { row -> (Int, OutgoingMessage)? in
                guard let id = row.int("id"), let topic = row.string("topic"), let payload = row.bytes("payload") else {
                    return nil
                }
                var headers = Self.headers(Array((row.string("headers") ?? "{}").utf8))
                headers[Header.origin] = origin
                return (id, OutgoingMessage(topic: topic, key: row.string("message_key"), value: payload, headers: headers))
            }.sorted { $0.0 < $1.0 }
            let (delivered, firstError) = await send(messages)
            guard let firstError else {
                // The deletion is bookkeeping that a crash may undo at no cost (the rows are then published
                // again, as at-least-once allows): no WAL flush wait for it.
                try await held.run { try $0.commitOpenTransaction([("SET LOCAL synchronous_commit = off", [])]) }
                return delivered.count
            }
            // Some sends failed: keep those rows (rolled back) and delete the delivered ones that no other
            // replica took meanwhile.
            try await held.run { c in
                try c.executeScript("ROLLBACK")
                if delivered.isEmpty { return }
                let ids = "{" + delivered.map(String.init).joined(separator: ",") + "}"
                try c.transaction { c in
                    try c.query("""
                        DELETE FROM outbox WHERE id = ANY(ARRAY(SELECT id FROM outbox WHERE id = ANY($1::bigint[])
                                                                FOR UPDATE SKIP LOCKED))
                        """, [.text(ids)])
                    try c.queryAtCommit("SET LOCAL synchronous_commit = off")
                }
            }
            throw firstError
        }
    }

    /// How long a batch waits for the broker's acknowledgements before its rows go back to the outbox.
    static let batchDeadline: Duration = .seconds(30)

    /// Hands every message to the producer in id order (so each partition receives them in that order), then
    /// waits for the acknowledgements until `batchDeadline`; returns the ids acknowledged and the first failure.
    private func send(_ messages: [(Int, OutgoingMessage)]) async -> ([Int], (any Error)?) {
        let pending = messages.map { ($0.0, producer.enqueue($0.1)) }
        let deadline = Task {
            try await Task.sleep(for: Self.batchDeadline)
            for (_, delivery) in pending { delivery.giveUp(KafkaError("no acknowledgement from the broker within \(Self.batchDeadline)")) }
        }
        defer { deadline.cancel() }
        var delivered: [Int] = []
        var firstError: (any Error)?
        for (id, delivery) in pending {
            do { _ = try await delivery.report(); delivered.append(id) } catch { firstError = firstError ?? error }
        }
        return (delivered, firstError)
    }

    /// The headers column (a JSON object of strings, written by `Outbox.append`); anything else gives no headers.
    static func headers(_ json: [UInt8]) -> [String: String] {
        (try? JSONSerialization.jsonObject(with: Data(json)) as? [String: String]) ?? [:]
    }

    private func sleepUntilWoken() async {
        let interval = pollInterval
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                    self.wake.withLockedValue { $0?.resume(); $0 = c }
                }
            }
            group.addTask { try? await Task.sleep(for: interval) }
            await group.next()
            self.notify()
            group.cancelAll()
        }
    }
}
