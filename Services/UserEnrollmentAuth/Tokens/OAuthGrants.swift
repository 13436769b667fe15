import Foundation
import OrchardCore
import OrchardCrypto
import OrchardMessaging
import OrchardSchemas
import OrchardStorage

/// An authorization request of the OAuth 2 flow (REFERENCE §5.4), as the device sent it to the authorization endpoint
/// and as the sign-in form carries it to its POST (checked again there).
struct OAuthRequest: Sendable, Equatable {
    let clientID: String
    let redirectURI: String
    let state: String
    /// PKCE `S256` challenge, when the client sent one.
    let codeChallenge: String?

    /// The request in `params` (query or form), or why it is refused. Only Orchard's client id and the registered
    /// redirect URI are accepted (a refused request is never redirected anywhere); `plain` PKCE is not.
    static func parse(_ params: [String: String], challenges: AccountChallenges, requireResponseType: Bool) -> Result<OAuthRequest, OAuthError> {
        if requireResponseType, params["response_type"] != "code" {
            return .failure(.init("unsupported_response_type", "response_type must be code"))
        }
        guard params["client_id"] == challenges.clientID else { return .failure(.init("unauthorized_client", "unknown client_id")) }
        guard params["redirect_uri"] == AccountChallenges.redirectURI else {
            return .failure(.init("invalid_request", "redirect_uri is not the registered one"))
        }
        guard let state = params["state"], (1...512).contains(state.count), !state.containsControlCharacters else {
            return .failure(.init("invalid_request", "state is required (1 to 512 characters)"))
        }
        var challenge: String?
        if let c = params["code_challenge"], !c.isEmpty {
            guard (params["code_challenge_method"] ?? "plain") == "S256" else {
                return .failure(.init("invalid_request", "code_challenge_method must be S256"))
            }
            guard (43...128).contains(c.count), c.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-._~".contains($0)) }) else {
                return .failure(.init("invalid_request", "malformed code_challenge"))
            }
            challenge = c
        }
        return .success(OAuthRequest(clientID: challenges.clientID, redirectURI: AccountChallenges.redirectURI, state: state, codeChallenge: challenge))
    }

    /// Hidden fields of the sign-in form.
    var formFields: [(String, String)] {
        var fields = [("client_id", clientID), ("redirect_uri", redirectURI), ("state", state)]
        if let codeChallenge { fields += [("code_challenge", codeChallenge), ("code_challenge_method", "S256")] }
        return fields
    }
}

struct OAuthError: Error, Sendable {
    let code: String
    let description: String
    init(_ code: String, _ description: String) {
        self.code = code
        self.description = description
    }
}

/// Authorization codes and refresh tokens of the OAuth 2 flow. A code lives 60 s and is spent once, in the transaction
/// that issues its tokens (a failure before the commit leaves it usable); a second use revokes what the first issued
/// (RFC 6749 §4.1.2). Refresh tokens rotate: each use spends it and issues a new pair; a spent one presented again
/// revokes its whole family (a stolen refresh token is detected at its first reuse).
struct OAuthGrants: Sendable {
    let database: Database
    let tokens: AccountTokens
    let domains: ManagedDomains
    let activity: AccountActivity
    let accessLifetime: TimeInterval
    let refreshLifetime: TimeInterval

    static let codeLifetime = 60

    struct TokenResponse: Encodable, Sendable {
        let token_type = "Bearer"
        let access_token: String
        let expires_in: Int
        let refresh_token: String
        let scope = AccountChallenges.scope
    }

    /// A code for `user`, recorded in `c` (the sign-in's transaction).
    func issueCode(_ c: Connection, _ request: OAuthRequest, user: String, domain: String, dn: String?) throws -> String {
        let code = "orc_ac_" + (try SecureRandom.token())
        try AccountTokenStore.insertCode(c, hash: AccountTokens.hash(code), clientID: request.clientID, redirectURI: request.redirectURI,
                                         codeChallenge: request.codeChallenge, user: user, domain: domain, dn: dn,
                                         familyID: RandomUUID.lowercased(), lifetimeSeconds: Self.codeLifetime)
        return code
    }

    private enum Outcome {
        case issued(TokenResponse)
        case refused(OAuthError)
    }

    /// `grant_type=authorization_code`.
    func exchange(_ form: [String: String], correlationID: String) async throws -> Result<TokenResponse, OAuthError> {
        guard let code = form["code"], code.count <= 256 else { return .failure(.init("invalid_request", "code is required")) }
        // The directory is asked before tokens are issued, as for a refresh: a user disabled since signing in gets none.
        if let owner = try await AccountTokenStore.liveCodeOwner(database, hash: AccountTokens.hash(code)),
           let refused = try await directoryRefusal(user: owner.user, domain: owner.domain, correlationID: correlationID) {
            return try await finish(.refused(refused), form: form, correlationID: correlationID)
        }
        let outcome = try await database.transaction { c -> Outcome in
            guard let row = try AccountTokenStore.lockCode(c, hash: AccountTokens.hash(code)) else {
                return .refused(.init("invalid_grant", "unknown authorization code"))
            }
            let user = row.user, domain = row.domain, family = row.familyID
            if row.used {
                let revoked = try revokeFamily(c, family)
                try Outbox.append(activity.entry("account.token.revoked", actor: "user:\(user)", outcome: .refused,
                                                 detail: "\(user): authorization code used twice; \(revoked) token(s) it gave revoked"),
                                  correlationID: correlationID, on: c)
                return .refused(.init("invalid_grant", "authorization code already used"))
            }
            if row.expired { return .refused(.init("invalid_grant", "authorization code expired")) }
            if row.revoked { return .refused(.init("invalid_grant", "authorization code revoked with its user's tokens")) }
            guard form["client_id"] == row.clientID, form["redirect_uri"] == row.redirectURI else {
                return .refused(.init("invalid_grant", "client_id or redirect_uri differs from the authorization request"))
            }
            if let challenge = row.codeChallenge {
                guard let verifier = form["code_verifier"], (43...128).contains(verifier.count),
                      base64URL(Digest.sha256(Array(verifier.utf8))) == challenge else {
                    return .refused(.init("invalid_grant", "code_verifier does not match the code_challenge"))
                }
            }
            try AccountTokenStore.spendCode(c, hash: AccountTokens.hash(code))
            let response = try issuePair(c, user: user, domain: domain, dn: row.dn, family: family,
                                         clientID: row.clientID ?? "")
            try Outbox.append(activity.entry("account.token.issued", actor: "user:\(user)", outcome: .succeeded,
                                             detail: "\(user): OAuth 2 access and refresh token for an authorization code"),
                              correlationID: correlationID, on: c)
            return .issued(response)
        }
        activity.outbox.notify()
        return try await finish(outcome, form: form, correlationID: correlationID)
    }

    /// `grant_type=refresh_token`: rotation; the user must still be enabled in the directory.
    func refresh(_ form: [String: String], correlationID: String) async throws -> Result<TokenResponse, OAuthError> {
        guard let refresh = form["refresh_token"], refresh.count <= 256 else { return .failure(.init("invalid_request", "refresh_token is required")) }
        guard let row = try await AccountTokenStore.refreshToken(database, hash: AccountTokens.hash(refresh)) else {
            return .failure(.init("invalid_grant", "unknown refresh token"))
        }
        let user = row.user, domain = row.domain, family = row.familyID
        guard form["client_id"] == row.clientID else { return .failure(.init("invalid_grant", "refresh token of another client")) }
        if row.revoked || row.expired { return .failure(.init("invalid_grant", "refresh token revoked or expired")) }
        if let refused = try await directoryRefusal(user: user, domain: domain, correlationID: correlationID) { return .failure(refused) }
        let outcome = try await database.transaction { c -> Outcome in
            guard try AccountTokenStore.spendRefreshToken(c, hash: AccountTokens.hash(refresh)) else {
                let revoked = try revokeFamily(c, family)
                try Outbox.append(activity.entry("account.token.revoked", actor: "user:\(user)", outcome: .refused,
                                                 detail: "\(user): a rotated refresh token was used again; \(revoked) token(s) of its sign-in revoked"),
                                  correlationID: correlationID, on: c)
                return .refused(.init("invalid_grant", "refresh token already used"))
            }
            let response = try issuePair(c, user: user, domain: domain, dn: row.dn, family: family,
                                         clientID: row.clientID ?? "")
            try Outbox.append(activity.entry("account.token.refreshed", actor: "user:\(user)", outcome: .succeeded,
                                             detail: "\(user): refresh token rotated"), correlationID: correlationID, on: c)
            return .issued(response)
        }
        activity.outbox.notify()
        return try await finish(outcome, form: form, correlationID: correlationID)
    }

    /// Why `user` may have no new tokens: the domain no longer enrolls, or the directory disabled or lost the account
    /// (whose tokens and codes are then revoked); nil when the directory still has the user enabled.
    private func directoryRefusal(user: String, domain: String, correlationID: String) async throws -> OAuthError? {
        guard let record = try await domains.find(domain), let directory = try domains.directory(of: record) else {
            return .init("invalid_grant", "domain \(domain) no longer enrolls devices")
        }
        let outcome = await directory.check(user: user, password: nil)
        guard outcome == .disabled || outcome == .notFound else { return nil }
        _ = try await tokens.revoke(user: user, actor: "service:\(activity.service)", reason: "disabled or gone in the directory",
                                    correlationID: correlationID)
        return .init("invalid_grant", "the account is disabled")
    }

    private func finish(_ outcome: Outcome, form: [String: String], correlationID: String) async throws -> Result<TokenResponse, OAuthError> {
        switch outcome {
        case .issued(let response): return .success(response)
        case .refused(let error):
            try await activity.record("account.token.refused", actor: "service:\(activity.service)", outcome: .refused,
                                      detail: "token endpoint (\(form["grant_type"] ?? "?")): \(error.description)", correlationID: correlationID)
            return .failure(error)
        }
    }

    private func issuePair(_ c: Connection, user: String, domain: String, dn: String?, family: String, clientID: String) throws -> TokenResponse {
        let access = try tokens.issue(c, user: user, domain: domain, dn: dn, lifetime: accessLifetime, familyID: family)
        let refresh = "orc_rt_" + (try SecureRandom.token())
        try AccountTokenStore.insertRefreshToken(c, hash: AccountTokens.hash(refresh), familyID: family, clientID: clientID, user: user,
                                                 domain: domain, dn: dn, lifetimeSeconds: Int(refreshLifetime))
        return TokenResponse(access_token: access.token, expires_in: Int(accessLifetime), refresh_token: refresh)
    }

    /// Revokes every access and refresh token of one sign-in; the count of access tokens.
    private func revokeFamily(_ c: Connection, _ family: String) throws -> Int {
        let rows = try AccountTokenStore.revokeFamily(c, family, reason: "reused OAuth 2 grant")
        try AccountTokens.revoked(c, rows, reason: "reused OAuth 2 grant")
        return rows.count
    }
}
