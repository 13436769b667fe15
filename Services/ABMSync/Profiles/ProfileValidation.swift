import Foundation
import OrchardCore
import OrchardCrypto
import OrchardMessaging

/// Checks an ADE profile (REFERENCE §4.5) as ABM would, before anything reaches Apple: every key known and of
/// its type, the flag combinations ABM answers `FLAGS_INVALID` for, skip keys from Apple's list, URLs and
/// certificates that parse. Fills `url` and `configuration_web_url` with Orchard's enrollment endpoint when
/// the profile gives none (both the same: the device then GETs with `x-apple-aspen-deviceinfo`, §4.7).
enum ProfileValidation {
    struct Checked: Sendable {
        /// The JSON for ABM's `POST /profile` (without `devices`, which Orchard assigns itself).
        let json: [UInt8]
        let name: String
        let isSupervised: Bool
        let isMdmRemovable: Bool
        let awaitDeviceConfigured: Bool
        let anchors: [Data]
        /// Serials the profile listed: assigned after it is defined.
        let devices: [String]
        /// What was taken but deserves a look (a skip key Orchard does not know, a key only ABM fills): in the
        /// answer and the activity log.
        let warnings: [String]
    }

    /// Apple's skip keys (../shared/apple-schemas/other/skipkeys.yaml; a test compares this list with it). Apple adds
    /// keys every year and ABM takes them before this list knows them: an unknown but well-formed key is sent to
    /// ABM with a warning (ABM has the last word), never refused here.
    static let skipKeys: Set<String> = [
        "Accessibility", "ActionButton", "AdditionalPrivacySettings", "Android", "AppStore", "Appearance", "AppleID", "Biometric",
        "CameraButton", "DeviceToDeviceMigration", "Diagnostics", "DisplayTone", "EnableLockdownMode", "FileVault",
        "HomeButtonSensitivity", "Intelligence", "Keyboard", "Location", "MessagingActivationUsingPhoneNumber", "Multitasking",
        "OSShowcase", "OnBoarding", "Passcode", "Payment", "Privacy", "Restore", "RestoreCompleted", "SIMSetup", "Safety",
        "SafetyAndHandling", "ScreenSaver", "ScreenTime", "Siri", "SoftwareUpdate", "SpokenLanguage", "TOS", "TVHomeScreenSync",
        "TVProviderSignIn", "TVRoom", "TapToSetup", "TermsOfAddress", "Tips", "UnlockWithWatch", "UpdateCompleted", "Wallpaper",
        "WatchMigration", "WebContentFiltering", "Welcome", "Zoom", "iCloudDiagnostics", "iCloudStorage", "iMessageAndFaceTime",
    ]

    /// Keys only ABM fills (in what `GET /profile` answers): a profile copied from there is taken, without them.
    static let abmFilledKeys: Set<String> = ["profile_uuid"]

    private enum Kind { case string(max: Int), bool, url, strings(max: Int), certificates }

    /// Every key of Apple's profile JSON and its type.
    private static let keys: [String: Kind] = [
        "profile_name": .string(max: 255), "url": .url, "configuration_web_url": .url, "allow_pairing": .bool,
        "anchor_certs": .certificates, "supervising_host_certs": .certificates, "auto_advance_setup": .bool,
        "await_device_configured": .bool, "is_supervised": .bool, "is_mandatory": .bool, "is_mdm_removable": .bool,
        "is_multi_user": .bool, "is_return_to_service": .bool, "do_not_use_profile_from_backup": .bool,
        "language": .string(max: 35), "region": .string(max: 35), "department": .string(max: 255), "org_magic": .string(max: 255),
        "support_phone_number": .string(max: 50), "support_email_address": .string(max: 254),
        "skip_setup_items": .strings(max: 100), "devices": .strings(max: 1000),
    ]

    static func check(_ data: Data, enrollmentURL: String) throws -> Checked {
        guard data.count <= 256 * 1024 else { throw invalid("the profile must be under 256 kB of JSON") }
        guard case .object(let object)? = try? JSONDecoder().decode(AnyJSON.self, from: data) else {
            throw invalid("the profile must be a JSON object")
        }
        var profile: [String: Any] = [:]
        var warnings: [String] = []
        for (key, value) in object.sorted(by: { $0.key < $1.key }) {
            if abmFilledKeys.contains(key) {
                warnings.append("\(key) is filled by ABM when it defines the profile: ignored")
                continue
            }
            guard let kind = keys[key] else {
                throw invalid("unknown profile key \(key.prefix(64)) (ABM's keys: \(keys.keys.sorted().joined(separator: ", ")))")
            }
            profile[key] = try checkValue(value, of: kind, key: key)
        }
        guard let name = (profile["profile_name"] as? String)?.trimmingCharacters(in: .whitespaces), !name.isEmpty else {
            throw invalid("profile_name is required")
        }
        func flag(_ key: String, _ fallback: Bool) -> Bool { (profile[key] as? Bool) ?? fallback }
        // ABM's default for is_mdm_removable is true; is_supervised is false unless set (iOS 13+ supervises anyway).
        let supervised = flag("is_supervised", false)
        let removable = flag("is_mdm_removable", true)
        if !removable && !supervised {
            throw invalid("FLAGS_INVALID: is_mdm_removable=false needs is_supervised=true")
        }
        if flag("is_multi_user", false) && !supervised {
            throw invalid("FLAGS_INVALID: is_multi_user (Shared iPad) needs is_supervised=true")
        }
        if flag("is_return_to_service", false) && !supervised {
            throw invalid("FLAGS_INVALID: is_return_to_service needs is_supervised=true")
        }
        let skips = profile["skip_setup_items"] as? [String] ?? []
        if let malformed = skips.first(where: { !isSkipKeyShaped($0) }) {
            throw invalid("skip_setup_items: \(malformed.prefix(64)) is not a skip key (letters and digits, such as UnlockWithWatch)")
        }
        if Set(skips).count != skips.count { throw invalid("skip_setup_items lists a key twice") }
        for unknown in skips where !skipKeys.contains(unknown) {
            warnings.append("skip_setup_items: \(unknown) is not among the skip keys Orchard knows; sent to ABM as given")
        }
        if let email = profile["support_email_address"] as? String, !email.isEmpty,
           !(email.contains("@") && !email.hasPrefix("@") && !email.hasSuffix("@")) {
            throw invalid("support_email_address must be an email address")
        }
        // Orchard's own enrollment endpoint unless the profile names one.
        if profile["url"] == nil { profile["url"] = enrollmentURL }
        if profile["configuration_web_url"] == nil { profile["configuration_web_url"] = profile["url"] }
        let devices = profile.removeValue(forKey: "devices") as? [String] ?? []
        let anchors = (profile["anchor_certs"] as? [String] ?? []).compactMap { Data(base64Encoded: $0) }
        profile["profile_name"] = name
        // Apple's schema marks these required: send them explicitly.
        profile["is_mdm_removable"] = removable
        if profile["org_magic"] == nil { profile["org_magic"] = "" }
        return Checked(json: Array(try JSONSerialization.data(withJSONObject: profile, options: [.sortedKeys])), name: name,
                       isSupervised: supervised, isMdmRemovable: removable, awaitDeviceConfigured: flag("await_device_configured", false),
                       anchors: anchors, devices: devices, warnings: warnings)
    }

    /// Apple's skip keys are identifiers: a letter, then letters and digits.
    private static func isSkipKeyShaped(_ key: String) -> Bool {
        guard let first = key.unicodeScalars.first, first.isASCII, first.properties.isAlphabetic else { return false }
        return key.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0)) }
    }

    /// `iOS`/`macOS` → a dotted version such as 18.2.
    static func checkMinimumOS(_ minimum: [String: String]) throws {
        for (platform, version) in minimum {
            guard ["iOS", "macOS"].contains(platform) else { throw invalid("minimumOS: platforms are iOS and macOS, not \(platform.prefix(32))") }
            let parts = version.split(separator: ".", omittingEmptySubsequences: false)
            guard (1...3).contains(parts.count), parts.allSatisfy({ !$0.isEmpty && $0.count <= 4 && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) })
            else { throw invalid("minimumOS.\(platform) must be a version such as 18.2, not \(version.prefix(32))") }
        }
    }

    /// The value as Foundation gives it to JSONSerialization (Bool, String, [String]), or a 400.
    private static func checkValue(_ value: AnyJSON, of kind: Kind, key: String) throws -> Any {
        switch (kind, value) {
        case (.bool, .bool(let flag)):
            return flag
        case (.string(let max), .string(let text)) where text.count <= max && !text.containsControlCharacters:
            return text
        case (.url, .string(let text)):
            guard text.count <= 2048, let url = URL(string: text), url.scheme == "https" || url.scheme == "http",
                  let host = url.host, !host.isEmpty else { throw invalid("\(key) must be an absolute https URL") }
            return text
        case (.strings(let max), .array(let items)):
            let list = items.compactMap { if case .string(let s) = $0 { s } else { nil } }
            guard list.count == items.count, list.count <= max,
                  list.allSatisfy({ !$0.isEmpty && $0.count <= 64 && !$0.containsControlCharacters }) else {
                throw invalid("\(key) must be a list of at most \(max) non-empty strings")
            }
            return list
        case (.certificates, .array(let items)):
            let list = items.compactMap { if case .string(let s) = $0 { s } else { nil } }
            guard list.count == items.count, list.count <= 20 else {
                throw invalid("\(key) must be a list of at most 20 base64 DER certificates")
            }
            for (i, text) in list.enumerated() {
                guard let der = Data(base64Encoded: text), (try? Certificate(der: Array(der))) != nil else {
                    throw invalid("\(key)[\(i)] is not a base64 DER certificate")
                }
            }
            return list
        case (.bool, _): throw invalid("\(key) must be true or false")
        case (.string(let max), _): throw invalid("\(key) must be a string of at most \(max) characters, without control characters")
        case (.url, _): throw invalid("\(key) must be an absolute https URL")
        case (.strings(let max), _): throw invalid("\(key) must be a list of at most \(max) non-empty strings")
        case (.certificates, _): throw invalid("\(key) must be a list of at most 20 base64 DER certificates")
        }
    }

    static func invalid(_ message: String) -> RequestRefused {
        RequestRefused(code: "ade-profile.invalid", message: message, httpStatus: 400)
    }
}
