/// Sent first, while the MDM payload installs. The device is not enrolled until its first TokenUpdate.
/// https://developer.apple.com/documentation/devicemanagement/authenticate
public struct Authenticate: Sendable, Equatable {
    public var identity: EnrollmentIdentity
    public var topic: String
    public var osVersion: String?
    public var buildVersion: String?
    public var productName: String?
    public var serialNumber: String?
    public var deviceName: String?
    public var model: String?
    public var imei: String?

    init(_ r: PlistReader) throws {
        identity = try EnrollmentIdentity(r)
        topic = try r.string("Topic")
        osVersion = try r.optionalString("OSVersion")
        buildVersion = try r.optionalString("BuildVersion")
        productName = try r.optionalString("ProductName")
        serialNumber = try r.optionalString("SerialNumber")
        deviceName = try r.optionalString("DeviceName")
        model = try r.optionalString("Model")
        imei = try r.optionalString("IMEI")
    }
}

/// Push credentials, sent after installation and whenever they change.
/// https://developer.apple.com/documentation/devicemanagement/token-update
public struct TokenUpdate: Sendable, Equatable {
    public var identity: EnrollmentIdentity
    public var topic: String
    public var token: [UInt8]
    public var pushMagic: String
    public var unlockToken: [UInt8]?
    public var awaitingConfiguration: Bool

    init(_ r: PlistReader) throws {
        identity = try EnrollmentIdentity(r)
        topic = try r.string("Topic")
        token = try r.data("Token")
        guard !token.isEmpty, token.count <= 256 else { throw PlistError("Token has an invalid length") }
        pushMagic = try r.string("PushMagic")
        unlockToken = try r.optionalData("UnlockToken")
        awaitingConfiguration = try r.optionalBool("AwaitingConfiguration") ?? false
    }
}

/// Sent when the MDM profile is removed (best effort).
public struct CheckOut: Sendable, Equatable {
    public var identity: EnrollmentIdentity
    public var topic: String

    init(_ r: PlistReader) throws {
        identity = try EnrollmentIdentity(r)
        topic = try r.string("Topic")
    }
}

/// Escrows (or, when empty, deletes) the bootstrap token. macOS.
public struct SetBootstrapToken: Sendable, Equatable {
    public var identity: EnrollmentIdentity
    public var bootstrapToken: [UInt8]?
    public var awaitingConfiguration: Bool

    init(_ r: PlistReader) throws {
        identity = try EnrollmentIdentity(r)
        bootstrapToken = try r.optionalData("BootstrapToken")
        awaitingConfiguration = try r.optionalBool("AwaitingConfiguration") ?? false
    }
}

/// Asks for the escrowed bootstrap token.
public struct GetBootstrapToken: Sendable, Equatable {
    public var identity: EnrollmentIdentity
    init(_ r: PlistReader) throws { identity = try EnrollmentIdentity(r) }
}

/// A declarative-management request carried over check-in.
public struct DeclarativeManagementCheckin: Sendable, Equatable {
    public var identity: EnrollmentIdentity
    public var endpoint: String
    public var data: [UInt8]?

    init(_ r: PlistReader) throws {
        identity = try EnrollmentIdentity(r)
        endpoint = try r.string("Endpoint")
        data = try r.optionalData("Data")
    }
}

/// Asks the server for a token of a service type (iOS 17+). The iPhone sends `com.apple.watch.pairing`
/// while a watch enrolls. https://developer.apple.com/documentation/devicemanagement/get-token
public struct GetToken: Sendable, Equatable {
    public static let watchPairing = "com.apple.watch.pairing"
    public static let managedAppleID = "com.apple.maid"

    public var identity: EnrollmentIdentity
    public var tokenServiceType: String
    public var securityToken: String?
    public var phoneUDID: String?
    public var watchUDID: String?

    init(_ r: PlistReader) throws {
        identity = try EnrollmentIdentity(r)
        tokenServiceType = try r.string("TokenServiceType")
        let parameters = PlistReader(try r.optionalDictionary("TokenParameters") ?? [:])
        securityToken = try parameters.optionalString("SecurityToken")
        phoneUDID = try parameters.optionalString("PhoneUDID")
        watchUDID = try parameters.optionalString("WatchUDID")
    }

    /// The response body: `{TokenData: <data>}`.
    public static func response(tokenData: [UInt8]) -> [UInt8] {
        Plist.xml(["TokenData": .data(tokenData)])
    }
}

/// macOS user-channel authentication; Orchard declines it (HTTP 410).
public struct UserAuthenticate: Sendable, Equatable {
    public var identity: EnrollmentIdentity
    init(_ r: PlistReader) throws { identity = try EnrollmentIdentity(r) }
}
