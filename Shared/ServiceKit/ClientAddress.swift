import Foundation
import HTTPTypes
import Hummingbird
import NIOConcurrencyHelpers
import NIOCore
import OrchardCore

extension RemoteAddressRequestContext {
    /// The client's address: the first entry of the TLS terminator's header (`forwardedFor`, from
    /// `ORCHARD_FORWARDED_FOR_HEADER`) when configured, else the socket's. The terminator must set that header, not
    /// pass on the client's.
    public func clientAddress(_ request: Request, forwardedFor: HTTPField.Name?) -> String {
        if let header = forwardedFor, let value = request.headers[header],
           let first = value.split(separator: ",").first?.trimmingCharacters(in: .whitespaces), !first.isEmpty, first.count <= 64,
           !first.containsControlCharacters {
            return first
        }
        return remoteAddress?.ipAddress ?? "unknown"
    }
}

extension EnvironmentReader {
    /// `ORCHARD_FORWARDED_FOR_HEADER`: the header in which the TLS terminator names the client's address, if any.
    public func forwardedForHeader() throws -> HTTPField.Name? {
        try optional("ORCHARD_FORWARDED_FOR_HEADER").map { name in
            guard let field = HTTPField.Name(name) else { throw ConfigurationError("ORCHARD_FORWARDED_FOR_HEADER is not a header name") }
            return field
        }
    }
}

/// At most `limit` events per key per minute, in this replica's memory: unauthenticated endpoints record activity for
/// what a client does (discovery, a refused enrollment request), and a flood from one address must not turn into as
/// many database rows. The answers themselves are never limited by it.
public final class ActivityBudget: Sendable {
    private let windows = NIOLockedValueBox<[String: (start: Date, count: Int)]>([:])
    public let limit: Int

    public init(limit: Int) { self.limit = limit }

    /// Whether `key` may record one more entry now.
    public func allow(_ key: String) -> Bool {
        windows.withLockedValue { windows in
            let now = Date()
            if windows.count > 50_000 { windows = windows.filter { now.timeIntervalSince($0.value.start) < 60 } }
            var window = windows[key] ?? (now, 0)
            if now.timeIntervalSince(window.start) >= 60 { window = (now, 0) }
            window.count += 1
            windows[key] = window
            return window.count <= limit
        }
    }
}
