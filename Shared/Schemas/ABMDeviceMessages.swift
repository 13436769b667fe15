import Foundation
import OrchardMessaging

/// A change to the mirror of devices ABM assigns to one of Orchard's server tokens, on
/// `orchard.abm-device-events.v1` (keyed by serial number, so one device's changes stay in order). Published
/// through abm-sync's outbox in the transaction that records the change, with the page's cursor.
public struct ABMDeviceEvent: MessageSchema, Codable, Sendable, Equatable {
    public static let topic = "orchard.abm-device-events.v1"
    public static let type = "abm.device"
    public static let version = 1

    public enum Change: String, Codable, Sendable { case added, modified, deleted }

    public var tokenID: String
    public var serialNumber: String
    public var change: Change
    public var model: String?
    public var os: String?
    public var deviceFamily: String?
    public var profileStatus: String?
    public var profileUUID: String?
    public var opDate: Date?
    /// Migrating to this server from another MDM server: ABM's `mdm_migration_deadline` (every event carries the current
    /// value; nil: not migrating).
    public var migrationDeadline: Date?

    public var key: String { serialNumber }

    public init(tokenID: String, serialNumber: String, change: Change, model: String?, os: String?, deviceFamily: String?,
                profileStatus: String?, profileUUID: String?, opDate: Date?, migrationDeadline: Date? = nil) {
        self.migrationDeadline = migrationDeadline
        self.tokenID = tokenID
        self.serialNumber = serialNumber
        self.change = change
        self.model = model
        self.os = os
        self.deviceFamily = deviceFamily
        self.profileStatus = profileStatus
        self.profileUUID = profileUUID
        self.opDate = opDate
    }
}

/// Syncs one server token's devices now (a fetch first, deltas after), as the hourly schedule does.
public struct SyncABMToken: RequestSchema, Equatable {
    public static let topic = "orchard.abm-requests.v1"
    public static let type = "abm.token.sync"
    public static let version = 1

    public var id: String
    public var actor: String
    /// Start again with a full fetch, diffed against the mirror (devices the sync feed never showed appear).
    public var fullFetch: Bool
    public var key: String { id }

    public init(id: String, actor: String, fullFetch: Bool = false) {
        self.id = id
        self.actor = actor
        self.fullFetch = fullFetch
    }

    public struct Reply: Codable, Sendable, Equatable {
        /// `fetch` or `sync`: what the cycle ended on.
        public var mode: String
        public var pages: Int
        public var added: Int
        public var modified: Int
        public var deleted: Int
        /// ABM answered the cursor it was given with more_to_follow: the cycle ended there.
        public var cursorEchoed: Bool
        public var devices: Int
        /// Devices assigned a profile after the sync (their token's default, or one chosen for them).
        public var assigned: Int?
        /// Why assigning after the sync failed, if it did (the next sync retries).
        public var assignmentError: String?

        public init(mode: String, pages: Int, added: Int, modified: Int, deleted: Int, cursorEchoed: Bool, devices: Int,
                    assigned: Int? = nil, assignmentError: String? = nil) {
            self.mode = mode
            self.pages = pages
            self.added = added
            self.modified = modified
            self.deleted = deleted
            self.cursorEchoed = cursorEchoed
            self.devices = devices
            self.assigned = assigned
            self.assignmentError = assignmentError
        }
    }
}

/// When Apple last pushed a device its ADE profile (`profile_push_time` of ABM's `POST /devices` for the serial). Apple
/// pushes the profile to a device that runs Setup Assistant; a captured MachineInfo sent again moves nothing there. The
/// gateway asks before it issues a second identity for an enrolled serial (docs/decisions.md, "ADE re-enrollment").
/// A refusal with status 503 when ABM does not answer (the device retries).
public struct ConfirmADEProfilePush: RequestSchema, Equatable {
    public static let topic = "orchard.abm-requests.v1"
    public static let type = "abm.device.profile-push"
    public static let version = 1

    public var serialNumber: String
    public var key: String { serialNumber }

    public init(serialNumber: String) { self.serialNumber = serialNumber }

    public struct Reply: Codable, Sendable, Equatable {
        public var tokenID: String
        /// ABM's `profile_push_time`; nil when ABM shows none.
        public var profilePushTime: Date?
        public var profileStatus: String?

        public init(tokenID: String, profilePushTime: Date?, profileStatus: String?) {
            self.tokenID = tokenID
            self.profilePushTime = profilePushTime
            self.profileStatus = profileStatus
        }
    }
}
