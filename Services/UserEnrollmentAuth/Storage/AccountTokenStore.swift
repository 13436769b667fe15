import Foundation
import OrchardStorage

/// A token row an UPDATE … RETURNING revoked: what the gateway's copy needs to hear.
struct RevokedAccountToken: Sendable {
    let id: String, tokenHash: String, managedAppleID: String, domain: String, expiresAt: Date

    init(_ row: Row) {
        id = row.string("id") ?? ""
        tokenHash = row.string("token_hash") ?? ""
        managedAppleID = row.string("managed_apple_id") ?? ""
        domain = row.string("domain") ?? ""
        expiresAt = row.date("expires_at") ?? Date()
    }
}

/// Access tokens, OAuth 2 codes and refresh tokens, and what is known of each account (`account_users`): every
/// statement of user-enrollment-auth's token side. Tokens are stored as SHA-256 hex hashes only.
enum AccountTokenStore {
    // MARK: access tokens

    /// Records a new access token; its expiry and its domain's mode (for the gateway's copy).
    static func insertAccessToken(_ c: Connection, id: String, hash: String, user: String, domain: String, dn: String?,
                                  lifetimeSeconds: Int, familyID: String?) throws -> (expiresAt: Date, mode: String) {
        let row = try c.query("""
            INSERT INTO account_tokens (id, token_hash, managed_apple_id, domain, directory_dn, expires_at, family_id)
            VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6), $7)
            RETURNING expires_at, (SELECT mode FROM managed_domains WHERE domain = $4) AS mode
            """, [.text(id), .text(hash), .text(user), .text(domain), .optionalText(dn), .int(lifetimeSeconds), .optionalText(familyID)]).first
        return (row?.date("expires_at") ?? Date(), row?.string("mode") ?? "")
    }

    /// The token with its domain's `DomainStore.columns` (prefixed `d.`), in one round trip; nil when unknown.
    static func tokenWithDomain(_ database: Database, hash: String) async throws -> Row? {
        try await database.query("""
            SELECT t.id, t.managed_apple_id, t.domain AS token_domain, t.expires_at, t.revoked_at, t.revoked_reason,
                   t.expires_at <= now() AS expired,
                   \(DomainStore.columns.split(separator: ",").map { "d." + $0.trimmingCharacters(in: .whitespaces) }.joined(separator: ", "))
            FROM account_tokens t LEFT JOIN managed_domains d ON d.domain = t.domain WHERE t.token_hash = $1
            """, [.text(hash)]).first
    }

    /// Revokes every live access token, refresh token and unexchanged code of `user`, and marks tokens of other issuers
    /// issued before now as revoked; the access tokens revoked and the count of codes.
    static func revokeAll(_ c: Connection, user: String, reason: String) throws -> (tokens: [RevokedAccountToken], codes: Int) {
        let rows = try c.query("""
            UPDATE account_tokens SET revoked_at = now(), revoked_reason = $2
            WHERE managed_apple_id = $1 AND revoked_at IS NULL AND expires_at > now()
            RETURNING id, token_hash, managed_apple_id, domain, expires_at
            """, [.text(user), .text(reason)])
        try c.query("UPDATE account_refresh_tokens SET revoked_at = now() WHERE managed_apple_id = $1 AND revoked_at IS NULL",
                    [.text(user)])
        let codes = try c.query("""
            UPDATE account_codes SET revoked_at = now() WHERE managed_apple_id = $1 AND used_at IS NULL AND revoked_at IS NULL
                AND expires_at > now() RETURNING 1
            """, [.text(user)]).count
        try c.query("""
            INSERT INTO account_users (managed_apple_id, revoked_before) VALUES ($1, now())
            ON CONFLICT (managed_apple_id) DO UPDATE SET revoked_before = now()
            """, [.text(user)])
        return (rows.map(RevokedAccountToken.init), codes)
    }

    /// Revokes every access and refresh token of one sign-in (an OAuth 2 family).
    static func revokeFamily(_ c: Connection, _ family: String, reason: String) throws -> [RevokedAccountToken] {
        try c.query("UPDATE account_refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL", [.text(family)])
        return try c.query("""
            UPDATE account_tokens SET revoked_at = now(), revoked_reason = $2
            WHERE family_id = $1 AND revoked_at IS NULL RETURNING id, token_hash, managed_apple_id, domain, expires_at
            """, [.text(family), .text(reason)]).map(RevokedAccountToken.init)
    }

    // MARK: accounts

    /// The directory just said `user` may sign in.
    static func directoryConfirmed(_ c: Connection, user: String) throws {
        try c.query("""
            INSERT INTO account_users (managed_apple_id, directory_checked_at) VALUES ($1, now())
            ON CONFLICT (managed_apple_id) DO UPDATE SET directory_checked_at = now()
            """, [.text(user)])
    }

    /// When the account's tokens were last revoked, and whether the directory's last word is older than `staleAfter` s.
    static func account(_ database: Database, user: String, staleAfter: Int) async throws -> (revokedBefore: Date?, stale: Bool)? {
        guard let row = try await database.query("""
            SELECT revoked_before, directory_checked_at < now() - make_interval(secs => $2) AS stale
            FROM account_users WHERE managed_apple_id = $1
            """, [.text(user), .int(staleAfter)]).first else { return nil }
        return (row.date("revoked_before"), row.bool("stale") == true)
    }

    // MARK: OAuth 2 codes and refresh tokens

    static func insertCode(_ c: Connection, hash: String, clientID: String, redirectURI: String, codeChallenge: String?,
                           user: String, domain: String, dn: String?, familyID: String, lifetimeSeconds: Int) throws {
        try c.query("""
            INSERT INTO account_codes (code_hash, client_id, redirect_uri, code_challenge, managed_apple_id, domain, directory_dn,
                                       family_id, expires_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now() + make_interval(secs => $9))
            """, [.text(hash), .text(clientID), .text(redirectURI), .optionalText(codeChallenge),
                  .text(user), .text(domain), .optionalText(dn), .text(familyID), .int(lifetimeSeconds)])
    }

    /// The owner of a code that can still be exchanged.
    static func liveCodeOwner(_ database: Database, hash: String) async throws -> (user: String, domain: String)? {
        guard let row = try await database.query("""
            SELECT managed_apple_id, domain FROM account_codes WHERE code_hash = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now()
            """, [.text(hash)]).first, let user = row.string("managed_apple_id"), let domain = row.string("domain") else { return nil }
        return (user, domain)
    }

    /// A code or refresh token as the token endpoint checks it.
    struct Grant {
        let clientID: String?, redirectURI: String?, codeChallenge: String?
        let user: String, domain: String, dn: String?, familyID: String
        let used: Bool, expired: Bool, revoked: Bool

        init?(_ row: Row) {
            guard let user = row.string("managed_apple_id"), let domain = row.string("domain"), let family = row.string("family_id") else {
                return nil
            }
            clientID = row.string("client_id"); redirectURI = row.string("redirect_uri"); codeChallenge = row.string("code_challenge")
            self.user = user; self.domain = domain; dn = row.string("directory_dn"); familyID = family
            used = row.bool("used") == true; expired = row.bool("expired") == true; revoked = row.bool("revoked") == true
        }
    }

    /// The code, locked until the transaction ends (two exchanges of one code are serialised).
    static func lockCode(_ c: Connection, hash: String) throws -> Grant? {
        try c.query("""
            SELECT client_id, redirect_uri, code_challenge, managed_apple_id, domain, directory_dn, family_id,
                   used_at IS NOT NULL AS used, expires_at <= now() AS expired, revoked_at IS NOT NULL AS revoked
            FROM account_codes WHERE code_hash = $1 FOR UPDATE
            """, [.text(hash)]).first.flatMap(Grant.init)
    }

    static func spendCode(_ c: Connection, hash: String) throws {
        try c.query("UPDATE account_codes SET used_at = now() WHERE code_hash = $1", [.text(hash)])
    }

    static func refreshToken(_ database: Database, hash: String) async throws -> Grant? {
        try await database.query("""
            SELECT family_id, client_id, NULL AS redirect_uri, NULL AS code_challenge, managed_apple_id, domain, directory_dn,
                   used_at IS NOT NULL AS used, revoked_at IS NOT NULL AS revoked, expires_at <= now() AS expired
            FROM account_refresh_tokens WHERE token_hash = $1
            """, [.text(hash)]).first.flatMap(Grant.init)
    }

    /// Spends a live refresh token; false when it was used, revoked or expired meanwhile.
    static func spendRefreshToken(_ c: Connection, hash: String) throws -> Bool {
        !(try c.query("""
            UPDATE account_refresh_tokens SET used_at = now()
            WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now() RETURNING 1
            """, [.text(hash)])).isEmpty
    }

    static func insertRefreshToken(_ c: Connection, hash: String, familyID: String, clientID: String, user: String, domain: String,
                                   dn: String?, lifetimeSeconds: Int) throws {
        try c.query("""
            INSERT INTO account_refresh_tokens (token_hash, family_id, client_id, managed_apple_id, domain, directory_dn, expires_at)
            VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7))
            """, [.text(hash), .text(familyID), .text(clientID), .text(user), .text(domain), .optionalText(dn), .int(lifetimeSeconds)])
    }

    // MARK: the directory sweep

    /// Whether this replica sweeps now: true for the first to ask once `intervalSeconds` have passed since the last sweep.
    static func claimSweep(_ database: Database, intervalSeconds: Int) async throws -> Bool {
        try await !database.query("""
            INSERT INTO directory_sweeps (name, swept_at) VALUES ('directory', now())
            ON CONFLICT (name) DO UPDATE SET swept_at = now()
                WHERE directory_sweeps.swept_at < now() - make_interval(secs => $1)
            RETURNING 1
            """, [.int(intervalSeconds)]).isEmpty
    }

    /// The accounts of `domain` holding something live (access token, refresh token, code), with their lowercased directory DN.
    static func liveAccounts(_ database: Database, domain: String) async throws -> [(user: String, dn: String)] {
        try await database.query("""
            SELECT DISTINCT managed_apple_id, lower(directory_dn) AS dn FROM account_tokens
            WHERE domain = $1 AND revoked_at IS NULL AND expires_at > now() AND directory_dn IS NOT NULL
            UNION
            SELECT DISTINCT managed_apple_id, lower(directory_dn) FROM account_refresh_tokens
            WHERE domain = $1 AND revoked_at IS NULL AND used_at IS NULL AND expires_at > now() AND directory_dn IS NOT NULL
            UNION
            SELECT DISTINCT managed_apple_id, lower(directory_dn) FROM account_codes
            WHERE domain = $1 AND revoked_at IS NULL AND used_at IS NULL AND expires_at > now() AND directory_dn IS NOT NULL
            """, [.text(domain)]).map { ($0.string("managed_apple_id") ?? "", $0.string("dn") ?? "") }
    }
}
