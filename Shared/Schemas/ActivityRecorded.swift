import Foundation
import OrchardCore
import OrchardMessaging

/// One entry of the audit trail: who did what to which devices, when, and how it ended.
public struct ActivityRecorded: MessageSchema, Equatable {
    public static let topic = "orchard.activity.v1"
    public static let type = "activity.recorded"
    public static let version = 1

    public enum Outcome: String, Codable, Sendable { case succeeded, refused, failed }

    public var id: String
    public var occurredAt: Date
    /// The acting party: `admin:<key name>`, `device:<udid>`, `service:<name>`.
    public var actor: String
    /// What happened, for example `security-token.issued`.
    public var action: String
    public var deviceID: String?
    public var relatedDeviceIDs: [String]
    public var outcome: Outcome
    /// A human-readable reason or detail; never a secret or token.
    public var detail: String?
    public var service: String

    public var key: String { deviceID ?? actor }

    public init(actor: String, action: String, deviceID: String?, relatedDeviceIDs: [String] = [],
                outcome: Outcome, detail: String? = nil, service: String,
                id: String = RandomUUID.lowercased(), occurredAt: Date = Date()) {
        self.id = id
        self.occurredAt = occurredAt
        self.actor = actor
        self.action = action
        self.deviceID = deviceID
        self.relatedDeviceIDs = relatedDeviceIDs
        self.outcome = outcome
        self.detail = detail
        self.service = service
    }
}

extension ActivityRecorded: DirectJSONEncodable {
    public func jsonText() -> String {
        var w = JSONObjectWriter()
        w.string("id", id)
        w.date("occurredAt", occurredAt)
        w.string("actor", actor)
        w.string("action", action)
        w.string("deviceID", deviceID)
        w.strings("relatedDeviceIDs", relatedDeviceIDs)
        w.string("outcome", outcome.rawValue)
        w.string("detail", detail)
        w.string("service", service)
        return w.text()
    }
}
