import Foundation

/// Failed attempts counted per key (an account, a client address) in PostgreSQL, so that every replica sees them:
/// `limit` failures within `window` lock the key for `lockout`. A count older than the window, or of a key whose lock
/// ended, starts again: a key is not locked again by its first failure after a lock. A success clears the key.
/// The service's schema holds the table: `key text PRIMARY KEY, failures integer, window_started_at timestamptz,
/// locked_until timestamptz` (`FailureThrottle.tableDefinition`).
public struct FailureThrottle: Sendable {
    public let database: Database
    public let table: String
    public var window: TimeInterval = 900
    public var lockout: TimeInterval = 900

    public init(database: Database, table: String = "sign_in_failures", window: TimeInterval = 900, lockout: TimeInterval = 900) {
        precondition(table.allSatisfy { $0.isLetter || $0 == "_" }, "a table name")
        self.database = database
        self.table = table
        self.window = window
        self.lockout = lockout
    }

    /// The migration statement for the table.
    public static func tableDefinition(_ table: String = "sign_in_failures") -> String {
        "CREATE TABLE \(table) (key text PRIMARY KEY, failures integer NOT NULL, window_started_at timestamptz NOT NULL, locked_until timestamptz);"
    }

    /// Until when the first locked key of `keys` is locked; nil when none is.
    public func lockedUntil(_ keys: [String]) async throws -> Date? {
        try await database.query("""
            SELECT max(locked_until) AS until FROM \(table) WHERE key = ANY($1::text[]) AND locked_until > now()
            """, [.text(postgresArray(keys))]).first?.date("until")
    }

    /// Counts a failure for `key`; locks it when the count reaches `limit` within the window.
    public func fail(_ key: String, limit: Int) async throws {
        // A new count starts when the window has passed or the key's lock has ended.
        let fresh = "(\(table).window_started_at < now() - make_interval(secs => $2) OR \(table).locked_until <= now())"
        try await database.query("""
            INSERT INTO \(table) (key, failures, window_started_at, locked_until)
            VALUES ($1, 1, now(), CASE WHEN $3 <= 1 THEN now() + make_interval(secs => $4) END)
            ON CONFLICT (key) DO UPDATE SET
                failures = CASE WHEN \(fresh) THEN 1 ELSE \(table).failures + 1 END,
                window_started_at = CASE WHEN \(fresh) THEN now() ELSE \(table).window_started_at END,
                locked_until = CASE WHEN (CASE WHEN \(fresh) THEN 1 ELSE \(table).failures + 1 END) >= $3
                                    THEN now() + make_interval(secs => $4)
                                    WHEN \(fresh) THEN NULL ELSE \(table).locked_until END
            """, [.text(key), .int(Int(window)), .int(limit), .int(Int(lockout))])
    }

    public func clear(_ key: String) async throws {
        try await database.query("DELETE FROM \(table) WHERE key = $1", [.text(key)])
    }

    /// Whether `key` is locked now.
    public func isLocked(_ key: String) async throws -> Bool {
        try await lockedUntil([key]) != nil
    }
}
