import COrchardLDAP
import Foundation
import OrchardSchemas

/// A domain's LDAP directory, through Debian's libldap (OpenLDAP's client library): find the user's one entry
/// with the domain's filter, refuse it when the disabled filter matches, then the user's own simple bind with
/// their password decides. Checks run on a blocking thread (libldap's synchronous API) on connections kept open
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
            var dn = [CChar](repeating: 0, count: 2048)
            let code = Int(orc_ldap_check_on(search.handle, (bind ?? search).handle, settings.baseDN, filter,
                                             settings.disabledFilter ?? "", password, timeout, &dn, dn.count, &message, message.count))
            let text = String(cString: message)
            let outcome: Outcome = switch code {
            case Int(ORC_LDAP_OK): .ok(dn: String(cString: dn))
            case Int(ORC_LDAP_NOT_FOUND): .notFound
            case Int(ORC_LDAP_AMBIGUOUS): .ambiguous
            case Int(ORC_LDAP_WRONG_PASSWORD): .wrongPassword
            case Int(ORC_LDAP_DISABLED): .disabled
            case Int(ORC_LDAP_UNREACHABLE), Int(ORC_LDAP_CONNECTION_LOST): .unreachable(text)
            default: .failed(text)
            }
            switch outcome {
            case .ok, .notFound, .ambiguous, .wrongPassword, .disabled:
                // The directory answered: both connections are in a known state and go back for the next sign-in.
                pool.give(search, searchKey)
                if let bind { pool.give(bind, bindKey) }
                return outcome
            case .unreachable, .failed:
                orc_ldap_close(search.handle)
                if let bind { orc_ldap_close(bind.handle) }
                if code == Int(ORC_LDAP_CONNECTION_LOST) && !fresh && (keptSearch != nil || keptBind) { continue }
                return outcome
            }
        }
        return .failed("unreachable")
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
                var out: UnsafeMutablePointer<CChar>?
                var count: Int32 = 0
                var message = [CChar](repeating: 0, count: 512)
                let code = orc_ldap_search_dns(settings.url, settings.caFile, settings.bindDN, bindPassword, settings.baseDN, filter,
                                               Int32(settings.timeoutSeconds ?? 5), &out, &count, &message, message.count)
                defer { free(out) }
                guard Int(code) == Int(ORC_LDAP_OK), let out else {
                    let text = String(cString: message)
                    continuation.resume(returning: .failure(Int(code) == Int(ORC_LDAP_UNREACHABLE) ? .unreachable(text) : .failed(text)))
                    return
                }
                let dns = String(cString: out).split(separator: "\n").map { $0.lowercased() }
                continuation.resume(returning: .success(Set(dns)))
            }
        }
    }
}
