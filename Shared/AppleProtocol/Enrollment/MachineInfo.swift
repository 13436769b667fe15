import OrchardCore

/// What a device sends when it asks for an enrollment profile (ADE `url`, Apple Watch
/// `EnrollmentProfileURL`): a plist CMS-signed by the device's Apple-issued identity.
/// https://developer.apple.com/documentation/devicemanagement/machineinfo
public struct MachineInfo: Sendable, Equatable {
    public var udid: String
    public var serial: String
    public var product: String
    public var version: String
    public var osVersion: String
    public var language: String?
    /// watchOS only: the pairing token the watch got from its iPhone.
    public var pairingToken: [UInt8]?
    /// `MDM_CAN_REQUEST_SOFTWARE_UPDATE` (iOS 17, macOS 14): the server may answer `com.apple.softwareupdate.required`.
    public var canRequestSoftwareUpdate: Bool = false
    /// `MDM_CAN_REQUEST_PSSO_CONFIG` (macOS 26): the server may answer `com.apple.psso.required` (Platform SSO first).
    public var canRequestPlatformSSO: Bool = false

    /// Parses the (already signature-checked) plist.
    public static func parse(_ bytes: [UInt8]) throws -> MachineInfo {
        let r = PlistReader(try Plist.parseDictionary(bytes))
        let info = MachineInfo(udid: try r.string("UDID"), serial: try r.string("SERIAL"), product: try r.string("PRODUCT"),
                               // OS_VERSION came with iOS 17 and macOS 14: an older device sends none.
                               version: try r.string("VERSION"), osVersion: try r.optionalString("OS_VERSION") ?? "",
                               language: try r.optionalString("LANGUAGE"), pairingToken: try r.optionalData("PAIRING_TOKEN"),
                               canRequestSoftwareUpdate: try r.optionalBool("MDM_CAN_REQUEST_SOFTWARE_UPDATE") ?? false)
        guard DeviceIdentifier.isValid(info.udid) else { throw PlistError("malformed UDID") }
        var withPSSO = info
        withPSSO.canRequestPlatformSSO = try r.optionalBool("MDM_CAN_REQUEST_PSSO_CONFIG") ?? false
        return withPSSO
    }

    public init(udid: String, serial: String, product: String, version: String, osVersion: String,
                language: String? = nil, pairingToken: [UInt8]? = nil, canRequestSoftwareUpdate: Bool = false) {
        self.udid = udid
        self.serial = serial
        self.product = product
        self.version = version
        self.osVersion = osVersion
        self.language = language
        self.pairingToken = pairingToken
        self.canRequestSoftwareUpdate = canRequestSoftwareUpdate
    }

    public var plist: [UInt8] {
        var d: [String: PlistValue] = ["UDID": .string(udid), "SERIAL": .string(serial), "PRODUCT": .string(product),
                                       "VERSION": .string(version)]
        if !osVersion.isEmpty { d["OS_VERSION"] = .string(osVersion) }
        if let language { d["LANGUAGE"] = .string(language) }
        if let pairingToken { d["PAIRING_TOKEN"] = .data(pairingToken) }
        if canRequestSoftwareUpdate { d["MDM_CAN_REQUEST_SOFTWARE_UPDATE"] = .bool(true) }
        if canRequestPlatformSSO { d["MDM_CAN_REQUEST_PSSO_CONFIG"] = .bool(true) }
        return Plist.xml(d)
    }
}
