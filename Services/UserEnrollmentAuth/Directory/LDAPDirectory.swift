import COrchardLDAP
import Foundation
import OrchardSchemas

/// A domain's LDAP directory, through Debian's libldap (OpenLDAP's client library): find the user's one entry
/// with the domain's filter, refuse it when the disabled filter matches, then the user's own simple bind with
/// their password decides. Each check opens its own connection on a blocking thread (libldap's synchronous API).
struct LDAPDirectory: Sendable {
    let settings: LDAPDirectorySettings
    let bindPassword: String?

    enum Outcome: Error, Sendable, Equatable {
        case ok(dn: String)
        case notFound, ambiguous, wrongPassword, disabled
        /// No connection, a timeout: the user can try again later.
        case unreachable(String)
        /// The directory refused the search account, or some other error: the administrator's to fix.
        case failed(String)
    }

    /// Checks `user` (a Managed Apple Account) and, when given, their password.
    func check(user: String, password: String?) async -> Outcome {
        let filter = settings.userFilter.replacingOccurrences(of: "{user}", with: Self.escape(user))
        let settings = settings, bindPassword = bindPassword
        return await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                var dn = [CChar](repeating: 0, count: 2048)
                var message = [CChar](repeating: 0, count: 512)
                let code = orc_ldap_check(settings.url, settings.caFile, settings.bindDN, bindPassword, settings.baseDN, filter,
                                          settings.disabledFilter ?? "", password, Int32(settings.timeoutSeconds ?? 5),
                                          &dn, dn.count, &message, message.count)
                let text = String(cString: message)
                let outcome: Outcome = switch Int(code) {
                case Int(ORC_LDAP_OK): .ok(dn: String(cString: dn))
                case Int(ORC_LDAP_NOT_FOUND): .notFound
                case Int(ORC_LDAP_AMBIGUOUS): .ambiguous
                case Int(ORC_LDAP_WRONG_PASSWORD): .wrongPassword
                case Int(ORC_LDAP_DISABLED): .disabled
                case Int(ORC_LDAP_UNREACHABLE): .unreachable(text)
                default: .failed(text)
                }
                continuation.resume(returning: outcome)
            }
        }
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
