import Foundation
import OrchardMessaging

/// One ADE profile as the admin API shows it: Apple's profile JSON (REFERENCE §4.5) as Orchard defined it
/// with ABM, the `profile_uuid` ABM gave it, and Orchard's own settings for devices enrolling with it.
public struct ADEProfileView: Codable, Sendable, Equatable {
    public var id: String
    public var tokenID: String
    public var name: String
    /// ABM's identifier for the profile (`profile_uuid`).
    public var profileUUID: String
    /// The JSON sent to ABM's `POST /profile` (with `url` and `configuration_web_url` filled in).
    public var profile: String
    /// The minimum OS per platform (`iOS`, `macOS`) below which the device is asked to update first.
    public var minimumOS: [String: String]
    /// New devices of the token get this profile.
    public var isDefault: Bool
    public var definedAt: Date
    /// Devices must sign in on the gateway's page (`configuration_web_url`); its `url` serves them no profile.
    public var requiresSignIn: Bool?
    /// In the answer to a definition only: what was taken but deserves a look (a skip key Orchard does not know yet,
    /// a key only ABM fills, ignored).
    public var warnings: [String]?

    public init(id: String, tokenID: String, name: String, profileUUID: String, profile: String, minimumOS: [String: String],
                isDefault: Bool, definedAt: Date, requiresSignIn: Bool? = nil, warnings: [String]? = nil) {
        self.id = id
        self.tokenID = tokenID
        self.name = name
        self.profileUUID = profileUUID
        self.profile = profile
        self.minimumOS = minimumOS
        self.isDefault = isDefault
        self.definedAt = definedAt
        self.requiresSignIn = requiresSignIn
        self.warnings = warnings
    }
}

/// Defines an ADE profile with ABM for one server token, after validating it as ABM would (a profile ABM
/// would refuse with `FLAGS_INVALID`, a malformed skip key, a bad URL or certificate is refused here first).
public struct DefineADEProfile: RequestSchema, Equatable {
    public static let topic = "orchard.abm-requests.v1"
    public static let type = "abm.profile.define"
    public static let version = 1

    public var tokenID: String
    /// Apple's profile JSON object.
    public var profile: Data
    public var minimumOS: [String: String]
    public var makeDefault: Bool
    /// Orchard's ADE enrollment endpoint: `url` and `configuration_web_url` when the profile gives none.
    public var enrollmentURL: String
    public var actor: String
    /// The profile's `configuration_web_url` is the gateway's sign-in page: only a sign-in hands out the profile.
    public var requiresSignIn: Bool?
    public var key: String { tokenID }

    public init(tokenID: String, profile: Data, minimumOS: [String: String], makeDefault: Bool, enrollmentURL: String, actor: String,
                requiresSignIn: Bool? = nil) {
        self.tokenID = tokenID
        self.profile = profile
        self.minimumOS = minimumOS
        self.makeDefault = makeDefault
        self.enrollmentURL = enrollmentURL
        self.actor = actor
        self.requiresSignIn = requiresSignIn
    }

    public typealias Reply = ADEProfileView
}

/// Every ADE profile, newest first.
public struct ListADEProfiles: RequestSchema, Equatable {
    public static let topic = "orchard.abm-requests.v1"
    public static let type = "abm.profile.list"
    public static let version = 1
    public var key: String { "profiles" }
    public init() {}

    public struct Reply: Codable, Sendable, Equatable {
        public var items: [ADEProfileView]
        public init(items: [ADEProfileView]) { self.items = items }
    }
}

/// Makes a profile its token's default (new and re-released devices get it) and assigns it where due.
public struct SetDefaultADEProfile: RequestSchema, Equatable {
    public static let topic = "orchard.abm-requests.v1"
    public static let type = "abm.profile.default"
    public static let version = 1
    public var profileID: String
    public var actor: String
    public var key: String { profileID }
    public init(profileID: String, actor: String) {
        self.profileID = profileID
        self.actor = actor
    }
    public typealias Reply = AssignADEProfile.Reply
}

/// Assigns a profile to chosen serials (ABM's `POST /profile/devices`, at most 1,000 per call).
public struct AssignADEProfile: RequestSchema, Equatable {
    public static let topic = "orchard.abm-requests.v1"
    public static let type = "abm.profile.assign"
    public static let version = 1
    public var profileID: String
    public var serials: [String]
    public var actor: String
    public var key: String { profileID }
    public init(profileID: String, serials: [String], actor: String) {
        self.profileID = profileID
        self.serials = serials
        self.actor = actor
    }

    public struct Reply: Codable, Sendable, Equatable {
        /// Per serial: ABM's `SUCCESS`, `NOT_ACCESSIBLE`, `FAILED` or `THROTTLED`, or Orchard's `NOT_IN_MIRROR`
        /// (not a device of this token: not sent).
        public var outcomes: [String: String]
        public var batches: Int
        public init(outcomes: [String: String], batches: Int) {
            self.outcomes = outcomes
            self.batches = batches
        }
    }
}

/// One device of the mirror with its assignment state, for the admin API.
public struct ABMDeviceView: Codable, Sendable, Equatable {
    public var tokenID: String
    public var serialNumber: String
    public var model: String?
    public var os: String?
    public var deviceFamily: String?
    public var color: String?
    public var assetTag: String?
    public var description: String?
    public var profileStatus: String?
    public var profileUUID: String?
    public var deviceAssignedDate: String?
    public var deviceAssignedBy: String?
    /// `unassigned`, `assigned`, `failed`, `throttled` or `not-accessible`: Orchard's last assignment.
    public var assignment: String
    public var lastOutcome: String?
    public var retryAfter: Date?
    public var released: Bool
    /// Migrating to this server from another MDM server: the deadline ABM set (`mdm_migration_deadline`).
    public var migrationDeadline: Date?

    public init(tokenID: String, serialNumber: String, model: String?, os: String?, deviceFamily: String?, color: String?,
                assetTag: String?, description: String?, profileStatus: String?, profileUUID: String?, deviceAssignedDate: String?,
                deviceAssignedBy: String?, assignment: String, lastOutcome: String?, retryAfter: Date?, released: Bool,
                migrationDeadline: Date? = nil) {
        self.tokenID = tokenID
        self.serialNumber = serialNumber
        self.model = model
        self.os = os
        self.deviceFamily = deviceFamily
        self.color = color
        self.assetTag = assetTag
        self.description = description
        self.profileStatus = profileStatus
        self.profileUUID = profileUUID
        self.deviceAssignedDate = deviceAssignedDate
        self.deviceAssignedBy = deviceAssignedBy
        self.assignment = assignment
        self.lastOutcome = lastOutcome
        self.retryAfter = retryAfter
        self.released = released
        self.migrationDeadline = migrationDeadline
    }
}

/// The mirror's devices, by token and serial, a page at a time.
public struct ListABMDevices: RequestSchema, Equatable {
    public static let topic = "orchard.abm-requests.v1"
    public static let type = "abm.device.list"
    public static let version = 1
    public var tokenID: String?
    public var after: String
    public var limit: Int
    public var key: String { tokenID ?? "devices" }
    public init(tokenID: String?, after: String, limit: Int) {
        self.tokenID = tokenID
        self.after = after
        self.limit = limit
    }
    public struct Reply: Codable, Sendable, Equatable {
        public var items: [ABMDeviceView]
        public init(items: [ABMDeviceView]) { self.items = items }
    }
}

/// Asks ABM about chosen serials (`POST /devices`, "check with ABM") or releases them from the organisation
/// (`POST /devices/disown`); answers ABM's per-serial details or outcome as JSON text.
public struct ABMDeviceAction: RequestSchema, Equatable {
    public static let topic = "orchard.abm-requests.v1"
    public static let type = "abm.device.action"
    public static let version = 1
    /// `removeProfile`: ABM's `DELETE /profile/devices`; the device is then left without a profile (the token's
    /// default is not assigned to it again) until an administrator assigns one.
    /// `activationLock`: ABM's `POST /device/activationlock` for each serial, with its escrow key (`escrowKeys`).
    public enum Action: String, Codable, Sendable { case check, disown, removeProfile, activationLock }
    public var tokenID: String
    public var action: Action
    public var serials: [String]
    public var actor: String
    /// `activationLock`: serial → the hex escrow key of its bypass code.
    public var escrowKeys: [String: String]?
    /// `activationLock`: the message the locked device shows.
    public var lostMessage: String?
    public var key: String { tokenID }
    public init(tokenID: String, action: Action, serials: [String], actor: String, escrowKeys: [String: String]? = nil, lostMessage: String? = nil) {
        self.escrowKeys = escrowKeys
        self.lostMessage = lostMessage
        self.tokenID = tokenID
        self.action = action
        self.serials = serials
        self.actor = actor
    }
    public struct Reply: Codable, Sendable, Equatable {
        /// ABM's `devices` object, per serial.
        public var devices: String
        public init(devices: String) { self.devices = devices }
    }
}

/// An ADE profile defined with ABM, on `orchard.abm-profiles.v1` (keyed by ABM's `profile_uuid`): the
/// gateway keeps what it needs to enroll devices with it (anchors, removability, release, minimum OS)
/// so that it enrolls while abm-sync is down.
public struct ADEProfileEvent: MessageSchema, Codable, Sendable, Equatable {
    public static let topic = "orchard.abm-profiles.v1"
    public static let type = "abm.profile"
    public static let version = 1

    public var profileID: String
    public var tokenID: String
    public var profileUUID: String
    public var name: String
    public var isSupervised: Bool
    public var isMdmRemovable: Bool
    public var awaitDeviceConfigured: Bool
    /// `anchor_certs`, DER: the profile's server trust.
    public var anchorCertificates: [Data]
    public var minimumOS: [String: String]
    /// Devices must sign in on the gateway's page before they get their profile (absent: no).
    public var requiresSignIn: Bool?
    public var key: String { profileUUID }

    public init(profileID: String, tokenID: String, profileUUID: String, name: String, isSupervised: Bool, isMdmRemovable: Bool,
                awaitDeviceConfigured: Bool, anchorCertificates: [Data], minimumOS: [String: String], requiresSignIn: Bool? = nil) {
        self.profileID = profileID
        self.tokenID = tokenID
        self.profileUUID = profileUUID
        self.name = name
        self.isSupervised = isSupervised
        self.isMdmRemovable = isMdmRemovable
        self.awaitDeviceConfigured = awaitDeviceConfigured
        self.anchorCertificates = anchorCertificates
        self.minimumOS = minimumOS
        self.requiresSignIn = requiresSignIn
    }
}
