import OrchardCore
import XCTest

/// The one retry policy of the HTTP clients (ABM, the ABM API, APNs).
final class RetryPolicyTests: XCTestCase {
    func testBackoffDoublesUpToTheCapWithAtMostAQuarterMore() {
        let policy = RetryPolicy(attempts: 5, base: .seconds(1), cap: .seconds(60))
        for (attempt, base) in [(1, 1.0), (2, 2.0), (3, 4.0), (7, 60.0), (40, 60.0)] {
            for _ in 0..<50 {
                let seconds = Double(policy.delay(after: attempt).components.seconds)
                    + Double(policy.delay(after: attempt).components.attoseconds) / 1e18
                XCTAssertGreaterThanOrEqual(seconds, base, "attempt \(attempt)")
                XCTAssertLessThan(seconds, base * 1.25 + 1e-9, "attempt \(attempt)")
            }
        }
        XCTAssertTrue(policy.allowsRetry(after: 4))
        XCTAssertFalse(policy.allowsRetry(after: 5))
    }

    func testRetryAfterWinsAndIsClamped() {
        let policy = RetryPolicy()
        XCTAssertEqual(policy.delay(after: 3, retryAfter: .seconds(7)), .seconds(7))
        XCTAssertEqual(RetryPolicy.retryAfter("7"), .seconds(7))
        XCTAssertEqual(RetryPolicy.retryAfter(" 0 "), .seconds(1))
        XCTAssertEqual(RetryPolicy.retryAfter("86400"), .seconds(300))
        XCTAssertNil(RetryPolicy.retryAfter("Wed, 21 Oct 2015 07:28:00 GMT"), "a date: backoff applies")
        XCTAssertNil(RetryPolicy.retryAfter(nil))
        XCTAssertNil(RetryPolicy.retryAfter("-5x"))
    }
}
