import Foundation
import OrchardStorage

/// Failed sign-ins counted per Managed Apple Account and per client address, in PostgreSQL so that every replica
/// sees them: `limit` failures within `window` lock the key for `lockout`. A success clears the account's count.
struct SignInThrottle: Sendable {
    let database: Database
    var accountLimit = 5
    var addressLimit = 20
    var window: TimeInterval = 900
    var lockout: TimeInterval = 900

    /// Until when the first locked key of `keys` is locked; nil when none is.
    func lockedUntil(_ keys: [String]) async throws -> Date? {
        try await database.query("""
            SELECT max(locked_until) AS until FROM sign_in_failures WHERE key = ANY($1::text[]) AND locked_until > now()
            """, [.text(postgresArray(keys))]).first?.date("until")
    }

    /// Counts a failure for `key`; locks it when the count reaches `limit` within the window.
    func fail(_ key: String, limit: Int) async throws {
        try await database.query("""
            INSERT INTO sign_in_failures (key, failures, window_started_at) VALUES ($1, 1, now())
            ON CONFLICT (key) DO UPDATE SET
                failures = CASE WHEN sign_in_failures.window_started_at < now() - make_interval(secs => $2) THEN 1
                                ELSE sign_in_failures.failures + 1 END,
                window_started_at = CASE WHEN sign_in_failures.window_started_at < now() - make_interval(secs => $2) THEN now()
                                         ELSE sign_in_failures.window_started_at END,
                locked_until = CASE WHEN sign_in_failures.window_started_at >= now() - make_interval(secs => $2)
                                         AND sign_in_failures.failures + 1 >= $3 THEN now() + make_interval(secs => $4)
                                    ELSE sign_in_failures.locked_until END
            """, [.text(key), .int(Int(window)), .int(limit), .int(Int(lockout))])
    }

    func clear(_ key: String) async throws {
        try await database.query("DELETE FROM sign_in_failures WHERE key = $1", [.text(key)])
    }
}
