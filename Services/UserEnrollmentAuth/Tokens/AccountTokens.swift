import Foundation
import Logging
import OrchardCore
import OrchardCrypto
import OrchardMessaging
import OrchardSchemas
import OrchardStorage

/// Access tokens of account-driven enrollment: issued at a successful sign-in (the `access-token` of the 308), sent by
/// the device as `Authorization: Bearer` on its second enrollment request and, on iOS and iPadOS, every MDM request
/// after. Opaque random 256-bit values; only their SHA-256 is stored, and only that travels to the gateway.
/// A token stops working when it expires, is revoked (admin API, or its user is disabled or gone in the directory,
/// which is asked again when the last check is older than `recheck`), or its domain is removed.
struct AccountTokens: Sendable {
    let database: Database
    let outbox: OutboxPublisher
    let domains: ManagedDomains
    let service: String
    let lifetime: TimeInterval
    let challenges: AccountChallenges
    let oidc: OIDCProviders
    let logger: Logger
    /// How old a token's last directory check may be before a validation asks the directory again.
    let recheck: TimeInterval

    static func hash(_ token: String) -> String { Digest.sha256(Array(token.utf8)).hexString }

    /// A new token for `user`, recorded in `c` (the sign-in's transaction).
    /// `lifetime` unless given; `familyID` ties an OAuth 2 access token to its sign-in (revoked together). The token's
    /// event (for the gateway's copy) commits with it.
    func issue(_ c: Connection, user: String, domain: String, dn: String?, lifetime: TimeInterval? = nil,
               familyID: String? = nil) throws -> (id: String, token: String) {
        let token = "orc_at_" + (try SecureRandom.token())
        let id = RandomUUID.lowercased()
        let stored = try AccountTokenStore.insertAccessToken(c, id: id, hash: Self.hash(token), user: user, domain: domain, dn: dn,
                                                             lifetimeSeconds: Int(lifetime ?? self.lifetime), familyID: familyID)
        try Outbox.append(AccountTokenEvent(tokenHash: Self.hash(token), tokenID: id, managedAppleID: user, domain: domain,
                                            mode: stored.mode, expiresAt: stored.expiresAt), correlationID: nil, on: c)
        return (id, token)
    }

    /// Revocation events (for the gateway's copy) of the tokens just revoked.
    static func revoked(_ c: Connection, _ tokens: [RevokedAccountToken], reason: String) throws {
        for t in tokens {
            try Outbox.append(AccountTokenEvent(tokenHash: t.tokenHash, tokenID: t.id, managedAppleID: t.managedAppleID, domain: t.domain,
                                                mode: "", expiresAt: t.expiresAt, revokedAt: Date(), revokedReason: reason),
                              correlationID: nil, on: c)
        }
    }

    func validate(_ r: ValidateAccountToken, correlationID: String?) async throws -> ValidateAccountToken.Reply {
        guard r.tokenHash.count == 64, r.tokenHash.allSatisfy(\.isHexDigit) else { return .init(valid: false, reason: "not a token") }
        if let jwt = r.jwt { return try await validateExternal(jwt, correlationID: correlationID) }
        // The token and its domain, in one round trip.
        guard let row = try await AccountTokenStore.tokenWithDomain(database, hash: r.tokenHash),
              let id = row.string("id"), let user = row.string("managed_apple_id"), let domain = row.string("token_domain") else {
            return .init(valid: false, reason: "unknown token")
        }
        var reply = ValidateAccountToken.Reply(valid: false, tokenID: id, managedAppleID: user, domain: domain, mode: row.string("mode"),
                                               expiresAt: row.date("expires_at"))
        guard row.string("mode") != nil else { reply.reason = "domain \(domain) no longer enrolls"; return reply }
        let record = domains.record(row)
        reply.challenge = try? await challenges.challenge(for: record)
        if row.date("revoked_at") != nil { reply.reason = "revoked (\(row.string("revoked_reason") ?? "revoked"))"; return reply }
        if row.bool("expired") == true { reply.reason = "expired"; return reply }
        // The directory's word about the user is kept by DirectorySweep, off the device's path.
        reply.valid = true
        return reply
    }

    /// Asks the domain's directory about `user` again; why the user's tokens were revoked, or nil when they stand.
    private func recheck(user: String, record: ManagedDomains.Record, correlationID: String?) async throws -> String? {
        guard let directory = try domains.directory(of: record) else { return nil }
        let outcome = await directory.check(user: user, password: nil)
        switch outcome {
        case .ok:
            try await database.transaction { c in try AccountTokenStore.directoryConfirmed(c, user: user) }
            return nil
        case .disabled, .notFound, .ambiguous:
            let why = outcome == .disabled ? "disabled in the directory" : "no longer in the directory"
            _ = try await revoke(user: user, actor: "service:\(service)", reason: why, correlationID: correlationID)
            return why
        case .unreachable(let message), .failed(let message):
            // The directory is away: the token keeps its last answer rather than locking every device out.
            logger.warning("directory of \(record.view.domain) unreachable while checking a token again; it stays valid", metadata: ["error": "\(message)"])
            return nil
        case .wrongPassword:
            return nil
        }
    }

    /// A JWT access token of a domain's external OpenID Connect provider: the domains whose provider is the token's
    /// (unverified) issuer are tried; the first that validates it decides. Revocations by user apply to tokens issued
    /// before them, and the directory (when the domain has one) is asked again as for Orchard's own tokens.
    private func validateExternal(_ jwt: String, correlationID: String?) async throws -> ValidateAccountToken.Reply {
        let parts = jwt.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let payload = OIDCProviders.base64URLDecode(parts[1]),
              let issuer = (try? JSONSerialization.jsonObject(with: payload) as? [String: Any])?["iss"] as? String, issuer.count <= 512 else {
            return .init(valid: false, reason: "not a token of a known provider")
        }
        let candidates = try await DomainStore.trusting(database, issuer: issuer).map(domains.record)
        var last = "no domain trusts issuer \(issuer.prefix(200))"
        for record in candidates {
            guard let settings = record.view.oidc else { continue }
            switch try await oidc.validate(jwt, settings: settings, domain: record.view.domain) {
            case .failure(let error):
                last = error.description
            case .success(let claims):
                var reply = ValidateAccountToken.Reply(valid: false, tokenID: "oidc:" + String(Self.hash(jwt).prefix(16)), managedAppleID: claims.user,
                                                       domain: record.view.domain, mode: record.view.mode, expiresAt: claims.expiresAt,
                                                       challenge: try? await challenges.challenge(for: record))
                let user = try await AccountTokenStore.account(database, user: claims.user, staleAfter: Int(recheck))
                if let revokedBefore = user?.revokedBefore, (claims.issuedAt ?? .distantPast) <= revokedBefore {
                    reply.reason = "revoked (issued before the account's tokens were revoked)"
                    return reply
                }
                if user == nil || user?.stale == true,
                   let why = try await recheck(user: claims.user, record: record, correlationID: correlationID) {
                    reply.reason = "revoked (\(why))"
                    return reply
                }
                reply.valid = true
                return reply
            }
        }
        return .init(valid: false, reason: last)
    }

    /// Revokes every live token of `user`; the count revoked.
    func revoke(user: String, actor: String, reason: String, correlationID: String?) async throws -> Int {
        let user = user.lowercased()
        let count = try await database.transaction { c -> Int in
            // Refresh tokens and authorization codes not exchanged yet would otherwise still give tokens; tokens Orchard did
            // not issue (an OIDC provider's) issued before now stop working too.
            let (rows, codes) = try AccountTokenStore.revokeAll(c, user: user, reason: reason)
            try Self.revoked(c, rows, reason: reason)
            if !rows.isEmpty || codes > 0 {
                let what = codes > 0 ? "\(rows.count) token(s) and \(codes) authorization code(s)" : "\(rows.count) token(s)"
                try Outbox.append(ActivityRecorded(actor: actor, action: "account.token.revoked", deviceID: nil, relatedDeviceIDs: [],
                                                   outcome: .succeeded, detail: "\(user): \(what), \(reason)", service: service),
                                  correlationID: correlationID, on: c)
            }
            return rows.count
        }
        outbox.notify()
        return count
    }
}
