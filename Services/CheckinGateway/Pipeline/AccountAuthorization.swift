import Foundation
import HTTPTypes
import Hummingbird
import OrchardCore
import OrchardCrypto
import OrchardMessaging
import OrchardSchemas
import OrchardServiceKit
import OrchardStorage

/// What the gateway asks user-enrollment-auth about account-driven enrollment, cached: a domain's mode, minimum OS
/// and challenge (30 s), and whether a bearer token is good (`tokenCacheSeconds`, never past the token's expiry).
/// So a revoked token, or a user disabled in the directory, stops working within `tokenCacheSeconds` plus
/// user-enrollment-auth's own 30 s directory recheck: under a minute with the defaults.
struct AccountAuthorization: Sendable {
    let database: Database
    let requests: RequestClient
    let timeout: Duration
    let tokenCacheSeconds: TimeInterval
    private let tokens = ExpiringCache<ValidateAccountToken.Reply>(capacity: 200_000)
    private let domains = ExpiringCache<DescribeAccountEnrollment.Reply?>(capacity: 10_000)

    init(database: Database, requests: RequestClient, timeout: Duration, tokenCacheSeconds: TimeInterval) {
        self.database = database
        self.requests = requests
        self.timeout = timeout
        self.tokenCacheSeconds = tokenCacheSeconds
    }

    static let authorization = HTTPField.Name("Authorization")!
    static let wwwAuthenticate = HTTPField.Name("WWW-Authenticate")!
    static let enrollmentSSO = HTTPField.Name("X-Apple-MDM-ESSO")!

    /// The bearer token of `Authorization: Bearer <token>`; nil without one.
    static func bearer(_ request: Request) -> String? {
        guard let value = request.headers[authorization], value.utf8.count <= 4096 else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }

    /// The domain's account-driven settings; nil when it is not a domain of this organisation.
    func describe(_ domain: String, correlationID: String) async throws -> DescribeAccountEnrollment.Reply? {
        let key = domain.lowercased()
        if let cached = domains.get(key) { return cached }
        let reply: DescribeAccountEnrollment.Reply?
        do {
            reply = try await requests.request(DescribeAccountEnrollment(domain: key), timeout: timeout, correlationID: correlationID)
        } catch let refused as RequestRefused where refused.httpStatus == 404 || refused.httpStatus == 400 {
            reply = nil
        }
        domains.set(key, reply, for: 30)
        return reply
    }

    /// Whether `token` is good now: Orchard's own tokens from the gateway's copy (`AccountTokenCopy`), or, when the copy
    /// does not have it yet (an event still on its way) or it is an external provider's JWT, as user-enrollment-auth says.
    func validate(_ token: String, correlationID: String) async throws -> ValidateAccountToken.Reply {
        let hash = Digest.sha256(Array(token.utf8)).hexString
        if let cached = tokens.get(hash) { return cached }
        if let row = try await AccountTokenCopyStore.find(database, tokenHash: hash), let domain = row.string("domain") {
            let settings = try await describe(domain, correlationID: correlationID)
            var reply = ValidateAccountToken.Reply(valid: false, tokenID: row.string("token_id"), managedAppleID: row.string("managed_apple_id"),
                                                   domain: domain, mode: settings?.mode, expiresAt: row.date("expires_at"),
                                                   challenge: settings?.challenge)
            if settings == nil {
                reply.reason = "domain \(domain) no longer enrolls"
            } else if row.bool("revoked") == true {
                reply.reason = "revoked (\(row.string("revoked_reason") ?? "revoked"))"
            } else if row.bool("expired") == true {
                reply.reason = "expired"
            } else {
                reply.valid = true
            }
            var ttl = tokenCacheSeconds
            if reply.valid, let expiry = reply.expiresAt { ttl = min(ttl, expiry.timeIntervalSinceNow) }
            if ttl > 0 { tokens.set(hash, reply, for: ttl) }
            return reply
        }
        // An external OIDC provider's JWT must reach user-enrollment-auth to have its signature checked; Orchard's own
        // opaque tokens travel only as their hash.
        let jwt = token.hasPrefix("eyJ") && token.split(separator: ".", omittingEmptySubsequences: false).count == 3 ? token : nil
        let reply = try await requests.request(ValidateAccountToken(tokenHash: hash, jwt: jwt), timeout: timeout, correlationID: correlationID)
        var ttl = tokenCacheSeconds
        if reply.valid, let expiry = reply.expiresAt { ttl = min(ttl, expiry.timeIntervalSinceNow) }
        if ttl > 0 { tokens.set(hash, reply, for: ttl) }
        return reply
    }

    /// What a bearer is worth for a request: the one rule every entry point applies (account-driven enrollment's BaseURL,
    /// ADE's Platform SSO, and, through `EnrollmentAuthorizer.checkAccount`, every MDM request of an account-driven
    /// enrollment). Accepted only when it is present, valid now, of `domain` and, when `account` is given, of that account.
    enum BearerVerdict: Equatable {
        case missing
        case refused(String)
        case accepted(user: String)
    }

    static func verdict(bearerPresent: Bool, token: ValidateAccountToken.Reply?, domain: String, account: String? = nil) -> BearerVerdict {
        guard bearerPresent, let token else { return .missing }
        guard token.valid, let user = token.managedAppleID else { return .refused(token.reason ?? "token refused") }
        guard token.domain == domain else { return .refused("token of \(token.domain ?? "another domain"), not \(domain)") }
        if let account, user != account { return .refused("token of another account") }
        return .accepted(user: user)
    }

    /// The request's bearer, validated (`validate`) and judged (`verdict`).
    func judge(_ request: Request, domain: String, correlationID: String) async throws -> BearerVerdict {
        guard let bearer = Self.bearer(request) else { return .missing }
        return Self.verdict(bearerPresent: true, token: try await validate(bearer, correlationID: correlationID), domain: domain)
    }

    /// Drops this gateway's cached answers for `user`'s tokens (after an admin revoked them here).
    func forget(user: String) {
        tokens.removeAll { $0.managedAppleID == user.lowercased() }
    }

    /// `401` with the challenge that sends the device to sign in (again): Apple's `WWW-Authenticate` comma form.
    static func challenge(_ value: String, reason: String) -> Response {
        var response = jsonResponse(.unauthorized, object: ["code": "com.orchard.account.authentication-required", "description": reason])
        response.headers[wwwAuthenticate] = value
        return response
    }

    /// `403 com.apple.unrecognized.device`: the device unenrolls (an account-driven enrollment Orchard no longer knows).
    static func unrecognizedDevice(_ reason: String) -> Response {
        jsonResponse(.forbidden, object: ["code": "com.apple.unrecognized.device", "description": reason,
                      "message": "This device is no longer enrolled with your organisation."])
    }

}
