import Foundation
import OrchardStorage
import XCTest

/// Failed sign-ins counted per key in PostgreSQL (both sign-in pages use it).
final class FailureThrottleTests: XCTestCase {
    func makeThrottle(window: TimeInterval = 900, lockout: TimeInterval = 900) async throws -> (FailureThrottle, Database) {
        guard let url = ProcessInfo.processInfo.environment["ORCHARD_DATABASE_URL"] else {
            XCTFail("ORCHARD_DATABASE_URL is not set: run the tests with ./Deploy/test.sh")
            throw XCTSkip("no database")
        }
        let db = try Database(conninfo: url, schema: "throttle_test_\(UUID().uuidString.prefix(8).lowercased())", maxConnections: 2)
        try await db.migrate([Migration(1, "failures", FailureThrottle.tableDefinition())])
        return (FailureThrottle(database: db, window: window, lockout: lockout), db)
    }

    func testLimitLocksAndSuccessClears() async throws {
        let (throttle, db) = try await makeThrottle()
        for _ in 0..<4 { try await throttle.fail("account:a", limit: 5) }
        let unlocked = try await throttle.isLocked("account:a")
        XCTAssertFalse(unlocked)
        try await throttle.fail("account:a", limit: 5)
        let until = try await throttle.lockedUntil(["address:x", "account:a"])
        XCTAssertEqual(try XCTUnwrap(until).timeIntervalSinceNow, 900, accuracy: 60)
        try await throttle.clear("account:a")
        let cleared = try await throttle.isLocked("account:a")
        XCTAssertFalse(cleared)
        await db.shutdown()
    }

    /// Hardening issue 18, item 7: after a lock ends, the next typo starts a new count instead of locking again.
    func testTheFirstFailureAfterALockEndsDoesNotLockAgain() async throws {
        let (throttle, db) = try await makeThrottle(window: 3600, lockout: 900)
        for _ in 0..<5 { try await throttle.fail("account:b", limit: 5) }
        let locked = try await throttle.isLocked("account:b")
        XCTAssertTrue(locked)
        // The lock ends (its time moved into the past, as 15 minutes would), within the same hour-long window.
        try await db.query("UPDATE sign_in_failures SET locked_until = now() - interval '1 second' WHERE key = 'account:b'")
        try await throttle.fail("account:b", limit: 5)
        let relocked = try await throttle.isLocked("account:b")
        XCTAssertFalse(relocked, "one typo after the lock ended does not lock the account again")
        for _ in 0..<4 { try await throttle.fail("account:b", limit: 5) }
        let lockedAgain = try await throttle.isLocked("account:b")
        XCTAssertTrue(lockedAgain, "five new failures do")
        await db.shutdown()
    }
}
