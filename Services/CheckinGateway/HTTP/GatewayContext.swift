import Hummingbird
import NIOCore

/// The request context of the gateway: which admin key, if any, authenticated the request, and the client's socket
/// address (per-address limits of unauthenticated endpoints; `clientAddress` prefers the TLS terminator's header).
struct GatewayContext: RequestContext, RemoteAddressRequestContext {
    var coreContext: CoreRequestContextStorage
    var adminKey: AdminKey?
    let remoteAddress: SocketAddress?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}

/// An API key's identity and what it may do: `admin` (everything) or `read` (GET only).
struct AdminKey: Sendable {
    let id: String
    let name: String
    let scopes: Set<String>

    var actor: String { "admin:\(name)" }
}
