import Foundation
import OrchardStorage

/// token-service's tables: its MAC key, the security tokens it issued and the pairing tokens they were exchanged for.
/// Every statement of the service is here; the token rules (who may exchange what) are in `PairingTokens`.
enum TokenStore {
    /// A sealed key by name, the given one stored first when there is none yet (once across replicas).
    static func sealedKey(_ c: Connection, name: String, orInsert fresh: [UInt8]) throws -> [UInt8]? {
        try c.query("INSERT INTO keys (name, sealed_key) VALUES ($1, $2) ON CONFLICT DO NOTHING", [.text(name), .bytes(fresh)])
        return try c.query("SELECT sealed_key FROM keys WHERE name = $1", [.text(name)]).first?.bytes("sealed_key")
    }

    static func insertSecurityToken(_ c: Connection, hash: [UInt8], watchUDID: String, watchSerial: String?, expiresAt: Date) throws {
        try c.query("""
            INSERT INTO security_tokens (token_hash, watch_udid, watch_serial, expires_at) VALUES ($1, $2, $3, $4)
            """, [.bytes(hash), .text(watchUDID), .optionalText(watchSerial), .timestamp(expiresAt)])
    }

    struct SecurityToken {
        let watchUDID: String?
        let expired: Bool
        let consumedByPhone: String?
    }

    /// The security token, locked until the transaction ends (two iPhones exchanging it at once are serialised).
    static func lockSecurityToken(_ c: Connection, hash: [UInt8]) throws -> SecurityToken? {
        guard let row = try c.query("""
            SELECT watch_udid, expires_at < now() AS expired, consumed_by_phone FROM security_tokens
            WHERE token_hash = $1 FOR UPDATE
            """, [.bytes(hash)]).first else { return nil }
        return SecurityToken(watchUDID: row.string("watch_udid"), expired: row.bool("expired") == true,
                             consumedByPhone: row.string("consumed_by_phone"))
    }

    /// Records the exchange: the security token consumed by `phone` (its first exchange time kept), the pairing token's id stored.
    static func recordExchange(_ c: Connection, securityHash: [UInt8], phoneUDID: String, watchUDID: String, jti: String,
                               expiresAt: Date) throws {
        try c.query("""
            UPDATE security_tokens SET consumed_at = COALESCE(consumed_at, now()), consumed_by_phone = $2 WHERE token_hash = $1
            """, [.bytes(securityHash), .text(phoneUDID)])
        try c.query("""
            INSERT INTO pairing_tokens (jti, phone_udid, watch_udid, security_token_hash, expires_at)
            VALUES ($1, $2, $3, $4, $5)
            """, [.text(jti), .text(phoneUDID), .text(watchUDID), .bytes(securityHash), .timestamp(expiresAt)])
    }

    /// Marks the pairing token redeemed (its first time kept); false when it is unknown, expired or for another watch.
    static func redeemPairingToken(_ c: Connection, jti: String, watchUDID: String) throws -> Bool {
        !(try c.query("""
            UPDATE pairing_tokens SET redeemed_at = COALESCE(redeemed_at, now())
            WHERE jti = $1 AND watch_udid = $2 AND expires_at > now() RETURNING jti
            """, [.text(jti), .text(watchUDID)])).isEmpty
    }
}
