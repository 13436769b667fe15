import Foundation
import OrchardMessaging

/// A Managed Apple Account domain for account-driven enrollment: which enrollment its users get (`mdm-byod`,
/// User Enrollment of a personal device, or `mdm-adde`, Device Enrollment of an organisation's device), which
/// directory signs them in, and the minimum OS per platform. user-enrollment-auth owns them.
public struct ManagedDomain: Codable, Sendable, Equatable {
    public var domain: String
    /// `mdm-byod` or `mdm-adde` (the `Version` the discovery answer carries).
    public var mode: String
    /// Which directory authenticates the domain's users (`local` until directories are configurable).
    public var directory: String
    /// `iOS`, `iPadOS`, `macOS` → minimum version (defaults 18.2, 18.2, 15.2).
    public var minimumOS: [String: String]
    /// The `BaseURL` devices of this domain enroll at.
    public var baseURL: String
    /// Whether the discovery URL is registered with Apple Business Manager (the fallback of iOS 18.2 / macOS 15.2
    /// when the organisation's own domain does not answer); not yet: organisations host or redirect
    /// `/.well-known/com.apple.remotemanagement` on their mail domain.
    public var registeredWithABM: Bool
    public var updatedAt: Date

    public init(domain: String, mode: String, directory: String, minimumOS: [String: String], baseURL: String,
                registeredWithABM: Bool, updatedAt: Date) {
        self.domain = domain
        self.mode = mode
        self.directory = directory
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
    public var minimumOS: [String: String]?
    public var actor: String
    public var key: String { domain }
    public init(domain: String, mode: String, directory: String?, minimumOS: [String: String]?, actor: String) {
        self.domain = domain
        self.mode = mode
        self.directory = directory
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
