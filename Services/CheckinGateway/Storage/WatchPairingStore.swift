import Foundation
import OrchardServiceKit
import OrchardStorage

/// Pairing tokens the gateway spent: each pays for one delivered watch profile.
enum WatchPairingStore {
    /// Whether the token was spent before (a replay).
    static func isSpent(_ c: Connection, tokenID: String) throws -> Bool {
        try !c.query("SELECT 1 FROM spent_pairing_tokens WHERE token_id = $1", [.text(tokenID)]).isEmpty
    }

    /// Spends the token in the caller's transaction; false when it was spent already.
    static func spend(_ c: Connection, tokenID: String, watch: String, expiresAt: Date) throws -> Bool {
        try !c.query("""
            INSERT INTO spent_pairing_tokens (token_id, watch_udid, expires_at) VALUES ($1, $2, $3)
            ON CONFLICT DO NOTHING RETURNING token_id
            """, [.text(tokenID), .text(watch), .timestamp(expiresAt)]).isEmpty
    }

    /// Spent ids are kept a day past their token's expiry (a replay after that fails as expired anyway).
    static let pruning: [RetentionPruner.Rule] = [
        .init(name: "spent pairing tokens", deleteBatch: """
            DELETE FROM spent_pairing_tokens WHERE token_id IN (
                SELECT token_id FROM spent_pairing_tokens WHERE expires_at < now() - interval '1 day' LIMIT 5000) RETURNING 1
            """),
    ]
}
