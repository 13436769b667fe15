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
