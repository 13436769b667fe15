import AppleProtocol
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import OrchardCrypto
import OrchardMessaging
import OrchardSchemas
import OrchardServiceKit

/// Enrollment SSO (Apple's "Implementing the Enrollment SSO flow"): a domain may name an identity app with an SSO
/// extension. The enrollment's first 401 then carries `X-Apple-MDM-ESSO` with this document's URL; the device GETs it,
/// downloads the app (`iTunesStoreID`), installs `ConfigurationProfile` (one `com.apple.extensiblesso` payload that
/// configures the app's extension) and signs in through the extension instead of the web view.
enum EnrollmentSSO {
    static let path = "account/esso"

    /// Settings an admin may save; the reason otherwise (400, nothing stored).
    static func check(_ s: EnrollmentSSOSettings) throws {
        func refuse(_ message: String) -> RequestRefused { RequestRefused(code: "account-domain.enrollment-sso", message: "enrollmentSSO.\(message)") }
        guard (1...999_999_999_999).contains(s.appStoreID) else { throw refuse("appStoreID must be the app's App Store id (a positive number)") }
        guard isBundleID(s.extensionIdentifier) else {
            throw refuse("extensionIdentifier must be the SSO extension's bundle identifier, such as com.example.app.sso")
        }
        if let team = s.teamIdentifier {
            guard (1...20).contains(team.count), team.allSatisfy({ $0.isASCII && ($0.isUppercase || $0.isNumber) }) else {
                throw refuse("teamIdentifier must be a team identifier, such as ABCD123456")
            }
        }
        let urls = s.urls ?? [], hosts = s.hosts ?? []
        guard urls.count <= 50, hosts.count <= 50, (s.associatedDomains ?? []).count <= 50 else { throw refuse("at most 50 urls, hosts and associatedDomains") }
        switch s.type {
        case "Redirect":
            guard !urls.isEmpty else { throw refuse("urls is required for type Redirect (the identity provider's URL prefixes)") }
        case "Credential":
            guard !hosts.isEmpty, let realm = s.realm, (1...255).contains(realm.count), !realm.containsControlCharacters else {
                throw refuse("hosts and realm are required for type Credential")
            }
        default:
            throw refuse("type must be Redirect or Credential")
        }
        for url in urls {
            guard url.count <= 512, let parts = URLComponents(string: url), parts.scheme == "https" || parts.scheme == "http",
                  parts.host?.isEmpty == false, parts.query == nil, parts.fragment == nil else {
                throw refuse("urls must be http(s) URL prefixes without a query or fragment, not \(url.prefix(64))")
            }
        }
        for host in hosts {
            guard (1...253).contains(host.count), host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-") }) else {
                throw refuse("hosts must be host or domain names, not \(host.prefix(64))")
            }
        }
        for domain in s.associatedDomains ?? [] {
            // service:host[?mode=developer|managed|developer+managed] (Associated Domains Entitlement).
            let parts = domain.split(separator: ":", maxSplits: 1)
            let host = parts.count == 2 ? parts[1].split(separator: "?", maxSplits: 1) : []
            guard domain.count <= 300, parts.count == 2, ["authsrv", "applinks", "webcredentials", "appclips", "activitycontinuation"].contains(String(parts[0])),
                  let name = host.first, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "*") }),
                  host.count == 1 || ["mode=developer", "mode=managed", "mode=developer+managed"].contains(String(host[1])) else {
                throw refuse("associatedDomains must be service:host entries such as authsrv:login.example.com, not \(domain.prefix(64))")
            }
        }
    }

    private static func isBundleID(_ text: String) -> Bool {
        (3...155).contains(text.count) && text.contains(".") && !text.hasPrefix(".") && !text.hasSuffix(".")
            && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-") }
    }

    /// The configuration profile of the document: one `com.apple.extensiblesso` payload. Its UUIDs follow from the domain
    /// and settings, so the same settings give the same profile (the device sees no change on a second fetch).
    static func profile(domain: String, _ s: EnrollmentSSOSettings) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let seed = Array(try encoder.encode(s)) + Array(domain.utf8)
        let digest = Digest.sha256(seed)
        func uuid(_ salt: UInt8) -> String {
            var b = Digest.sha256(digest + [salt]).prefix(16).map { $0 }
            b[6] = (b[6] & 0x0F) | 0x50
            b[8] = (b[8] & 0x3F) | 0x80
            let h = b.map { String(format: "%02X", $0) }.joined()
            let i = h.startIndex
            func part(_ from: Int, _ to: Int) -> Substring { h[h.index(i, offsetBy: from)..<h.index(i, offsetBy: to)] }
            return "\(part(0, 8))-\(part(8, 12))-\(part(12, 16))-\(part(16, 20))-\(part(20, 32))"
        }
        var sso: [String: PlistValue] = [
            "PayloadType": .string("com.apple.extensiblesso"), "PayloadVersion": .integer(1),
            "PayloadIdentifier": .string("com.orchard.enrollment-sso.\(domain).extension"), "PayloadUUID": .string(uuid(1)),
            "PayloadDisplayName": .string("Single sign-on"),
            "ExtensionIdentifier": .string(s.extensionIdentifier), "Type": .string(s.type),
        ]
        // TeamIdentifier is macOS-only in Apple's schema (not available on iOS), and Enrollment SSO is iOS and visionOS.
        if let urls = s.urls, !urls.isEmpty { sso["URLs"] = .array(urls.map(PlistValue.string)) }
        if let hosts = s.hosts, !hosts.isEmpty { sso["Hosts"] = .array(hosts.map(PlistValue.string)) }
        if let realm = s.realm { sso["Realm"] = .string(realm) }
        return Plist.xml([
            "PayloadType": .string("Configuration"), "PayloadVersion": .integer(1),
            "PayloadIdentifier": .string("com.orchard.enrollment-sso.\(domain)"), "PayloadUUID": .string(uuid(0)),
            "PayloadDisplayName": .string("Enrollment single sign-on for \(domain)"),
            "PayloadContent": .array([.dictionary(sso)]),
        ])
    }

    /// Apple's `EnrollmentSSODocument` as JSON (`ConfigurationProfile` is `data`: base64 in JSON).
    static func document(domain: String, _ s: EnrollmentSSOSettings) throws -> [UInt8] {
        var object: [String: Any] = ["iTunesStoreID": s.appStoreID,
                                     "ConfigurationProfile": Data(try profile(domain: domain, s)).base64EncodedString()]
        if let domains = s.associatedDomains, !domains.isEmpty { object["AssociatedDomains"] = domains }
        if let direct = s.associatedDomainsEnableDirectDownloads { object["AssociatedDomainsEnableDirectDownloads"] = direct }
        return Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
    }

    /// `GET /account/esso/<domain>`: the document, or 404 when the domain names no Enrollment SSO app.
    static func add(to router: Router<AccountRequestContext>, domains: ManagedDomains) {
        router.get(RouterPath(stringLiteral: "\(path)/:domain")) { _, context -> Response in
            let name = try? ManagedDomains.canonical(try context.parameters.require("domain"))
            guard let name, let record = try await domains.find(name), let settings = record.view.enrollmentSSO else {
                return json(["code": "orchard.account.enrollment-sso.unknown", "message": "no Enrollment SSO app for this domain"], status: .notFound)
            }
            return jsonResponse(.ok, body: try document(domain: name, settings), noStore: true)
        }
    }

    private static func json(_ object: [String: String], status: HTTPResponse.Status) -> Response {
        jsonResponse(status, object: object, noStore: true)
    }
}
