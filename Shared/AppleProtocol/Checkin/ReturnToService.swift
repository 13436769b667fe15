/// `ReturnToService` (iOS, visionOS 26; supervised ADE devices): the device asks for its return-to-service configuration
/// when the user starts a return to service or its idle timeout expires, in the mode its ADE profile
/// (`is_return_to_service`) set. https://developer.apple.com/documentation/devicemanagement/returntoservicerequest
public struct ReturnToServiceCheckin: Sendable, Equatable {
    public var identity: EnrollmentIdentity
    init(_ r: PlistReader) throws { identity = try EnrollmentIdentity(r) }
}

/// The return-to-service configuration: the `ReturnToService` check-in's answer, and `EraseDevice`'s `ReturnToService`.
/// `MDMProfileData` is needed when the device's ADE profile uses `configuration_web_url` (it then installs this profile
/// instead of fetching one); `BootstrapToken` lets the device keep app data (without it, a full erasure).
public struct ReturnToServiceConfiguration: Sendable, Equatable {
    public var enabled: Bool
    public var wifiProfile: [UInt8]?
    public var mdmProfile: [UInt8]?
    public var bootstrapToken: [UInt8]?

    public init(enabled: Bool, wifiProfile: [UInt8]? = nil, mdmProfile: [UInt8]? = nil, bootstrapToken: [UInt8]? = nil) {
        self.enabled = enabled
        self.wifiProfile = wifiProfile
        self.mdmProfile = mdmProfile
        self.bootstrapToken = bootstrapToken
    }

    public var dictionary: PlistValue {
        var d: [String: PlistValue] = ["Enabled": .bool(enabled)]
        if let wifiProfile { d["WiFiProfileData"] = .data(wifiProfile) }
        if let mdmProfile { d["MDMProfileData"] = .data(mdmProfile) }
        if let bootstrapToken { d["BootstrapToken"] = .data(bootstrapToken) }
        return .dictionary(d)
    }

    /// The check-in's answer (`application/xml`): `{ReturnToService: {…}}`.
    public var answer: [UInt8] { Plist.xml(["ReturnToService": dictionary]) }
}
