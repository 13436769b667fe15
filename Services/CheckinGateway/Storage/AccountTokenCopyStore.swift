import Foundation
import OrchardSchemas
import OrchardServiceKit
import OrchardStorage

/// The gateway's copy of the access tokens user-enrollment-auth issued and revoked (`orchard.account-token-events.v1`),
/// so that a device's bearer is checked with one local query. An event is an upsert of the token's latest state; a
/// revocation stays (a redelivered or late "issued" does not undo it). Expired tokens are pruned daily.
enum AccountTokenCopyStore {
    static func copy(_ event: AccountTokenEvent, on c: Connection) throws {
        try c.query(copySQL, copyParameters(event))
    }

    static func copy(_ event: AccountTokenEvent, in database: Database) async throws {
        try await database.query(copySQL, copyParameters(event))
    }

    private static let copySQL = """
        INSERT INTO account_token_copy (token_hash, token_id, managed_apple_id, domain, expires_at, revoked_at, revoked_reason)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (token_hash) DO UPDATE SET expires_at = EXCLUDED.expires_at,
            revoked_at = COALESCE(account_token_copy.revoked_at, EXCLUDED.revoked_at),
            revoked_reason = COALESCE(account_token_copy.revoked_reason, EXCLUDED.revoked_reason)
        """

    private static func copyParameters(_ event: AccountTokenEvent) -> [SQLValue] {
        [.text(event.tokenHash), .text(event.tokenID), .text(event.managedAppleID), .text(event.domain),
         .timestamp(event.expiresAt), event.revokedAt.map(SQLValue.timestamp) ?? .null, .optionalText(event.revokedReason)]
    }

    /// The token's state in the copy; nil when the copy does not have it (yet).
    static func find(_ database: Database, tokenHash: String) async throws -> Row? {
        try await database.query("""
            SELECT token_id, managed_apple_id, domain, expires_at, revoked_at IS NOT NULL AS revoked, revoked_reason,
                   expires_at <= now() AS expired
            FROM account_token_copy WHERE token_hash = $1
            """, [.text(tokenHash)]).first
    }

    /// Marks every copied token of `user` revoked (an admin's revocation through this gateway takes effect at once).
    static func revoke(_ database: Database, user: String, reason: String) async throws {
        try await database.query("""
            UPDATE account_token_copy SET revoked_at = now(), revoked_reason = $2 WHERE managed_apple_id = $1 AND revoked_at IS NULL
            """, [.text(user.lowercased()), .text(reason)])
    }

    static let pruning: [RetentionPruner.Rule] = [
        .init(name: "expired account tokens", deleteBatch: """
            DELETE FROM account_token_copy WHERE token_hash IN (
                SELECT token_hash FROM account_token_copy WHERE expires_at < now() - interval '1 day' LIMIT 5000)
            RETURNING 1
            """),
    ]
}
