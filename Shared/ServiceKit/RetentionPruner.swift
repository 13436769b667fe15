import Logging
import OrchardStorage
import ServiceLifecycle

/// Deletes rows that have outlived their use (expired tokens and the like), in batches, once an hour,
/// so tables that grow with every enrollment stay bounded.
public struct RetentionPruner: Service {
    public struct Rule: Sendable {
        public let name: String
        /// A DELETE of at most `batchSize` rows that returns one row per deleted row, for example
        /// `DELETE FROM t WHERE id IN (SELECT id FROM t WHERE expires_at < now() - interval '1 day' LIMIT 5000) RETURNING 1`.
        public let deleteBatch: String
        public let batchSize: Int

        public init(name: String, deleteBatch: String, batchSize: Int = 5000) {
            self.name = name
            self.deleteBatch = deleteBatch
            self.batchSize = batchSize
        }
    }

    let database: Database
    let rules: [Rule]
    let interval: Duration
    let logger: Logger

    public init(database: Database, rules: [Rule], interval: Duration = .seconds(3600), logger: Logger) {
        self.database = database
        self.rules = rules
        self.interval = interval
        self.logger = logger
    }

    /// One pass over every rule; returns the rows deleted per rule.
    @discardableResult
    public func pruneOnce() async throws -> [String: Int] {
        var deleted: [String: Int] = [:]
        for rule in rules {
            var total = 0
            while true {
                let count = try await database.query(rule.deleteBatch).count
                total += count
                if count < rule.batchSize { break }
            }
            deleted[rule.name] = total
            if total > 0 { logger.info("pruned", metadata: ["rule": "\(rule.name)", "rows": "\(total)"]) }
        }
        return deleted
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do { try await pruneOnce() } catch { logger.warning("pruning failed: \(error)") }
                try? await Task.sleep(for: interval)
            }
        }
    }
}
