import Foundation

/// The one retry policy of Orchard's clients of other HTTP services (ABM's device-assignment API and Apple Business
/// Manager API in abm-sync, APNs in the gateway): at most `attempts` tries; before the next, the server's
/// `Retry-After` when it gave one (1 to 300 s), otherwise `base`, doubled each time up to `cap`, with up to a quarter
/// more at random so that replicas retrying together spread out.
public struct RetryPolicy: Sendable {
    public var attempts: Int
    public var base: Duration
    public var cap: Duration

    public init(attempts: Int = 5, base: Duration = .seconds(1), cap: Duration = .seconds(60)) {
        self.attempts = attempts
        self.base = base
        self.cap = cap
    }

    /// Whether a failed attempt `attempt` (1 for the first) may be followed by another.
    public func allowsRetry(after attempt: Int) -> Bool { attempt < attempts }

    /// How long to wait after failed attempt `attempt` (1 for the first).
    public func delay(after attempt: Int, retryAfter: Duration? = nil) -> Duration {
        if let retryAfter { return retryAfter }
        let doubled = base * Int(1 << min(max(attempt - 1, 0), 20))
        let wait = min(doubled, cap)
        return wait + wait * Double.random(in: 0..<0.25)
    }

    /// A `Retry-After` header given in seconds, clamped to 1…300 s; nil when absent or an HTTP date (then backoff applies).
    public static func retryAfter(_ header: String?) -> Duration? {
        guard let header, let seconds = Int(header.trimmingCharacters(in: .whitespaces)) else { return nil }
        return .seconds(min(max(seconds, 1), 300))
    }
}
