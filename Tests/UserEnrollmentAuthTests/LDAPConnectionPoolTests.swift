import OrchardSchemas
import XCTest
@testable import UserEnrollmentAuth

/// Sign-in checks on kept directory connections, against the test command's real slapd (ORCHARD_TEST_LDAP_URL).
final class LDAPConnectionPoolTests: XCTestCase {
    override func setUp() {
        // As in the services (SwiftNIO ignores SIGPIPE process-wide on Linux): libldap writing to a connection the
        // directory closed gets EPIPE, not a signal that ends the process.
        signal(SIGPIPE, SIG_IGN)
    }

    private func directory() throws -> LDAPDirectory {
        guard let url = ProcessInfo.processInfo.environment["ORCHARD_TEST_LDAP_URL"], !url.isEmpty else {
            XCTFail("ORCHARD_TEST_LDAP_URL is not set: run the tests with ./Deploy/test.sh")
            throw XCTSkip("no test slapd")
        }
        return LDAPDirectory(settings: LDAPDirectorySettings(
            url: url, baseDN: "ou=people,dc=example,dc=com", userFilter: "(mail={user})", disabledFilter: "(employeeType=disabled)",
            bindDN: "uid=orchard,ou=people,dc=example,dc=com"), bindPassword: "orchard-search-secret")
    }

    /// Every outcome the directory gives leaves both connections for the next check: the pool does not grow.
    func testChecksReuseTheSameTwoConnections() async throws {
        let directory = try directory(), pool = LDAPConnectionPool()
        let first = await directory.check(user: "alice@byod.example.com", password: "alice-correct-horse", pool: pool)
        XCTAssertEqual(first, .ok(dn: "uid=alice,ou=people,dc=example,dc=com"))
        XCTAssertEqual(pool.idleCount, 2, "a search connection and a bind connection are kept")
        let wrong = await directory.check(user: "alice@byod.example.com", password: "not-her-password", pool: pool)
        XCTAssertEqual(wrong, .wrongPassword)
        let disabled = await directory.check(user: "bob@byod.example.com", password: "bob-correct-horse", pool: pool)
        XCTAssertEqual(disabled, .disabled)
        let disabledWrong = await directory.check(user: "bob@byod.example.com", password: "any guess at all", pool: pool)
        XCTAssertEqual(disabledWrong, .wrongPassword, "a disabled account is said to be disabled only to its password")
        let disabledNoPassword = await directory.check(user: "bob@byod.example.com", password: nil, pool: pool)
        XCTAssertEqual(disabledNoPassword, .disabled, "without a password (a token's recheck) the disabled filter still decides")
        let unknown = await directory.check(user: "nobody@byod.example.com", password: "x", pool: pool)
        XCTAssertEqual(unknown, .notFound)
        // After alice's bind failed on the kept bind connection, dave's succeeds on it, and a search still runs with
        // the search account's rights (the bind connection never searches).
        let dave = await directory.check(user: "dave@byod.example.com", password: "dave-correct-horse", pool: pool)
        XCTAssertEqual(dave, .ok(dn: "uid=dave,ou=people,dc=example,dc=com"))
        let empty = await directory.check(user: "dave@byod.example.com", password: "", pool: pool)
        XCTAssertEqual(empty, .wrongPassword, "an empty password is never a bind")
        XCTAssertEqual(pool.idleCount, 2)
    }

    /// A directory that dropped the kept connections (as servers do with idle ones) costs the user nothing: the
    /// check runs again on new connections, and a wrong password is still a wrong password.
    func testDroppedConnectionsAreReplaced() async throws {
        let directory = try directory(), pool = LDAPConnectionPool()
        let first = await directory.check(user: "alice@byod.example.com", password: "alice-correct-horse", pool: pool)
        XCTAssertEqual(first, .ok(dn: "uid=alice,ou=people,dc=example,dc=com"))
        pool.breakIdleConnections()
        let again = await directory.check(user: "alice@byod.example.com", password: "alice-correct-horse", pool: pool)
        XCTAssertEqual(again, .ok(dn: "uid=alice,ou=people,dc=example,dc=com"))
        pool.breakIdleConnections()
        let wrong = await directory.check(user: "alice@byod.example.com", password: "not-her-password", pool: pool)
        XCTAssertEqual(wrong, .wrongPassword)
        XCTAssertEqual(pool.idleCount, 2, "the broken connections were closed, the new ones kept")
    }

    /// Connections idle past the limit are closed, not reused.
    func testIdleConnectionsExpire() async throws {
        let directory = try directory(), pool = LDAPConnectionPool(maxIdle: .zero)
        let first = await directory.check(user: "dave@byod.example.com", password: "dave-correct-horse", pool: pool)
        XCTAssertEqual(first, .ok(dn: "uid=dave,ou=people,dc=example,dc=com"))
        XCTAssertNil(pool.take(LDAPConnectionPool.Key(url: directory.settings.url, caFile: nil, bindDN: nil, bindPassword: nil)))
        XCTAssertEqual(pool.idleCount, 0)
    }

    /// A directory that cannot be reached is `unreachable` (the page answers 503), with nothing kept.
    func testUnreachableDirectory() async throws {
        let settings = LDAPDirectorySettings(url: "ldap://127.0.0.1:1/", baseDN: "ou=people,dc=example,dc=com", userFilter: "(mail={user})",
                                             timeoutSeconds: 2)
        let pool = LDAPConnectionPool()
        let outcome = await LDAPDirectory(settings: settings, bindPassword: nil).check(user: "alice@byod.example.com", password: "x", pool: pool)
        guard case .unreachable = outcome else { return XCTFail("expected unreachable, got \(outcome)") }
        XCTAssertEqual(pool.idleCount, 0)
    }
}
