import Foundation
import OrchardMessaging

/// What happened to an enrollment, on `orchard.device-events.v1` (keyed by enrollment id, so one
/// device's events stay in order). The `type` header says which fact it is.
public struct DeviceEvent: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case authenticated, enrolled, tokenUpdated = "token-updated", informationUpdated = "information-updated"
        case checkedOut = "checked-out", unenrolled, commandCompleted = "command-completed"
        case declarationStatusReported = "declaration-status-reported"
        /// An ADE device moved on: `details["state"]` is `profile pushed`, `enrolled`, `setting up`, `released` or `failed`.
        case adeState = "ade-state"
    }

    public var kind: Kind
    public var enrollmentID: String
    public var occurredAt: Date
    /// Facts of the event: serial, model, command UUID and status…; never secrets.
    public var details: [String: String]

    public init(kind: Kind, enrollmentID: String, details: [String: String] = [:], occurredAt: Date = Date()) {
        self.kind = kind
        self.enrollmentID = enrollmentID
        self.details = details
        self.occurredAt = occurredAt
    }
}

extension DeviceEvent: DirectJSONEncodable {
    public func jsonText() -> String {
        var w = JSONObjectWriter()
        w.string("kind", kind.rawValue)
        w.string("enrollmentID", enrollmentID)
        w.date("occurredAt", occurredAt)
        w.stringMap("details", details)
        return w.text()
    }
}

extension DeviceEvent: MessageSchema {
    public static let topic = "orchard.device-events.v1"
    public static let type = "device.event"
    public static let version = 1
    public var key: String { enrollmentID }
}

/// Enqueues an MDM command for one or more enrollments (`orchard.mdm-commands.v1`). Idempotent on
/// `commandUUID`: a redelivered request queues nothing twice.
public struct EnqueueCommand: MessageSchema, Equatable {
    public static let topic = "orchard.mdm-commands.v1"
    public static let type = "mdm-command.enqueue"
    public static let version = 1

    public var commandUUID: String
    public var enrollmentIDs: [String]
    /// The full command plist (`CommandUUID` + `Command`).
    public var commandPlist: Data
    /// Who asked: `service:abm-sync`, `admin:<key>`…
    public var requestedBy: String

    public var key: String { enrollmentIDs.first ?? commandUUID }

    public init(commandUUID: String, enrollmentIDs: [String], commandPlist: Data, requestedBy: String) {
        self.commandUUID = commandUUID
        self.enrollmentIDs = enrollmentIDs
        self.commandPlist = commandPlist
        self.requestedBy = requestedBy
    }
}
