import Foundation
import OrchardCore

/// The body of an account-driven enrollment request (REFERENCE §5.2): a MachineInfo property list, CMS-signed by the
/// device's built-in identity, that in User Enrollment carries no UDID, serial or IMEI (Apple's MachineInfo schema
/// forbids them there) — only `PRODUCT`, `VERSION` (the build), `LANGUAGE` and, from iOS 17 / macOS 14, `OS_VERSION`.
public struct AccountEnrollmentRequest: Sendable, Equatable {
    public var product: String
    public var version: String
    public var osVersion: String?
    public var language: String?
    /// Account-driven Device Enrollment may say which device it is; User Enrollment never does.
    public var udid: String?
    public var canRequestSoftwareUpdate: Bool

    public enum Platform: String, Sendable { case iOS, iPadOS, macOS, visionOS }

    /// Parses the (already signature-checked) plist.
    public static func parse(_ bytes: [UInt8]) throws -> AccountEnrollmentRequest {
        let r = PlistReader(try Plist.parseDictionary(bytes))
        let request = AccountEnrollmentRequest(
            product: try r.string("PRODUCT"), version: try r.string("VERSION"), osVersion: try r.optionalString("OS_VERSION"),
            language: try r.optionalString("LANGUAGE"), udid: try r.optionalString("UDID"),
            canRequestSoftwareUpdate: try r.optionalBool("MDM_CAN_REQUEST_SOFTWARE_UPDATE") ?? false)
        guard (1...64).contains(request.product.count), request.product.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "," || $0 == "-") }) else {
            throw PlistError("malformed PRODUCT")
        }
        guard (1...32).contains(request.version.count), !request.version.containsControlCharacters else { throw PlistError("malformed VERSION") }
        if let os = request.osVersion {
            guard OSVersion.isPlausible(os) else { throw PlistError("malformed OS_VERSION") }
        }
        if let udid = request.udid, !DeviceIdentifier.isValid(udid) { throw PlistError("malformed UDID") }
        return request
    }

    /// The platform `PRODUCT` names (`iPhone17,2`, `iPad16,3`, `Mac16,1`, `RealityDevice14,1`); nil for others (a watch, a TV).
    public var platform: Platform? {
        if product.hasPrefix("iPhone") || product.hasPrefix("iPod") { return .iOS }
        if product.hasPrefix("iPad") { return .iPadOS }
        if product.hasPrefix("Mac") || product.hasPrefix("iMac") || product.hasPrefix("VirtualMac") { return .macOS }
        if product.hasPrefix("RealityDevice") { return .visionOS }
        return nil
    }
}

/// Dotted OS versions (`18.2`, `15.2.1`, `17.5 (a)`), compared number by number; a missing part counts as 0.
public enum OSVersion {
    public static func compare(_ a: String, _ b: String) -> ComparisonResult {
        let x = a.split(separator: ".").map { Int($0.prefix { $0.isNumber }) ?? 0 }
        let y = b.split(separator: ".").map { Int($0.prefix { $0.isNumber }) ?? 0 }
        for i in 0..<max(x.count, y.count) {
            let l = i < x.count ? x[i] : 0, r = i < y.count ? y[i] : 0
            if l != r { return l < r ? .orderedAscending : .orderedDescending }
        }
        return .orderedSame
    }

    /// Whether `text` starts with a number and is short enough to be a version.
    public static func isPlausible(_ text: String) -> Bool {
        (1...32).contains(text.count) && text.first?.isNumber == true && !text.containsControlCharacters
    }
}
