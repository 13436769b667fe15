import Hummingbird

/// The request context of the gateway: which admin key, if any, authenticated the request.
struct GatewayContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    var adminKey: AdminKey?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }
}

/// An API key's identity and what it may do: `admin` (everything) or `read` (GET only).
struct AdminKey: Sendable {
    let id: String
    let name: String
    let scopes: Set<String>

    var actor: String { "admin:\(name)" }
}
