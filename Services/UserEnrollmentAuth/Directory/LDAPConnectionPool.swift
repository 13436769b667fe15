import COrchardLDAP
import Foundation
import Synchronization

/// Directory connections kept open between sign-ins, so that a sign-in costs its two searches and the user's bind,
/// not also a TCP (and, for ldaps, TLS) set-up and the search account's bind. Two kinds per directory: connections
/// bound as the search account, which only search, and connections that only carry users' binds (each bind replaces
/// the last; they never search, so a user's rights never reach a search). A connection idle for longer than
/// `maxIdle` is closed rather than reused (directories drop idle connections: Active Directory after 15 minutes); one
/// the server closed anyway is noticed by the next operation, and the check runs again on new connections.
final class LDAPConnectionPool: Sendable {
    struct Key: Hashable, Sendable {
        let url: String
        let caFile: String?
        /// The search account for searching connections; nil for users' bind connections.
        let bindDN: String?
        let bindPassword: String?
    }

    /// An open libldap connection. Used by one thread at a time: it is either in the pool or with one caller.
    struct Connection: @unchecked Sendable {
        let handle: UnsafeMutableRawPointer
    }

    static let shared = LDAPConnectionPool()

    private let idle = Mutex<[Key: [(connection: Connection, since: ContinuousClock.Instant)]]>([:])
    private let maxIdle: Duration
    private let maxIdlePerKey: Int

    init(maxIdle: Duration = .seconds(60), maxIdlePerKey: Int = 16) {
        self.maxIdle = maxIdle
        self.maxIdlePerKey = maxIdlePerKey
    }

    /// A kept connection for `key`, or nil (the caller opens one).
    func take(_ key: Key) -> Connection? {
        let now = ContinuousClock.now
        var expired: [Connection] = []
        let taken: Connection? = idle.withLock { pool in
            var found: Connection?
            while var list = pool[key], let last = list.popLast() {
                pool[key] = list.isEmpty ? nil : list
                if now - last.since < maxIdle { found = last.connection; break }
                expired.append(last.connection)
            }
            return found
        }
        expired.forEach { orc_ldap_close($0.handle) }
        return taken
    }

    /// Keeps `connection` for the next caller (closes it when `key` already has enough waiting), and closes any
    /// connection that has been idle too long, of any key (a changed search password leaves its old key unused).
    func give(_ connection: Connection, _ key: Key) {
        let now = ContinuousClock.now
        var closing: [Connection] = []
        idle.withLock { pool in
            for (k, list) in pool {
                let fresh = list.filter { now - $0.since < maxIdle }
                if fresh.count != list.count {
                    closing += list.filter { now - $0.since >= maxIdle }.map(\.connection)
                    pool[k] = fresh.isEmpty ? nil : fresh
                }
            }
            if pool[key, default: []].count < maxIdlePerKey {
                pool[key, default: []].append((connection, now))
            } else {
                closing.append(connection)
            }
        }
        closing.forEach { orc_ldap_close($0.handle) }
    }

    /// How many connections wait in the pool (all keys).
    var idleCount: Int { idle.withLock { $0.values.reduce(0) { $0 + $1.count } } }

    /// Shuts the socket of every waiting connection, as a directory that drops idle connections does (tests).
    func breakIdleConnections() {
        idle.withLock { pool in pool.values.forEach { list in list.forEach { _ = orc_ldap_break($0.connection.handle) } } }
    }
}
