import Foundation

/// The JSON error documents a device understands in a 403 body (`{code, description?, message?, details?}`).
/// Sent as `application/json` without parameters: one client build matches the media type exactly.
public struct ErrorDocument: Sendable, Equatable {
    public var code: String
    public var description: String?
    public var details: [String: String]
    /// Shown to the user where the device can (`message`); `description` is for logs only.
    public var message: String?

    public init(code: String, description: String?, details: [String: String], message: String? = nil) {
        self.code = code
        self.description = description
        self.details = details
        self.message = message
    }

    /// An ADE device must update its OS before it may enroll (only when its MachineInfo said
    /// `MDM_CAN_REQUEST_SOFTWARE_UPDATE`); `details` must carry `OSVersion`.
    public static func softwareUpdateRequired(osVersion: String, buildVersion: String? = nil) -> ErrorDocument {
        var details = ["OSVersion": osVersion]
        if let buildVersion { details["BuildVersion"] = buildVersion }
        return ErrorDocument(code: "com.apple.softwareupdate.required", description: "OS \(osVersion) or later is required to enroll",
                             details: details, message: "Update to \(osVersion) or later to continue setting up this device.")
    }

    /// The watch asked to enroll without a pairing token; it takes the security token to its iPhone.
    public static func pairingTokenMissing(securityToken: String) -> ErrorDocument {
        ErrorDocument(code: "com.apple.watch.pairing.token.missing", description: "pairing token required",
                      details: ["security-token": securityToken])
    }

    /// Makes the device unenroll (iOS 17, macOS 14, watchOS 10 and later).
    public static func unrecognizedDevice(_ description: String) -> ErrorDocument {
        ErrorDocument(code: "com.apple.unrecognized.device", description: description, details: [:])
    }

    public var json: [UInt8] {
        var object: [String: Any] = ["code": code]
        if let description { object["description"] = description }
        if let message { object["message"] = message }
        if !details.isEmpty || code == "com.apple.watch.pairing.token.missing" || code == "com.apple.softwareupdate.required" {
            object["details"] = details
        }
        return Array(try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
    }
}
