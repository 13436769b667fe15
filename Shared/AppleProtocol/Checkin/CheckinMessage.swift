import Foundation
import OrchardCore

/// The identifiers every check-in and command message carries: the device channel's `UDID`, or a
/// user enrollment's `EnrollmentID`, plus the user-channel keys.
public struct EnrollmentIdentity: Sendable, Equatable {
    public var udid: String?
    public var enrollmentID: String?
    public var userID: String?
    /// macOS User Enrollment's user channel: the per-enrollment identifier of the user.
    public var enrollmentUserID: String?
    /// macOS user channel: the user's short and full names.
    public var userShortName: String?
    public var userLongName: String?

    /// The enrollment this message belongs to: UDID for device enrollments, EnrollmentID for user enrollments.
    public var enrollmentKey: String? { udid ?? enrollmentID }

    /// The user channel the message came on (macOS, Shared iPad), as the user's identifier: `EnrollmentUserID` in a User
    /// Enrollment, `UserID` otherwise; nil on the device channel. Apple: user requests carry these keys, device requests
    /// do not.
    public var userChannel: String? { enrollmentUserID ?? userID }

    init(_ r: PlistReader) throws {
        udid = try r.optionalString("UDID")
        enrollmentID = try r.optionalString("EnrollmentID")
        userID = try r.optionalString("UserID")
        enrollmentUserID = try r.optionalString("EnrollmentUserID")
        userShortName = try r.optionalString("UserShortName")
        userLongName = try r.optionalString("UserLongName")
        guard udid != nil || enrollmentID != nil else { throw PlistError("missing UDID or EnrollmentID") }
        // Each one present must be a well-formed identifier: an empty UDID enrolled a device no one could list.
        for (key, value) in [("UDID", udid), ("EnrollmentID", enrollmentID), ("EnrollmentUserID", enrollmentUserID), ("UserID", userID)] {
            if let value, !DeviceIdentifier.isValid(value) { throw PlistError("malformed \(key)") }
        }
        for (key, value) in [("UserShortName", userShortName), ("UserLongName", userLongName)] {
            if let value, value.utf8.count > 256 || value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
                throw PlistError("malformed \(key)")
            }
        }
    }
}

/// A check-in message (`PUT` to CheckInURL, `application/x-apple-aspen-mdm-checkin`), parsed once from
/// its plist by `MessageType`. https://developer.apple.com/documentation/devicemanagement/check-in
public enum CheckinMessage: Sendable, Equatable {
    case authenticate(Authenticate)
    case tokenUpdate(TokenUpdate)
    case checkOut(CheckOut)
    case setBootstrapToken(SetBootstrapToken)
    case getBootstrapToken(GetBootstrapToken)
    case declarativeManagement(DeclarativeManagementCheckin)
    case getToken(GetToken)
    case userAuthenticate(UserAuthenticate)
    case returnToService(ReturnToServiceCheckin)

    public static let contentType = "application/x-apple-aspen-mdm-checkin"

    public static func parse(_ body: [UInt8]) throws -> CheckinMessage {
        let r = PlistReader(try Plist.parseDictionary(body))
        let type = try r.string("MessageType")
        switch type {
        case "Authenticate": return .authenticate(try Authenticate(r))
        case "TokenUpdate": return .tokenUpdate(try TokenUpdate(r))
        case "CheckOut": return .checkOut(try CheckOut(r))
        case "SetBootstrapToken": return .setBootstrapToken(try SetBootstrapToken(r))
        case "GetBootstrapToken": return .getBootstrapToken(try GetBootstrapToken(r))
        case "DeclarativeManagement": return .declarativeManagement(try DeclarativeManagementCheckin(r))
        case "GetToken": return .getToken(try GetToken(r))
        case "UserAuthenticate": return .userAuthenticate(try UserAuthenticate(r))
        case "ReturnToService": return .returnToService(try ReturnToServiceCheckin(r))
        default: throw PlistError("unknown MessageType \(type.prefix(64))")
        }
    }

    public var identity: EnrollmentIdentity {
        switch self {
        case .authenticate(let m): return m.identity
        case .tokenUpdate(let m): return m.identity
        case .checkOut(let m): return m.identity
        case .setBootstrapToken(let m): return m.identity
        case .getBootstrapToken(let m): return m.identity
        case .declarativeManagement(let m): return m.identity
        case .getToken(let m): return m.identity
        case .userAuthenticate(let m): return m.identity
        case .returnToService(let m): return m.identity
        }
    }

    public var messageType: String {
        switch self {
        case .authenticate: return "Authenticate"
        case .tokenUpdate: return "TokenUpdate"
        case .checkOut: return "CheckOut"
        case .setBootstrapToken: return "SetBootstrapToken"
        case .getBootstrapToken: return "GetBootstrapToken"
        case .declarativeManagement: return "DeclarativeManagement"
        case .getToken: return "GetToken"
        case .userAuthenticate: return "UserAuthenticate"
        case .returnToService: return "ReturnToService"
        }
    }
}
