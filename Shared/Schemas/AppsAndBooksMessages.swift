import Foundation
import OrchardMessaging

// Apple's Apps and Books for Organizations API (app licences, "VPP"): abm-sync keeps the organisation's content tokens
// sealed and talks to Apple; the gateway asks it over orchard.abm-requests.v1 for licences before it installs an app.

/// A content token as the admin API shows it (never the token itself).
public struct ContentTokenView: Codable, Sendable, Equatable {
    public var id: String
    /// The organisation the token is for (`orgName` in the downloaded token).
    public var organization: String
    /// The Apps and Books location (`locationName` of Apple's client configuration).
    public var location: String?
    public var countryCode: String?
    public var expiresAt: Date
    public var uploadedAt: Date
    public init(id: String, organization: String, location: String?, countryCode: String?, expiresAt: Date, uploadedAt: Date) {
        self.id = id
        self.organization = organization
        self.location = location
        self.countryCode = countryCode
        self.expiresAt = expiresAt
        self.uploadedAt = uploadedAt
    }
}

/// Stores (or replaces) a content token: the text of the `.vpptoken` file Apple Business Manager downloads. Apple is asked
/// first (its client configuration, then Orchard's name as the token's MDM); a token Apple refuses, an expired one, or
/// one for another organisation than Orchard's ABM server tokens is refused and nothing is kept.
public struct UploadContentToken: RequestSchema, Equatable {
    public static let topic = "orchard.abm-requests.v1"
    public static let type = "apps-books.token.upload"
    public static let version = 1
    public var id: String
    public var sToken: String
    /// Take the token over from another MDM server that uses it (Apple allows one).
    public var takeOver: Bool
    public var actor: String
    public var key: String { id }
    public init(id: String, sToken: String, takeOver: Bool, actor: String) {
        self.id = id
        self.sToken = sToken
        self.takeOver = takeOver
        self.actor = actor
    }
    public typealias Reply = ContentTokenView
}

public struct ListContentTokens: RequestSchema, Equatable {
    public static let topic = "orchard.abm-requests.v1"
    public static let type = "apps-books.token.list"
    public static let version = 1
    public var key: String { "content-tokens" }
    public init() {}
    public struct Reply: Codable, Sendable, Equatable {
        public var items: [ContentTokenView]
        public init(items: [ContentTokenView]) { self.items = items }
    }
}

/// Assigns one app's licences to devices (device-based assignment, by serial number) with a content token, and waits for
/// Apple's asynchronous event to finish. Associating a licence a device already has is no error.
public struct AssociateAppLicences: RequestSchema, Equatable {
    public static let topic = "orchard.abm-requests.v1"
    public static let type = "apps-books.licences.associate"
    public static let version = 1
    public var tokenID: String
    public var adamID: String
    public var pricingParam: String?
    public var serialNumbers: [String]
    public var actor: String
    public var key: String { tokenID }
    public init(tokenID: String, adamID: String, pricingParam: String?, serialNumbers: [String], actor: String) {
        self.tokenID = tokenID
        self.adamID = adamID
        self.pricingParam = pricingParam
        self.serialNumbers = serialNumbers
        self.actor = actor
    }
    public struct Failure: Codable, Sendable, Equatable {
        public var serialNumber: String
        public var reason: String
        public init(serialNumber: String, reason: String) {
            self.serialNumber = serialNumber
            self.reason = reason
        }
    }
    public struct Reply: Codable, Sendable, Equatable {
        public var licensed: [String]
        public var failed: [Failure]
        public init(licensed: [String], failed: [Failure]) {
            self.licensed = licensed
            self.failed = failed
        }
    }
}

/// What Apple's Apps and Books Metadata for Organizations API says of apps the organisation owns
/// (`GET /v1/catalog/{storefront}/stoken-authenticated-apps`, with Orchard's developer token and the content token as the
/// `itvt` cookie): the iPhone app's bundle id, the watch app's (`watchBundleId`) and the device families. Asked with the
/// content token that licenses the app; ids Apple does not return are listed in `missing`.
public struct LookUpAppMetadata: RequestSchema, Equatable {
    public static let topic = "orchard.abm-requests.v1"
    public static let type = "apps-books.metadata.lookup"
    public static let version = 1
    public var tokenID: String
    public var adamIDs: [String]
    public var key: String { tokenID }
    public init(tokenID: String, adamIDs: [String]) {
        self.tokenID = tokenID
        self.adamIDs = adamIDs
    }
    public struct App: Codable, Sendable, Equatable {
        public var adamID: String
        public var name: String?
        /// `platformAttributes.ios.bundleId`.
        public var bundleID: String?
        /// The watch app's bundle identifier, present when the app has a watch app.
        public var watchBundleID: String?
        /// `deviceFamilies`: `iphone`, `ipad`, `ipod`, `watch`, `mac`, ….
        public var deviceFamilies: [String]
        public var isCustomApp: Bool
        public init(adamID: String, name: String?, bundleID: String?, watchBundleID: String?, deviceFamilies: [String], isCustomApp: Bool) {
            self.adamID = adamID
            self.name = name
            self.bundleID = bundleID
            self.watchBundleID = watchBundleID
            self.deviceFamilies = deviceFamilies
            self.isCustomApp = isCustomApp
        }
    }
    public struct Reply: Codable, Sendable, Equatable {
        public var apps: [App]
        public var missing: [String]
        public init(apps: [App], missing: [String]) {
            self.apps = apps
            self.missing = missing
        }
    }
}
