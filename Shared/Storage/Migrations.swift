/// One schema change, applied once, in order of `version`.
public struct Migration: Sendable {
    public let version: Int
    public let name: String
    public let sql: String

    public init(_ version: Int, _ name: String, _ sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }
}

extension Database {
    /// Creates the service's schema and applies missing migrations, each in its own transaction,
    /// while holding a PostgreSQL advisory lock so that replicas starting together do not race.
    /// Returns the versions it applied.
    @discardableResult
    public func migrate(_ migrations: [Migration]) async throws -> [Int] {
        let schema = self.schema
        let ordered = migrations.sorted { $0.version < $1.version }
        return try await withConnection { c in
            try c.query("SELECT pg_advisory_lock(hashtext($1))", [.text("orchard.migrate.\(schema)")])
            defer { _ = try? c.query("SELECT pg_advisory_unlock(hashtext($1))", [.text("orchard.migrate.\(schema)")]) }
            try c.executeScript("""
                CREATE SCHEMA IF NOT EXISTS \(schema);
                CREATE TABLE IF NOT EXISTS \(schema).schema_migrations (
                    version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());
                """)
            let done = Set(try c.query("SELECT version FROM \(schema).schema_migrations").compactMap { $0.int("version") })
            var applied: [Int] = []
            for migration in ordered where !done.contains(migration.version) {
                try c.transaction { tx in
                    try tx.executeScript(migration.sql)
                    try tx.query("INSERT INTO \(schema).schema_migrations (version, name) VALUES ($1, $2)",
                                 [.int(migration.version), .text(migration.name)])
                }
                applied.append(migration.version)
            }
            return applied
        }
    }
}
