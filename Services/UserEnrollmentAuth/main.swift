import OrchardMessaging
import OrchardSchemas
import OrchardServiceKit

// user-enrollment-auth: account-driven enrollment: Managed Apple Account domains and service discovery
// (`/.well-known/com.apple.remotemanagement`); sign-in, access tokens and the BaseURL come next.
let runtime = await ServiceRuntime.bootstrap(ServiceDefinition(
    name: "user-enrollment-auth", defaultPort: 8084, schema: "user_enrollment_auth", migrations: UserEnrollmentAuthMigrations.all))

let domains = await runtime.startUp {
    let env = runtime.configuration.environment
    // Where devices reach this service (through the TLS terminator); the BaseURL derives from it.
    var url = try env.string("ORCHARD_ENROLLMENT_AUTH_PUBLIC_URL", default: "http://127.0.0.1:\(runtime.configuration.httpPort)")
    while url.hasSuffix("/") { url.removeLast() }
    guard url.hasPrefix("https://") || url.hasPrefix("http://") else {
        throw ConfigurationError("ORCHARD_ENROLLMENT_AUTH_PUBLIC_URL must be an http(s) URL")
    }
    return ManagedDomains(database: runtime.database, outbox: runtime.outbox, service: runtime.definition.name,
                          baseURL: "\(url)/enroll/account")
}

var routes = MessageRouter()
runtime.respond(SaveManagedDomain.self, on: &routes) { request, message in
    try await domains.save(request, correlationID: message.correlationID)
}
runtime.respond(ListManagedDomains.self, on: &routes) { _, _ in
    ListManagedDomains.Reply(items: try await domains.list())
}
runtime.respond(DeleteManagedDomain.self, on: &routes) { request, message in
    try await domains.delete(request, correlationID: message.correlationID)
}
let requests = runtime.consumer(topics: [SaveManagedDomain.topic], handler: routes.handler)

let router = runtime.makeRouter()
DiscoveryRoutes(domains: domains).add(to: router)
await runtime.run(router: router, services: [requests])
