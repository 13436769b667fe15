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
    /// `ok`, `expiring` (30 days or fewer), `expired`, or `awaiting-server-token`.
    public var state: String
    public var serverTokenUploadedAt: Date?
    public var createdAt: Date

    public init(id: String, name: String, certificateSHA256: String, certificatePEM: String, hasServerToken: Bool,
                consumerKey: String?, accessTokenExpiry: Date?, daysLeft: Int?, state: String, serverTokenUploadedAt: Date?,
                createdAt: Date) {
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
