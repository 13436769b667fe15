import Foundation
import OrchardMessaging

/// The gateway asks what an account-driven enrollment at `domain` (its `BaseURL`) needs before it serves a profile:
/// the domain's enrollment mode and minimum OS, and the `WWW-Authenticate` challenge that sends the device to sign in.
public struct DescribeAccountEnrollment: RequestSchema, Equatable {
    public static let topic = "orchard.account-requests.v1"
    public static let type = "account.enrollment.describe"
    public static let version = 1
    public var domain: String
    public var key: String { domain }
    public init(domain: String) { self.domain = domain }

    public struct Reply: Codable, Sendable, Equatable {
        public var domain: String
        /// `mdm-byod` or `mdm-adde`.
        public var mode: String
        public var minimumOS: [String: String]
        /// The complete `WWW-Authenticate` value (Apple's comma form), e.g. `Bearer method="apple-as-web", url="…"`.
        public var challenge: String
        /// Enrollment SSO: the https URL of the domain's `EnrollmentSSODocument`, sent as `X-Apple-MDM-ESSO` on the
        /// enrollment's first 401; nil when the domain names no Enrollment SSO app.
        public var enrollmentSSOURL: String?
        public init(domain: String, mode: String, minimumOS: [String: String], challenge: String, enrollmentSSOURL: String? = nil) {
            self.domain = domain
            self.mode = mode
            self.minimumOS = minimumOS
            self.challenge = challenge
            self.enrollmentSSOURL = enrollmentSSOURL
        }
    }
}

/// The gateway asks whether a bearer access token (by its SHA-256, never the token itself) is good now: issued by
/// user-enrollment-auth, not expired, not revoked, its domain still enrolls, and its user still enabled in the
/// directory (checked again at most every 30 s).
public struct ValidateAccountToken: RequestSchema, Equatable {
    public static let topic = "orchard.account-requests.v1"
    public static let type = "account.token.validate"
    public static let version = 1
    /// Hex SHA-256 of the bearer token.
    public var tokenHash: String
    /// The bearer itself, only when it is a JWT (an external OIDC provider's, whose signature must be checked);
    /// Orchard's own opaque tokens never travel.
    public var jwt: String?
    public var key: String { String(tokenHash.prefix(16)) }
    public init(tokenHash: String, jwt: String? = nil) {
        self.tokenHash = tokenHash
        self.jwt = jwt
    }

    public struct Reply: Codable, Sendable, Equatable {
        public var valid: Bool
        /// Why not, for the log (unknown, expired, revoked, domain removed, disabled in the directory).
        public var reason: String?
        public var tokenID: String?
        /// The Managed Apple Account the token was issued to, lowercased.
        public var managedAppleID: String?
        public var domain: String?
        public var mode: String?
        public var expiresAt: Date?
        /// The challenge to answer with when the token is refused (its domain's), when the domain is known.
        public var challenge: String?
        public init(valid: Bool, reason: String? = nil, tokenID: String? = nil, managedAppleID: String? = nil, domain: String? = nil,
                    mode: String? = nil, expiresAt: Date? = nil, challenge: String? = nil) {
            self.valid = valid
            self.reason = reason
            self.tokenID = tokenID
            self.managedAppleID = managedAppleID
            self.domain = domain
            self.mode = mode
            self.expiresAt = expiresAt
            self.challenge = challenge
        }
    }
}

/// Revokes every token of a Managed Apple Account (admin API): its devices' next requests are challenged.
public struct RevokeAccountTokens: RequestSchema, Equatable {
    public static let topic = "orchard.account-requests.v1"
    public static let type = "account.token.revoke"
    public static let version = 1
    public var managedAppleID: String
    public var actor: String
    public var key: String { managedAppleID }
    public init(managedAppleID: String, actor: String) {
        self.managedAppleID = managedAppleID
        self.actor = actor
    }
    public struct Reply: Codable, Sendable, Equatable {
        public var revoked: Int
        public init(revoked: Int) { self.revoked = revoked }
    }
}

/// An access token of Orchard's issued or revoked (user-enrollment-auth, by its SHA-256): the gateway keeps a copy and
/// validates the bearer of a device's request against it without asking. Each event is the token's latest state;
/// a revocation never becomes undone by a late "issued".
public struct AccountTokenEvent: MessageSchema, Equatable {
    public static let topic = "orchard.account-token-events.v1"
    public static let type = "account.token"
    public static let version = 1
    public var tokenHash: String
    public var tokenID: String
    public var managedAppleID: String
    public var domain: String
    public var mode: String
    public var expiresAt: Date
    public var revokedAt: Date?
    public var revokedReason: String?
    public var key: String { String(tokenHash.prefix(16)) }

    public init(tokenHash: String, tokenID: String, managedAppleID: String, domain: String, mode: String, expiresAt: Date,
                revokedAt: Date? = nil, revokedReason: String? = nil) {
        self.tokenHash = tokenHash
        self.tokenID = tokenID
        self.managedAppleID = managedAppleID
        self.domain = domain
        self.mode = mode
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
        self.revokedReason = revokedReason
    }
}
