/// The answer to DeviceInformation: `QueryResponses`, read once into the fields Orchard keeps. Keys the
/// device did not send, or sent with another type, are nil (a device answers only what it was asked and
/// may support).
/// https://developer.apple.com/documentation/devicemanagement/deviceinformationresponse
public struct DeviceInformationResult: Sendable, Equatable {
    public var serialNumber: String?
    public var osVersion: String?
    public var buildVersion: String?
    public var productName: String?
    /// `Model`, or `ModelName` where a device sends only that.
    public var model: String?
    public var deviceName: String?
    public var isSupervised: Bool?

    /// Nil when the result carries no `QueryResponses` dictionary.
    public init?(_ result: CommandResult) {
        guard let answers = result.values["QueryResponses"]?.dictionary else { return nil }
        serialNumber = answers["SerialNumber"]?.string
        osVersion = answers["OSVersion"]?.string
        buildVersion = answers["BuildVersion"]?.string
        productName = answers["ProductName"]?.string
        model = answers["Model"]?.string ?? answers["ModelName"]?.string
        deviceName = answers["DeviceName"]?.string
        isSupervised = answers["IsSupervised"]?.bool
    }
}
