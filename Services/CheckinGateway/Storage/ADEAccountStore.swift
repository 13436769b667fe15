import Foundation
import OrchardStorage

/// The local accounts of the ADE sign-in page (`ade_accounts`): PBKDF2-SHA256 hashes; failures and locks are counted
/// in `sign_in_failures` (`FailureThrottle`), by the key `ade-account:<username>`.
enum ADEAccountStore {
    struct Account: Sendable {
        let salt: [UInt8], hash: [UInt8], iterations: Int, disabled: Bool
    }

    static func throttleKey(_ username: String) -> String { "ade-account:\(username)" }

    static func find(_ database: Database, username: String) async throws -> Account? {
        guard let row = try await database.query("SELECT salt, password_hash, iterations, disabled FROM ade_accounts WHERE username = $1",
                                                 [.text(username)]).first,
              let salt = row.bytes("salt"), let hash = row.bytes("password_hash") else { return nil }
        return Account(salt: salt, hash: hash, iterations: row.int("iterations") ?? 0, disabled: row.bool("disabled") ?? false)
    }

    /// Creates or replaces an account; a new password ends its lock.
    static func save(_ c: Connection, username: String, salt: [UInt8], hash: [UInt8], iterations: Int, disabled: Bool) throws {
        try c.query("""
            INSERT INTO ade_accounts (username, salt, password_hash, iterations, disabled) VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (username) DO UPDATE SET salt = EXCLUDED.salt, password_hash = EXCLUDED.password_hash,
                iterations = EXCLUDED.iterations, disabled = EXCLUDED.disabled, updated_at = now()
            """, [.text(username), .bytes(salt), .bytes(hash), .int(iterations), .bool(disabled)])
        try c.query("DELETE FROM sign_in_failures WHERE key = $1", [.text(throttleKey(username))])
    }

    /// Every account, with whether its failures locked it now.
    static func list(_ database: Database) async throws -> [(username: String, disabled: Bool, locked: Bool)] {
        try await database.query("""
            SELECT a.username, a.disabled, EXISTS (SELECT 1 FROM sign_in_failures f WHERE f.key = 'ade-account:' || a.username
                                                   AND f.locked_until > now()) AS locked
            FROM ade_accounts a ORDER BY a.username
            """).map { ($0.string("username") ?? "", $0.bool("disabled") ?? false, $0.bool("locked") ?? false) }
    }

    static func delete(_ c: Connection, username: String) throws -> Bool {
        !(try c.query("DELETE FROM ade_accounts WHERE username = $1 RETURNING 1", [.text(username)])).isEmpty
    }
}
