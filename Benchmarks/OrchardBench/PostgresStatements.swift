import Foundation

/// With ORCHARD_BENCH_PG_STATS=1 (Deploy/bench-enrollment.sh loads pg_stat_statements then), the statements
/// PostgreSQL spent a timed phase on: `reset()` at its start, `report(per:)` at its end. Both do nothing otherwise.
enum PostgresStatements {
    private static var enabled: Bool {
        ProcessInfo.processInfo.environment["ORCHARD_BENCH_PG_STATS"] == "1"
            && ProcessInfo.processInfo.environment["ORCHARD_DATABASE_URL"] != nil
    }

    static func reset() {
        guard enabled else { return }
        _ = psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset()")
    }

    /// The 20 statements with the most total time: calls and milliseconds per unit of work, mean µs, the statement.
    static func report(per count: Int, unit: String) -> String? {
        guard enabled else { return nil }
        // ORCHARD_BENCH_PG_ORDER=calls: the most frequent statements instead (round trips cost more than execution).
        let order = ProcessInfo.processInfo.environment["ORCHARD_BENCH_PG_ORDER"] == "calls" ? "calls" : "total_exec_time"
        let rows = psql("""
            SELECT round(calls::numeric / \(count), 2), round((total_exec_time / \(count))::numeric, 3),
                   round((1000 * total_exec_time / calls)::numeric, 0), left(regexp_replace(query, '\\s+', ' ', 'g'), 100)
            FROM pg_stat_statements ORDER BY \(order) DESC LIMIT 20
            """)
        let total = psql("SELECT round(sum(calls)::numeric / \(count), 1), round((sum(total_exec_time) / \(count))::numeric, 3) FROM pg_stat_statements")
            .split(separator: "|").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        return "PostgreSQL in the timed phase: \(total.first ?? "?") statements and \(total.last ?? "?") ms of execution per \(unit), "
            + "BEGIN and COMMIT included; the 20 largest by \(order == "calls" ? "calls" : "time") (calls per \(unit) | ms per \(unit) | mean µs | statement):\n" + rows
    }

    private static func psql(_ sql: String) -> String {
        (try? runTool(["psql", ProcessInfo.processInfo.environment["ORCHARD_DATABASE_URL"] ?? "", "-qAtF", " | ", "-c", sql])) ?? ""
    }
}
