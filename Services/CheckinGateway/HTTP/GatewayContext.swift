import Hummingbird

/// The request context of the gateway: which admin key, if any, authenticated the request.
struct GatewayContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    var adminKey: AdminKey?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }
}
