import Foundation
import OrchardMessaging

/// What the admin API shows of one Apple Business Manager (or School Manager) server token. abm-sync owns
/// the tokens; the gateway's admin API asks it over Kafka. Never carries a secret.
public struct ABMTokenHealth: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    /// SHA-256 of the certificate to upload to ABM (the server token is encrypted to it).
    public var certificateSHA256: String
    /// The certificate, PEM, for the ABM web page ("Upload Public Key").
    public var certificatePEM: String
    /// Whether a server token (.p7m) was uploaded and opened.
    public var hasServerToken: Bool
    /// The OAuth consumer key of the server token (an identifier, not a secret).
    public var consumerKey: String?
    public var accessTokenExpiry: Date?
    /// Whole days until the access token expires (negative once expired).
    public var daysLeft: Int?
    /// `ok`, `expiring` (30 days or fewer), `expired`, `terms-not-signed`, or `awaiting-server-token`.
    public var state: String
    public var serverTokenUploadedAt: Date?
    public var createdAt: Date
    /// From ABM's `GET /account` at the last check.
    public var organization: String?
    public var serverName: String?
    public var lastCheckedAt: Date?
    /// Why the last call to ABM failed, if it did (cleared by a call that works).
    public var lastError: String?
    /// ABM's terms changed and wait for an administrator (`T_C_NOT_SIGNED`): this token does nothing until then.
    public var termsNotSigned: Bool
    /// A new key pair staged by a key rotation: upload this certificate to ABM, then the `.p7m` ABM makes for
    /// it; the current key keeps working until that `.p7m` arrives, and is replaced then.
    public var stagedCertificatePEM: String?
    public var stagedCertificateSHA256: String?
    /// The last device sync that finished, and why the last one failed (cleared by one that works).
    public var lastSyncAt: Date?
    public var lastSyncError: String?
    /// The ADE profile new devices of this token get.
    public var defaultProfileID: String?
    /// Devices in the mirror now.
    public var devices: Int?
    /// The account-driven discovery URL ABM has for this server (`POST /account-driven-enrollment/profile`), when
    /// registered, and the last attempt's error.
    public var discoveryURL: String?
    public var discoveryRegisteredAt: Date?
    public var discoveryError: String?

    public init(id: String, name: String, certificateSHA256: String, certificatePEM: String, hasServerToken: Bool,
                consumerKey: String?, accessTokenExpiry: Date?, daysLeft: Int?, state: String, serverTokenUploadedAt: Date?,
                createdAt: Date, organization: String? = nil, serverName: String? = nil, lastCheckedAt: Date? = nil,
                lastError: String? = nil, termsNotSigned: Bool = false, stagedCertificatePEM: String? = nil,
                stagedCertificateSHA256: String? = nil) {
        self.id = id
        self.name = name
        self.certificateSHA256 = certificateSHA256
        self.certificatePEM = certificatePEM
        self.hasServerToken = hasServerToken
        self.consumerKey = consumerKey
        self.accessTokenExpiry = accessTokenExpiry
        self.daysLeft = daysLeft
        self.state = state
        self.serverTokenUploadedAt = serverTokenUploadedAt
        self.createdAt = createdAt
        self.organization = organization
        self.serverName = serverName
        self.lastCheckedAt = lastCheckedAt
        self.lastError = lastError
        self.termsNotSigned = termsNotSigned
        self.stagedCertificatePEM = stagedCertificatePEM
        self.stagedCertificateSHA256 = stagedCertificateSHA256
    }
}

/// Creates a server-token entry: abm-sync makes an RSA key pair and a self-signed certificate, which the
/// administrator uploads to ABM for the MDM server; ABM then offers the `.p7m` server token encrypted to it.
public struct CreateABMToken: RequestSchema, Equatable {
    public static let topic = "orchard.abm-requests.v1"
    public static let type = "abm.token.create"
    public static let version = 1

    public var name: String
    public var actor: String
    public var key: String { name }

    public init(name: String, actor: String) {
        self.name = name
        self.actor = actor
    }

    public typealias Reply = ABMTokenHealth
}

/// Uploads the `.p7m` server token ABM produced for a token entry's certificate (S/MIME: MIME headers,
/// base64 CMS EnvelopedData; inside, MIME headers and the JSON between `-----BEGIN MESSAGE-----` markers).
/// A new `.p7m` for the same key renews the token. Refused: not a server token, or encrypted to another key.
public struct UploadABMServerToken: RequestSchema, Equatable {
    public static let topic = "orchard.abm-requests.v1"
    public static let type = "abm.token.upload"
    public static let version = 1

    public var id: String
    public var p7m: Data
    public var actor: String
    public var key: String { id }

    public init(id: String, p7m: Data, actor: String) {
        self.id = id
        self.p7m = p7m
        self.actor = actor
    }

    public typealias Reply = ABMTokenHealth
}

/// Every server token with its health.
public struct ListABMTokens: RequestSchema, Equatable {
    public static let topic = "orchard.abm-requests.v1"
    public static let type = "abm.token.list"
    public static let version = 1

    public var key: String { "tokens" }
    public init() {}

    public struct Reply: Codable, Sendable, Equatable {
        public var items: [ABMTokenHealth]
        public init(items: [ABMTokenHealth]) { self.items = items }
    }
}

/// Calls ABM with the token (`GET /account`): records the organisation and server name, or why it failed
/// (terms not accepted, token refused, Apple unreachable) in the token's health.
public struct CheckABMToken: RequestSchema, Equatable {
    public static let topic = "orchard.abm-requests.v1"
    public static let type = "abm.token.check"
    public static let version = 1

    public var id: String
    public var actor: String
    public var key: String { id }

    public init(id: String, actor: String) {
        self.id = id
        self.actor = actor
    }

    public typealias Reply = ABMTokenHealth
}

/// Stages a new key pair for a server token (key rotation): the current key stays until ABM's `.p7m` for the
/// new certificate is uploaded, which replaces it. Staging again replaces a staged pair not yet used.
public struct RotateABMTokenKey: RequestSchema, Equatable {
    public static let topic = "orchard.abm-requests.v1"
    public static let type = "abm.token.rotate-key"
    public static let version = 1

    public var id: String
    public var actor: String
    public var key: String { id }

    public init(id: String, actor: String) {
        self.id = id
        self.actor = actor
    }

    public typealias Reply = ABMTokenHealth
}

/// The gateway asks abm-sync for a Managed Apple Account access-management token (GetToken `com.apple.maid`,
/// REFERENCE §2/§4.7): a JWT with `iss` = the ABM server's `server_uuid`, `iat`, `jti` and `service_type`, signed (RS256)
/// with the private key of that server's token. The token of the device's serial when ABM assigned it to us;
/// otherwise the most recently connected one.
public struct SignManagedAppleIDToken: RequestSchema, Equatable {
    public static let topic = "orchard.abm-requests.v1"
    public static let type = "abm.maid-token.sign"
    public static let version = 1
    public var serialNumber: String?
    public var key: String { serialNumber ?? "maid" }
    public init(serialNumber: String?) { self.serialNumber = serialNumber }

    public struct Reply: Codable, Sendable, Equatable {
        public var jwt: String
        /// The ABM server token whose key signed it.
        public var tokenID: String
        public var jti: String
        public init(jwt: String, tokenID: String, jti: String) {
            self.jwt = jwt
            self.tokenID = tokenID
            self.jti = jti
        }
    }
}
