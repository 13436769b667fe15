import Foundation
import OrchardCore
import OrchardCrypto
import OrchardMessaging
import OrchardSchemas
import OrchardStorage

/// Managed Apple Account domains (account-driven enrollment, item 1): which enrollment a domain's users get,
/// which directory signs them in, and the minimum OS per platform. Every change goes to the activity log.
struct ManagedDomains: Sendable {
    let database: Database
    let outbox: OutboxPublisher
    let service: String
    /// The gateway's public URL: a domain's devices enroll at `<it>/mdm/account/enroll/<domain>` (`BaseURL`).
    let gatewayURL: String
    let secrets: SecretBox
    /// This service's discovery URL, which abm-sync registers with ABM.
    var discoveryURL: String? = nil
    /// Where this service serves a domain's `EnrollmentSSODocument` (`<it>/<domain>`).
    var enrollmentSSOURL: String? = nil
    /// Domains as discovery, the sign-in page and the token checks read them, for a few seconds (shared by copies).
    let cache = DomainCache()

    func baseURL(_ domain: String) -> String { "\(gatewayURL)/mdm/account/enroll/\(domain)" }

    /// Apple's minimums for account-driven enrollment with the flows Orchard serves (REFERENCE §5; seed 003).
    static let defaultMinimumOS = ["iOS": "18.2", "iPadOS": "18.2", "macOS": "15.2"]
    static let modes = Set(AccountEnrollmentMode.allCases.map(\.rawValue))
    static let authentications: Set<String> = ["apple-as-web", "apple-oauth2"]

    func save(_ r: SaveManagedDomain, correlationID: String?) async throws -> ManagedDomain {
        let domain = try Self.canonical(r.domain)
        guard Self.modes.contains(r.mode) else {
            throw RequestRefused(code: "account-domain.mode", message: "mode must be mdm-byod (User Enrollment) or mdm-adde (Device Enrollment)")
        }
        let directory = r.directory ?? (r.ldap == nil ? "none" : "ldap")
        guard directory == "none" || directory == "ldap" else {
            throw RequestRefused(code: "account-domain.directory", message: "directory must be ldap (with ldap settings) or none")
        }
        var ldap = r.ldap
        if directory == "ldap" {
            guard let settings = ldap else {
                throw RequestRefused(code: "account-domain.directory", message: "directory ldap needs the ldap settings (url, baseDN, userFilter)")
            }
            try Self.check(settings)
        } else if ldap != nil {
            throw RequestRefused(code: "account-domain.directory", message: "ldap settings need directory ldap")
        }
        let authentication = r.authentication ?? "apple-as-web"
        guard Self.authentications.contains(authentication) else {
            throw RequestRefused(code: "account-domain.authentication", message: "authentication must be apple-as-web or apple-oauth2")
        }
        if let oidc = r.oidc {
            guard authentication == "apple-oauth2" else {
                throw RequestRefused(code: "account-domain.oidc", message: "an OIDC provider needs authentication apple-oauth2")
            }
            try Self.check(oidc)
        }
        let oidcText = try r.oidc.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
        if let esso = r.enrollmentSSO { try EnrollmentSSO.check(esso) }
        let essoText = try r.enrollmentSSO.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
        let sealedPassword = try ldap?.bindPassword.map { try secrets.seal(Array($0.utf8), context: "ldap-bind:\(domain)") }
        ldap?.bindPassword = nil
        ldap?.bindPasswordSet = nil
        let ldapText = try ldap.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
        var minimum = Self.defaultMinimumOS
        for (platform, version) in r.minimumOS ?? [:] {
            guard Self.defaultMinimumOS.keys.contains(platform) else {
                throw RequestRefused(code: "account-domain.minimum-os", message: "minimumOS platforms are iOS, iPadOS and macOS, not \(platform.prefix(32))")
            }
            let parts = version.split(separator: ".", omittingEmptySubsequences: false)
            guard (1...3).contains(parts.count), parts.allSatisfy({ (1...4).contains($0.count) && $0.allSatisfy { $0.isASCII && $0.isNumber } }) else {
                throw RequestRefused(code: "account-domain.minimum-os", message: "minimumOS.\(platform) must be a version such as 18.2, not \(version.prefix(32))")
            }
            minimum[platform] = version
        }
        let minimumText = String(decoding: try JSONEncoder().encode(minimum), as: UTF8.self)
        let summary = minimum.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        try await database.transaction { c in
            let inserted = try DomainStore.save(c, .init(domain: domain, mode: r.mode, directory: directory, minimumOS: minimumText, actor: r.actor,
                                                         ldapSettings: ldapText, sealedBindPassword: sealedPassword, authentication: authentication,
                                                         oidcSettings: oidcText, enrollmentSSO: essoText))
            try Outbox.append(activity(r.actor, inserted ? "account-domain.created" : "account-domain.changed",
                                       detail: "\(domain): \(r.mode), directory \(directory), \(authentication), minimum \(summary)"
                                           + (r.enrollmentSSO.map { ", Enrollment SSO app \($0.appStoreID) (\($0.extensionIdentifier))" } ?? "")),
                              correlationID: correlationID, on: c)
        }
        outbox.notify()
        cache.forget(domain)
        guard let saved = try await find(domain) else { throw RequestRefused(code: "account-domain.unknown", message: "no domain \(domain)", httpStatus: 404) }
        return saved.view
    }

    func list() async throws -> [ManagedDomain] {
        try await DomainStore.list(database).map { record($0).view }
    }

    func delete(_ r: DeleteManagedDomain, correlationID: String?) async throws -> DeleteManagedDomain.Reply {
        let domain = try Self.canonical(r.domain)
        let deleted = try await database.transaction { c -> Bool in
            guard try DomainStore.delete(c, domain: domain) else { return false }
            try Outbox.append(activity(r.actor, "account-domain.deleted", detail: domain), correlationID: correlationID, on: c)
            return true
        }
        guard deleted else { throw RequestRefused(code: "account-domain.unknown", message: "no domain \(domain)", httpStatus: 404) }
        outbox.notify()
        cache.forget(domain)
        return .init(deleted: true)
    }

    /// A domain as sign-in needs it: the admin's view, and the directory with its search account's password.
    struct Record: Sendable {
        let view: ManagedDomain
        let ldap: LDAPDirectorySettings?
        let sealedBindPassword: [UInt8]?
    }


    /// The domain, read at most `DomainCache.lifetime` ago (this replica's own changes at once).
    func find(_ domain: String) async throws -> Record? {
        if let known = cache.lookup(domain) { return known }
        let found = try await DomainStore.find(database, domain: domain).map(record)
        cache.keep(found, for: domain)
        return found
    }

    /// The search account's password of `record`'s directory.
    func bindPassword(_ record: Record) throws -> String? {
        try record.sealedBindPassword.map { String(decoding: try secrets.open($0, context: "ldap-bind:\(record.view.domain)"), as: UTF8.self) }
    }

    /// A row with `columns` (of a query that may join other tables).
    func record(_ row: Row) -> Record {
        let domain = row.string("domain") ?? ""
        var ldap = row.string("ldap_settings").flatMap { try? JSONDecoder().decode(LDAPDirectorySettings.self, from: Data($0.utf8)) }
        let sealed = row.bytes("ldap_bind_password")
        var shown = ldap
        shown?.bindPasswordSet = sealed != nil
        ldap?.bindPasswordSet = sealed != nil
        var view = ManagedDomain(domain: domain, mode: row.string("mode") ?? "", directory: row.string("directory") ?? "none", ldap: shown,
                                 minimumOS: (try? JSONDecoder().decode([String: String].self, from: Data((row.string("minimum_os") ?? "{}").utf8))) ?? [:],
                                 baseURL: baseURL(domain), registeredWithABM: false, updatedAt: row.date("updated_at") ?? Date())
        view.authentication = row.string("authentication") ?? "apple-as-web"
        view.discoveryURL = discoveryURL
        view.oidc = row.string("oidc_settings").flatMap { try? JSONDecoder().decode(OIDCProviderSettings.self, from: Data($0.utf8)) }
        view.enrollmentSSO = row.string("enrollment_sso").flatMap { try? JSONDecoder().decode(EnrollmentSSOSettings.self, from: Data($0.utf8)) }
        if view.enrollmentSSO != nil, let base = enrollmentSSOURL { view.enrollmentSSOURL = "\(base)/\(domain)" }
        return Record(view: view, ldap: ldap, sealedBindPassword: sealed)
    }

    /// An OIDC provider an admin may save: an https issuer (http only to a loopback address, for a stand-in), a client id.
    static func check(_ o: OIDCProviderSettings) throws {
        func refuse(_ message: String) -> RequestRefused { RequestRefused(code: "account-domain.oidc", message: message) }
        guard o.issuer.count <= 512, OIDCProviders.isSecure(o.issuer), !o.issuer.hasSuffix("/") else {
            throw refuse("oidc.issuer must be the provider's https URL (http only for a loopback address), without a trailing slash or user name")
        }
        guard (1...200).contains(o.clientID.count), !o.clientID.containsControlCharacters, !o.clientID.contains("\"") else {
            throw refuse("oidc.clientID is required")
        }
        for value in [o.audience, o.scope, o.userClaim].compactMap({ $0 }) {
            guard (1...200).contains(value.count), !value.containsControlCharacters, !value.contains("\"") else {
                throw refuse("oidc.audience, scope and userClaim must be 1 to 200 characters without quotes")
            }
        }
    }

    /// LDAP settings an admin may save: an ldap(s) URL, filters in parentheses, `{user}` in the user filter.
    static func check(_ s: LDAPDirectorySettings) throws {
        func refuse(_ message: String) -> RequestRefused { RequestRefused(code: "account-domain.ldap", message: message) }
        let lower = s.url.lowercased()
        guard s.url.count <= 512, lower.hasPrefix("ldap://") || lower.hasPrefix("ldaps://"), !s.url.containsControlCharacters else {
            throw refuse("ldap.url must be an ldap:// or ldaps:// URL")
        }
        guard (1...1024).contains(s.baseDN.count), !s.baseDN.containsControlCharacters else { throw refuse("ldap.baseDN is required (such as dc=example,dc=com)") }
        guard s.userFilter.count <= 1024, s.userFilter.hasPrefix("("), s.userFilter.hasSuffix(")"), s.userFilter.contains("{user}"),
              !s.userFilter.containsControlCharacters else {
            throw refuse("ldap.userFilter must be a filter in parentheses naming {user}, such as (mail={user}) or (userPrincipalName={user})")
        }
        if let f = s.disabledFilter, !f.isEmpty {
            guard f.count <= 1024, f.hasPrefix("("), f.hasSuffix(")"), !f.containsControlCharacters else {
                throw refuse("ldap.disabledFilter must be a filter in parentheses, such as (employeeType=disabled)")
            }
        }
        if let dn = s.bindDN { guard dn.count <= 1024, !dn.containsControlCharacters else { throw refuse("ldap.bindDN is too long") } }
        if let p = s.bindPassword { guard p.count <= 1024 else { throw refuse("ldap.bindPassword is too long") } }
        if let ca = s.caFile {
            guard ca.hasPrefix("/"), FileManager.default.isReadableFile(atPath: ca) else { throw refuse("ldap.caFile must be a readable PEM file on user-enrollment-auth's host") }
        }
        if let t = s.timeoutSeconds { guard (1...30).contains(t) else { throw refuse("ldap.timeoutSeconds must be 1 to 30") } }
    }

    private func activity(_ actor: String, _ action: String, detail: String) -> ActivityRecorded {
        ActivityRecorded(actor: actor, action: action, deviceID: nil, relatedDeviceIDs: [], outcome: .succeeded, detail: detail, service: service)
    }

    /// A DNS name, lowercased: labels of letters, digits and hyphens, at least two of them, at most 253 characters.
    static func canonical(_ text: String) throws -> String {
        let domain = text.trimmingCharacters(in: .whitespaces).lowercased()
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        guard domain.count <= 253, labels.count >= 2, labels.allSatisfy({ label in
            (1...63).contains(label.count) && label.first != "-" && label.last != "-"
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        }) else {
            throw RequestRefused(code: "account-domain.name", message: "\(text.prefix(64)) is not a domain name (such as example.com)")
        }
        return domain
    }
}

/// Domains read in the last few seconds, and domains found not to exist. Every discovery, sign-in page and sign-in
/// reads its domain: three queries and three JSON decodings of the directory settings per enrollment, for a record
/// that changes when an administrator edits it. A change on this replica is seen at once (`forget`); another
/// replica's within `lifetime`. At most `capacity` entries (`ExpiringCache`): a flood of made-up domains empties it,
/// never grows it.
final class DomainCache: Sendable {
    static let lifetime: TimeInterval = 5
    static let capacity = 1024
    private let entries = ExpiringCache<ManagedDomains.Record?>(capacity: DomainCache.capacity)

    /// `.some(nil)`: known not to exist; nil: not known.
    func lookup(_ domain: String) -> ManagedDomains.Record?? { entries.get(domain) }

    func keep(_ record: ManagedDomains.Record?, for domain: String) { entries.set(domain, record, for: Self.lifetime) }

    func forget(_ domain: String) { entries.remove(domain) }
}

extension ManagedDomains {
    /// The domain's directory (its search account's password unsealed); nil when the domain has none yet.
    func directory(of record: Record) throws -> (any Directory)? {
        guard let ldap = record.ldap else { return nil }
        return LDAPDirectory(settings: ldap, bindPassword: try bindPassword(record))
    }
}
