import COrchardLDAP
import Foundation
import OrchardSchemas

/// A domain's LDAP directory, through Debian's libldap (OpenLDAP's client library, reached through `COrchardLDAP`'s
/// pass-through calls: open, search, bind): find the user's one entry with the domain's filter, the user's own simple
/// bind with their password, then the disabled filter (`decide`: the whole decision is here). Checks run on a blocking thread (libldap's synchronous API) on connections kept open
/// between sign-ins (`LDAPConnectionPool`); the sweep's searches open their own.
struct LDAPDirectory: Directory {
    let settings: LDAPDirectorySettings
    let bindPassword: String?

    typealias Outcome = DirectoryOutcome

    func check(user: String, password: String?) async -> DirectoryOutcome { await check(user: user, password: password, pool: .shared) }

    func disabledEntries() async -> Result<Set<String>, DirectoryOutcome>? {
        guard let filter = settings.disabledFilter, !filter.isEmpty else { return nil }
        return await dns(matching: filter)
    }

    func userEntries() async -> Result<Set<String>, DirectoryOutcome> {
        await dns(matching: settings.userFilter.replacingOccurrences(of: "{user}", with: "*"))
    }

    /// Checks `user` (a Managed Apple Account) and, when given, their password, on connections of `pool`.
    func check(user: String, password: String?, pool: LDAPConnectionPool) async -> Outcome {
        let filter = settings.userFilter.replacingOccurrences(of: "{user}", with: Self.escape(user))
        let settings = settings, bindPassword = bindPassword
        return await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(returning: Self.check(filter: filter, password: password, settings: settings,
                                                          bindPassword: bindPassword, pool: pool))
            }
        }
    }

    /// Blocking: the check on kept connections, and once more on new ones when the directory had closed a kept one.
    private static func check(filter: String, password: String?, settings: LDAPDirectorySettings, bindPassword: String?,
                              pool: LDAPConnectionPool) -> Outcome {
        let timeout = Int32(settings.timeoutSeconds ?? 5)
        let searchKey = LDAPConnectionPool.Key(url: settings.url, caFile: settings.caFile, bindDN: settings.bindDN, bindPassword: bindPassword)
        let bindKey = LDAPConnectionPool.Key(url: settings.url, caFile: settings.caFile, bindDN: nil, bindPassword: nil)
        var message = [CChar](repeating: 0, count: 512)
        func open(_ key: LDAPConnectionPool.Key) -> Result<LDAPConnectionPool.Connection, Outcome> {
            var handle: UnsafeMutableRawPointer?
            let code = orc_ldap_open(key.url, key.caFile, key.bindDN, key.bindPassword, timeout, &handle, &message, message.count)
            guard Int(code) == Int(ORC_LDAP_OK), let handle else {
                let text = String(cString: message)
                return .failure(Int(code) == Int(ORC_LDAP_UNREACHABLE) ? .unreachable(text) : .failed(text))
            }
            return .success(LDAPConnectionPool.Connection(handle: handle))
        }
        for fresh in [false, true] {
            let keptSearch = fresh ? nil : pool.take(searchKey)
            let search: LDAPConnectionPool.Connection
            switch keptSearch.map({ .success($0) }) ?? open(searchKey) {
            case .success(let c): search = c
            case .failure(let outcome): return outcome
            }
            var bind: LDAPConnectionPool.Connection?
            var keptBind = false
            if password != nil {
                if !fresh, let kept = pool.take(bindKey) {
                    bind = kept
                    keptBind = true
                } else {
                    switch open(bindKey) {
                    case .success(let c): bind = c
                    case .failure(let outcome):
                        pool.give(search, searchKey)
                        return outcome
                    }
                }
            }
            let (outcome, lost) = decide(search: search.handle, bind: (bind ?? search).handle, filter: filter, password: password,
                                         settings: settings, timeout: timeout)
            switch outcome {
            case .ok, .notFound, .ambiguous, .wrongPassword, .disabled:
                // The directory answered: both connections are in a known state and go back for the next sign-in.
                pool.give(search, searchKey)
                if let bind { pool.give(bind, bindKey) }
                return outcome
            case .unreachable, .failed:
                orc_ldap_close(search.handle)
                if let bind { orc_ldap_close(bind.handle) }
                if lost && !fresh && (keptSearch != nil || keptBind) { continue }
                return outcome
            }
        }
        return .failed("unreachable")
    }

    /// The sign-in decision, on open connections: the user filter must match exactly one entry; with a password, the
    /// user's own bind decides first ("disabled" is said only to someone who knows the password: an attacker must not
    /// learn which accounts are disabled by trying any password); then the disabled filter, read on the entry itself.
    /// An empty password is an unauthenticated bind, which servers accept: never a sign-in. `lost`: the directory had
    /// closed a kept connection (the caller tries once more on new ones).
    static func decide(search: UnsafeMutableRawPointer, bind: UnsafeMutableRawPointer, filter: String, password: String?,
                       settings: LDAPDirectorySettings, timeout: Int32) -> (Outcome, lost: Bool) {
        if let password, password.isEmpty { return (.wrongPassword, false) }
        let found = Self.search(search, base: settings.baseDN, baseOnly: false, filter: filter, timeout: timeout, sizeLimit: 2)
        let dn: String
        switch found {
        case .failure(let failure):
            return failure.code == Int(ORC_LDAP_SIZE_LIMIT) ? (.ambiguous, false) : (failure.outcome, failure.lost)
        case .success(let dns) where dns.isEmpty: return (.notFound, false)
        case .success(let dns) where dns.count > 1: return (.ambiguous, false)
        case .success(let dns): dn = dns[0]
        }
        if let password {
            var message = [CChar](repeating: 0, count: 512)
            let code = Int(orc_ldap_bind(bind, dn, password, &message, message.count))
            // Active Directory refuses the bind of a disabled or locked account with invalid credentials (data 533/775),
            // which reads as a wrong password; other refusals say why.
            if code == Int(ORC_LDAP_WRONG_PASSWORD) { return (.wrongPassword, false) }
            if code != Int(ORC_LDAP_OK) { return (Failure(code: code, message: "user bind: " + String(cString: message)).outcome, code == Int(ORC_LDAP_CONNECTION_LOST)) }
        }
        if let disabledFilter = settings.disabledFilter, !disabledFilter.isEmpty {
            switch Self.search(search, base: dn, baseOnly: true, filter: disabledFilter, timeout: timeout, sizeLimit: 1) {
            case .success(let dns) where !dns.isEmpty: return (.disabled, false)
            case .success: break
            case .failure(let failure) where failure.code == Int(ORC_LDAP_NO_SUCH_OBJECT): break
            case .failure(let failure): return (Failure(code: failure.code, message: "disabled check: " + failure.message).outcome, failure.lost)
            }
        }
        return (.ok(dn: dn), false)
    }

    struct Failure: Error {
        let code: Int
        let message: String
        var lost: Bool { code == Int(ORC_LDAP_CONNECTION_LOST) }
        var outcome: Outcome {
            code == Int(ORC_LDAP_UNREACHABLE) || code == Int(ORC_LDAP_CONNECTION_LOST) ? .unreachable(message) : .failed(message)
        }
    }

    /// The DNs a search finds (blocking).
    static func search(_ ld: UnsafeMutableRawPointer, base: String, baseOnly: Bool, filter: String, timeout: Int32,
                       sizeLimit: Int32) -> Result<[String], Failure> {
        var out: UnsafeMutablePointer<CChar>?
        var count: Int32 = 0
        var message = [CChar](repeating: 0, count: 512)
        let code = Int(orc_ldap_search(ld, base, baseOnly ? 1 : 0, filter, timeout, sizeLimit, &out, &count, &message, message.count))
        defer { free(out) }
        guard code == Int(ORC_LDAP_OK), let out else { return .failure(Failure(code: code, message: String(cString: message))) }
        return .success(String(cString: out).split(separator: "\n").map(String.init))
    }

    /// RFC 4515 escaping of a value inside a filter: `*`, `(`, `)`, `\` and NUL (and any byte outside printable ASCII).
    static func escape(_ value: String) -> String {
        var out = ""
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "*"), UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "\\"), 0, 0x80...0xFF, 0x01...0x1F, 0x7F:
                out += String(format: "\\%02x", byte)
            default:
                out.append(Character(Unicode.Scalar(byte)))
            }
        }
        return out
    }

    /// The DNs (lowercased) of every entry under the base DN that `filter` matches; nil with the reason when the
    /// directory did not answer completely.
    func dns(matching filter: String) async -> Result<Set<String>, Outcome> {
        let settings = settings, bindPassword = bindPassword
        return await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(returning: Self.allDNs(matching: filter, settings: settings, bindPassword: bindPassword))
            }
        }
    }

    /// Blocking: every DN `filter` matches under the base DN, on a connection of its own. A partial answer (the server's
    /// size limit cut it) would read as "these users are gone": it is a failure.
    private static func allDNs(matching filter: String, settings: LDAPDirectorySettings, bindPassword: String?) -> Result<Set<String>, Outcome> {
        let timeout = Int32(settings.timeoutSeconds ?? 5)
        var handle: UnsafeMutableRawPointer?
        var message = [CChar](repeating: 0, count: 512)
        let code = Int(orc_ldap_open(settings.url, settings.caFile, settings.bindDN, bindPassword, timeout, &handle, &message, message.count))
        guard code == Int(ORC_LDAP_OK), let handle else {
            let text = String(cString: message)
            return .failure(code == Int(ORC_LDAP_UNREACHABLE) ? .unreachable(text) : .failed(text))
        }
        defer { orc_ldap_close(handle) }
        switch search(handle, base: settings.baseDN, baseOnly: false, filter: filter, timeout: timeout, sizeLimit: 0) {
        case .success(let dns): return .success(Set(dns.map { $0.lowercased() }))
        case .failure(let failure) where failure.code == Int(ORC_LDAP_SIZE_LIMIT):
            return .failure(.failed("search (the server's size limit cut the answer): \(failure.message)"))
        case .failure(let failure): return .failure(failure.outcome)
        }
    }
}
