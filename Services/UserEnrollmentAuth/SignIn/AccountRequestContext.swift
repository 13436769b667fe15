import Foundation
import HTTPTypes
import Hummingbird
import NIOConcurrencyHelpers
import NIOCore

/// user-enrollment-auth's request context: the client's address, for rate limiting sign-ins per address.
struct AccountRequestContext: RequestContext, RemoteAddressRequestContext {
    var coreContext: CoreRequestContextStorage
    let remoteAddress: SocketAddress?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}

extension AccountRequestContext {
    /// The client's address: the first entry of the TLS terminator's header (`forwardedFor`) when configured, else the socket's.
    func clientAddress(_ request: Request, forwardedFor: HTTPField.Name?) -> String {
        if let header = forwardedFor, let value = request.headers[header],
           let first = value.split(separator: ",").first?.trimmingCharacters(in: .whitespaces), !first.isEmpty, first.count <= 64 {
            return first
        }
        return remoteAddress?.ipAddress ?? "unknown"
    }
}

/// At most `limit` events per key per minute, in this replica's memory: unauthenticated endpoints (discovery) record
/// activity for what a device does, and a flood from one address must not turn into as many database rows.
final class ActivityBudget: Sendable {
    private let windows = NIOLockedValueBox<[String: (start: Date, count: Int)]>([:])
    let limit: Int

    init(limit: Int) { self.limit = limit }

    /// Whether `key` may record one more entry now.
    func allow(_ key: String) -> Bool {
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
