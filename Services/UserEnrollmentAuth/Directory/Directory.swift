import Foundation
import OrchardSchemas

/// A domain's directory: the one thing sign-in, the sweep, token validation and OAuth 2 grants ask about a user. LDAP
/// (`LDAPDirectory`) is the implementation today; another directory is another type behind this protocol, built in one
/// place (`ManagedDomains.directory(of:)`), with nothing to change where it is asked.
protocol Directory: Sendable {
    /// Whether `user` (a Managed Apple Account) has one enabled entry, and, when `password` is given, whether it is theirs.
    func check(user: String, password: String?) async -> DirectoryOutcome
    /// The entries (their lowercased DNs) the directory says are disabled; nil when it has no notion of disabled.
    func disabledEntries() async -> Result<Set<String>, DirectoryOutcome>?
    /// Every user entry (lowercased DNs), for the sweep's "no longer in the directory".
    func userEntries() async -> Result<Set<String>, DirectoryOutcome>
}

enum DirectoryOutcome: Error, Sendable, Equatable {
    case ok(dn: String)
    case notFound, ambiguous, wrongPassword, disabled
    /// No connection, a timeout: the user can try again later.
    case unreachable(String)
    /// The directory refused the search account, or some other error: the administrator's to fix.
    case failed(String)
}
