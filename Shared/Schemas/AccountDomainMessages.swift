import Foundation
import OrchardMessaging

/// A Managed Apple Account domain for account-driven enrollment: which enrollment its users get (`mdm-byod`,
/// User Enrollment of a personal device, or `mdm-adde`, Device Enrollment of an organisation's device), which
/// directory signs them in, and the minimum OS per platform. user-enrollment-auth owns them.
public struct ManagedDomain: Codable, Sendable, Equatable {
    public var domain: String
    /// `mdm-byod` or `mdm-adde` (the `Version` the discovery answer carries).
    public var mode: String
    /// Which directory authenticates the domain's users: `ldap` (the settings in `ldap`), or `none` (nobody can sign in yet).
    public var directory: String
    /// The LDAP directory, without its search account's password.
    public var ldap: LDAPDirectorySettings?
    /// How devices sign in: `apple-as-web` (the simple web flow) or `apple-oauth2` (Orchard's authorization and token
    /// endpoints, with refresh tokens, or those of `oidc`).
    public var authentication: String?
    /// An external OpenID Connect provider that signs the domain's users in (with `apple-oauth2`).
    public var oidc: OIDCProviderSettings?
    /// `iOS`, `iPadOS`, `macOS` → minimum version (defaults 18.2, 18.2, 15.2).
    public var minimumOS: [String: String]
    /// The identity app the domain's iPhones and iPads download to sign in with (Enrollment SSO), and where its
    /// `EnrollmentSSODocument` is served.
    public var enrollmentSSO: EnrollmentSSOSettings?
    public var enrollmentSSOURL: String?
    /// The `BaseURL` devices of this domain enroll at.
    public var baseURL: String
    /// user-enrollment-auth's discovery URL (`<ORCHARD_ENROLLMENT_AUTH_PUBLIC_URL>/.well-known/com.apple.remotemanagement`).
    public var discoveryURL: String?
    /// Whether an ABM server token has that discovery URL registered (the fallback of iOS 18.2 / macOS 15.2 when the
    /// organisation's own domain does not answer); the admin API fills it in from abm-sync's tokens.
    public var registeredWithABM: Bool
    public var updatedAt: Date

    public init(domain: String, mode: String, directory: String, ldap: LDAPDirectorySettings? = nil, minimumOS: [String: String],
                baseURL: String, registeredWithABM: Bool, updatedAt: Date) {
        self.domain = domain
        self.mode = mode
        self.directory = directory
        self.ldap = ldap
        self.minimumOS = minimumOS
        self.baseURL = baseURL
        self.registeredWithABM = registeredWithABM
        self.updatedAt = updatedAt
    }
}

/// Creates or changes a Managed Apple Account domain.
public struct SaveManagedDomain: RequestSchema, Equatable {
    public static let topic = "orchard.account-requests.v1"
    public static let type = "account.domain.save"
    public static let version = 1
    public var domain: String
    public var mode: String
    public var directory: String?
    public var ldap: LDAPDirectorySettings?
    /// `apple-as-web` (default) or `apple-oauth2`.
    public var authentication: String?
    public var oidc: OIDCProviderSettings?
    public var minimumOS: [String: String]?
    public var enrollmentSSO: EnrollmentSSOSettings?
    public var actor: String
    public var key: String { domain }
    public init(domain: String, mode: String, directory: String?, ldap: LDAPDirectorySettings? = nil, authentication: String? = nil,
                oidc: OIDCProviderSettings? = nil, minimumOS: [String: String]?, enrollmentSSO: EnrollmentSSOSettings? = nil, actor: String) {
        self.enrollmentSSO = enrollmentSSO
        self.domain = domain
        self.mode = mode
        self.directory = directory
        self.ldap = ldap
        self.authentication = authentication
        self.oidc = oidc
        self.minimumOS = minimumOS
        self.actor = actor
    }
    public typealias Reply = ManagedDomain
}

/// Every Managed Apple Account domain.
public struct ListManagedDomains: RequestSchema, Equatable {
    public static let topic = "orchard.account-requests.v1"
    public static let type = "account.domain.list"
    public static let version = 1
    public var key: String { "domains" }
    public init() {}
    public struct Reply: Codable, Sendable, Equatable {
        public var items: [ManagedDomain]
        public init(items: [ManagedDomain]) { self.items = items }
    }
}

/// Removes a domain: its users' discovery answers 403 `com.apple.well-known.failed` from then on.
public struct DeleteManagedDomain: RequestSchema, Equatable {
    public static let topic = "orchard.account-requests.v1"
    public static let type = "account.domain.delete"
    public static let version = 1
    public var domain: String
    public var actor: String
    public var key: String { domain }
    public init(domain: String, actor: String) {
        self.domain = domain
        self.actor = actor
    }
    public struct Reply: Codable, Sendable, Equatable {
        public var deleted: Bool
        public init(deleted: Bool) { self.deleted = deleted }
    }
}

/// How user-enrollment-auth signs a domain's users in against LDAP (OpenLDAP, Active Directory): an optional search
/// account binds, finds the one entry `userFilter` matches (`{user}` stands for the Managed Apple Account, escaped),
/// then the user's own simple bind with their password decides. `disabledFilter`, evaluated on that entry, marks
/// accounts that may not sign in (`(employeeType=disabled)`; on Active Directory
/// `(userAccountControl:1.2.840.113556.1.4.803:=2)`). `ldaps://` URLs use TLS; `caFile` trusts a private CA.
public struct LDAPDirectorySettings: Codable, Sendable, Equatable {
    public var url: String
    public var baseDN: String
    public var userFilter: String
    public var disabledFilter: String?
    public var bindDN: String?
    /// Write-only: sealed at rest with `ORCHARD_KEK`, never returned (the view says `bindPasswordSet`).
    public var bindPassword: String?
    public var bindPasswordSet: Bool?
    public var caFile: String?
    public var timeoutSeconds: Int?

    public init(url: String, baseDN: String, userFilter: String, disabledFilter: String? = nil, bindDN: String? = nil,
                bindPassword: String? = nil, caFile: String? = nil, timeoutSeconds: Int? = nil) {
        self.url = url
        self.baseDN = baseDN
        self.userFilter = userFilter
        self.disabledFilter = disabledFilter
        self.bindDN = bindDN
        self.bindPassword = bindPassword
        self.caFile = caFile
        self.timeoutSeconds = timeoutSeconds
    }
}

/// An external OpenID Connect provider: the challenge names its authorization and token endpoints (from
/// `<issuer>/.well-known/openid-configuration`) and `clientID`; Orchard validates the JWT access tokens it issues
/// (signature by its JWKS, `iss`, `aud` = `audience` or `clientID`, expiry) and takes the account from `userClaim`.
public struct OIDCProviderSettings: Codable, Sendable, Equatable {
    public var issuer: String
    public var clientID: String
    public var audience: String?
    /// Default `openid email`.
    public var scope: String?
    /// The claim holding the Managed Apple Account; default `email`.
    public var userClaim: String?

    public init(issuer: String, clientID: String, audience: String? = nil, scope: String? = nil, userClaim: String? = nil) {
        self.issuer = issuer
        self.clientID = clientID
        self.audience = audience
        self.scope = scope
        self.userClaim = userClaim
    }
}

/// Enrollment SSO (Apple's "Implementing the Enrollment SSO flow", iOS 16+, visionOS 2+): the identity app a domain's
/// devices download before they sign in, and the `com.apple.extensiblesso` configuration of its SSO extension, which
/// Orchard serves in the domain's `EnrollmentSSODocument`.
public struct EnrollmentSSOSettings: Codable, Sendable, Equatable {
    /// The app's App Store (iTunes Store) id.
    public var appStoreID: Int
    /// The SSO extension's bundle identifier (`ExtensionIdentifier`).
    public var extensionIdentifier: String
    /// The extension's team identifier: kept with the app's details, not put in the iOS profile (Apple's schema has
    /// `TeamIdentifier` on macOS only, and Enrollment SSO is iOS and visionOS).
    public var teamIdentifier: String?
    /// `Redirect` (with `urls`) or `Credential` (with `hosts` and `realm`).
    public var type: String
    public var urls: [String]?
    public var hosts: [String]?
    public var realm: String?
    /// The app's associated domains, such as `authsrv:login.example.com`.
    public var associatedDomains: [String]?
    public var associatedDomainsEnableDirectDownloads: Bool?

    public init(appStoreID: Int, extensionIdentifier: String, teamIdentifier: String? = nil, type: String, urls: [String]? = nil,
                hosts: [String]? = nil, realm: String? = nil, associatedDomains: [String]? = nil,
                associatedDomainsEnableDirectDownloads: Bool? = nil) {
        self.appStoreID = appStoreID
        self.extensionIdentifier = extensionIdentifier
        self.teamIdentifier = teamIdentifier
        self.type = type
        self.urls = urls
        self.hosts = hosts
        self.realm = realm
        self.associatedDomains = associatedDomains
        self.associatedDomainsEnableDirectDownloads = associatedDomainsEnableDirectDownloads
    }
}

/// A domain's account-driven enrollment, as its `mode` names it (REFERENCE §5): User Enrollment of personal devices, or
/// Device Enrollment of organisation devices. user-enrollment-auth stores it; the gateway builds the profile from it.
public enum AccountEnrollmentMode: String, Codable, Sendable, CaseIterable {
    case userEnrollment = "mdm-byod"
    case deviceEnrollment = "mdm-adde"
}
