import OrchardCrypto
import OrchardMessaging
import OrchardSchemas
import OrchardServiceKit

// abm-sync: owns the Apple Business Manager (and School Manager) server tokens, and will mirror device
// assignments and ADE profiles. Answers the admin API's requests from orchard.abm-requests.v1.
let runtime = await ServiceRuntime.bootstrap(ServiceDefinition(
    name: "abm-sync", defaultPort: 8083, schema: "abm_sync", migrations: ABMSyncMigrations.all))

let tokens = await runtime.startUp {
    let kek = try runtime.requireKeyEncryptionKey("keeps the ABM server tokens' private keys and credentials encrypted with it")
    return ServerTokens(database: runtime.database, box: try SecretBox(key: kek), outbox: runtime.outbox,
                        service: runtime.definition.name)
}

var routes = MessageRouter()
routes.respond(RequestResponder(CreateABMToken.self, producer: runtime.producer, logger: runtime.logger) { request, message in
    try await tokens.create(request, correlationID: message.correlationID)
})
routes.respond(RequestResponder(UploadABMServerToken.self, producer: runtime.producer, logger: runtime.logger) { request, message in
    try await tokens.upload(request, correlationID: message.correlationID)
})
routes.respond(RequestResponder(ListABMTokens.self, producer: runtime.producer, logger: runtime.logger) { _, _ in
    ListABMTokens.Reply(items: try await tokens.list())
})
let requests = runtime.consumer(topics: [CreateABMToken.topic], handler: routes.handler)

await runtime.run(router: runtime.makeRouter(), services: [requests])
