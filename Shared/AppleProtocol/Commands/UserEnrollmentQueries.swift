/// The DeviceInformation queries Apple's schema forbids asking a User Enrollment (`userenrollment: mode: forbidden` per
/// OS in mdm/commands/information.device.yaml; AppleProtocolTests reads the schema and checks this table against it).
public enum UserEnrollmentQueries {
    public static let forbidden: [String: Set<String>] = [
        "iOS": [
            "UDID", "LastCloudBackupDate", "AwaitingConfiguration", "iTunesStoreAccountIsActive",
            "iTunesStoreAccountHash", "SerialNumber", "IMEI", "MEID", "ModemFirmwareVersion",
            "IsActivationLockEnabled", "IsDoNotDisturbInEffect", "IsCloudBackupEnabled", "IsMDMLostModeEnabled",
            "MaximumResidentUsers", "EstimatedResidentUsers", "QuotaSize", "ResidentUsers", "UserSessionTimeout",
            "TemporarySessionTimeout", "TemporarySessionOnly", "ManagedAppleIDDefaultDomains",
            "OnlineAuthenticationGracePeriod", "SkipLanguageAndLocaleSetupForNewUsers", "PushToken", "ICCID",
            "BluetoothMAC", "WiFiMAC", "CurrentCarrierNetwork", "SIMCarrierNetwork", "SubscriberCarrierNetwork",
            "CarrierSettingsVersion", "PhoneNumber", "DataRoamingEnabled", "VoiceRoamingEnabled",
            "PersonalHotspotEnabled", "IsRoaming", "SubscriberMCC", "SubscriberMNC", "CurrentMCC", "CurrentMNC",
            "ServiceSubscriptions", "SoftwareUpdateDeviceID", "SoftwareUpdateSettings", "AccessibilitySettings",
        ],
        "macOS": [
            "UDID", "ProvisioningUDID", "AwaitingConfiguration", "iTunesStoreAccountIsActive",
            "iTunesStoreAccountHash", "SerialNumber", "IsActivationLockEnabled", "IsActivationLockSupported",
            "OSUpdateSettings", "AutoSetupAdminAccounts", "BluetoothMAC", "WiFiMAC", "EthernetMAC",
            "PINRequiredForEraseDevice", "PINRequiredForDeviceLock", "SoftwareUpdateDeviceID", "EACSPreflight",
        ],
        "visionOS": [
            "UDID", "LastCloudBackupDate", "AwaitingConfiguration", "SerialNumber", "IsDoNotDisturbInEffect",
            "IsCloudBackupEnabled", "BluetoothMAC", "WiFiMAC", "SoftwareUpdateDeviceID",
        ],
    ]

    /// The OS of a User Enrollment from its ProductName (nil when unknown: then every OS's rule applies).
    public static func os(productName: String?) -> String? {
        guard let product = productName else { return nil }
        if product.hasPrefix("iPhone") || product.hasPrefix("iPad") || product.hasPrefix("iPod") { return "iOS" }
        if product.hasPrefix("Mac") || product.hasPrefix("iMac") { return "macOS" }
        if product.hasPrefix("RealityDevice") { return "visionOS" }
        return nil
    }

    /// The queries of `queries` Apple forbids for a User Enrollment on `os` (on any OS when `os` is nil), in order.
    public static func refused(_ queries: [String], os: String?) -> [String] {
        let rule = os.flatMap { forbidden[$0] } ?? forbidden.values.reduce(into: Set<String>()) { $0.formUnion($1) }
        return queries.filter { rule.contains($0) }
    }
}
