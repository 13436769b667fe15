import Foundation
import OrchardMessaging

// The Apple Business Manager API (OAuth 2 client credentials, "Apple School Manager and Apple Business API"):
// abm-sync owns the API accounts; the admin API asks it over orchard.abm-requests.v1.

/// An API account as the admin API shows it (never the key or the assertion).
public struct ABMAPIAccountView: Codable, Sendable, Equatable {
    public var id: String
    public var clientID: String
    public var keyID: String
    /// `business.api` or `school.api`.
    public var scope: String
    /// `key` (Orchard signs each client assertion) or `assertion` (one made elsewhere, used until it expires).
    public var credential: String
    public var assertionExpiresAt: Date?
    public var createdAt: Date
    public var inventoryDevices: Int
    public var inventoryAt: Date?
    public init(id: String, clientID: String, keyID: String, scope: String, credential: String, assertionExpiresAt: Date?, createdAt: Date,
                inventoryDevices: Int, inventoryAt: Date?) {
        self.id = id
        self.clientID = clientID
        self.keyID = keyID
        self.scope = scope
        self.credential = credential
        self.assertionExpiresAt = assertionExpiresAt
        self.createdAt = createdAt
        self.inventoryDevices = inventoryDevices
        self.inventoryAt = inventoryAt
    }
}

/// Creates or replaces an API account: its client id, key id and either its private key (PEM, P-256) or a client
/// assertion made elsewhere. abm-sync asks Apple for a token with it before anything is stored.
public struct SaveABMAPIAccount: RequestSchema, Equatable {
    public static let topic = "orchard.abm-requests.v1"
    public static let type = "abm.api-account.save"
    public static let version = 1
    public var id: String
    public var clientID: String
    public var keyID: String
    public var privateKeyPEM: String?
    public var clientAssertion: String?
    public var scope: String?
    public var actor: String
    public var key: String { id }
    public init(id: String, clientID: String, keyID: String, privateKeyPEM: String?, clientAssertion: String?, scope: String?, actor: String) {
        self.id = id
        self.clientID = clientID
        self.keyID = keyID
        self.privateKeyPEM = privateKeyPEM
        self.clientAssertion = clientAssertion
        self.scope = scope
        self.actor = actor
    }
    public typealias Reply = ABMAPIAccountView
}

public struct ListABMAPIAccounts: RequestSchema, Equatable {
    public static let topic = "orchard.abm-requests.v1"
    public static let type = "abm.api-account.list"
    public static let version = 1
    public var key: String { "api-accounts" }
    public init() {}
    public struct Reply: Codable, Sendable, Equatable {
        public var items: [ABMAPIAccountView]
        public init(items: [ABMAPIAccountView]) { self.items = items }
    }
}

/// Reads the organisation's whole device inventory (`GET /v1/orgDevices`, every page) into abm-sync's copy.
public struct SyncABMInventory: RequestSchema, Equatable {
    public static let topic = "orchard.abm-requests.v1"
    public static let type = "abm.api.inventory.sync"
    public static let version = 1
    public var accountID: String
    public var actor: String
    public var key: String { accountID }
    public init(accountID: String, actor: String) {
        self.accountID = accountID
        self.actor = actor
    }
    public struct Reply: Codable, Sendable, Equatable {
        public var devices: Int
        public var pages: Int
        public var seconds: Double
        public var throttled: Int
        public init(devices: Int, pages: Int, seconds: Double, throttled: Int) {
            self.devices = devices
            self.pages = pages
            self.seconds = seconds
            self.throttled = throttled
        }
    }
}

/// One device of the organisation's inventory, as the API describes it.
public struct ABMOrgDeviceView: Codable, Sendable, Equatable {
    public var serialNumber: String
    public var model: String?
    public var productFamily: String?
    public var partNumber: String?
    public var orderNumber: String?
    public var purchaseSource: String?
    /// `ASSIGNED` (to some device management service) or `UNASSIGNED`.
    public var status: String?
    public var addedToOrg: String?
    public var updatedAt: Date
    public init(serialNumber: String, model: String?, productFamily: String?, partNumber: String?, orderNumber: String?,
                purchaseSource: String?, status: String?, addedToOrg: String?, updatedAt: Date) {
        self.serialNumber = serialNumber
        self.model = model
        self.productFamily = productFamily
        self.partNumber = partNumber
        self.orderNumber = orderNumber
        self.purchaseSource = purchaseSource
        self.status = status
        self.addedToOrg = addedToOrg
        self.updatedAt = updatedAt
    }
}

public struct ListABMInventory: RequestSchema, Equatable {
    public static let topic = "orchard.abm-requests.v1"
    public static let type = "abm.api.inventory.list"
    public static let version = 1
    public var accountID: String
    public var after: String
    public var limit: Int
    public var key: String { accountID }
    public init(accountID: String, after: String, limit: Int) {
        self.accountID = accountID
        self.after = after
        self.limit = limit
    }
    public struct Reply: Codable, Sendable, Equatable {
        public var items: [ABMOrgDeviceView]
        public init(items: [ABMOrgDeviceView]) { self.items = items }
    }
}

/// The organisation's device management services (`GET /v1/mdmServers`), read live.
public struct ListABMServers: RequestSchema, Equatable {
    public static let topic = "orchard.abm-requests.v1"
    public static let type = "abm.api.servers.list"
    public static let version = 1
    public var accountID: String
    public var key: String { accountID }
    public init(accountID: String) { self.accountID = accountID }
    public struct Server: Codable, Sendable, Equatable {
        public var id: String
        public var name: String?
        public var type: String?
        public init(id: String, name: String?, type: String?) {
            self.id = id
            self.name = name
            self.type = type
        }
    }
    public struct Reply: Codable, Sendable, Equatable {
        public var items: [Server]
        public init(items: [Server]) { self.items = items }
    }
}

/// Assigns (or unassigns) devices to a device management service in bulk (`POST /v1/orgDeviceActivities`), or, with
/// `activityID`, reads how that job went. Serials not in the inventory are not sent; each serial's outcome is answered.
public struct ABMAssignmentJob: RequestSchema, Equatable {
    public static let topic = "orchard.abm-requests.v1"
    public static let type = "abm.api.assignment"
    public static let version = 1
    public var accountID: String
    public var activityID: String?
    public var mdmServerID: String?
    public var serials: [String]
    public var unassign: Bool
    public var actor: String
    public var key: String { accountID }
    public init(accountID: String, activityID: String? = nil, mdmServerID: String? = nil, serials: [String] = [], unassign: Bool = false, actor: String) {
        self.accountID = accountID
        self.activityID = activityID
        self.mdmServerID = mdmServerID
        self.serials = serials
        self.unassign = unassign
        self.actor = actor
    }
    public struct Reply: Codable, Sendable, Equatable {
        public var activityIDs: [String]
        /// `IN_PROGRESS`, `COMPLETED`, `FAILED` or `STOPPED` (the last job's, when there were several of 1,000 devices).
        public var status: String
        public var subStatus: String?
        /// Serial → `SUBMITTED`, `NOT_IN_ORGANIZATION`, or the finished job's sub-status.
        public var outcomes: [String: String]
        public init(activityIDs: [String], status: String, subStatus: String?, outcomes: [String: String]) {
            self.activityIDs = activityIDs
            self.status = status
            self.subStatus = subStatus
            self.outcomes = outcomes
        }
    }
}
