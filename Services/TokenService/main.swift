import Foundation
import OrchardCrypto
import OrchardSchemas
import OrchardMessaging
import OrchardServiceKit

// token-service: issues and checks security tokens and pairing tokens. It talks to no device;
// it answers requests from orchard.token-requests.v1.
let runtime = await ServiceRuntime.bootstrap(ServiceDefinition(
    name: "token-service", defaultPort: 8081, schema: "token_service", migrations: TokenServiceMigrations.all))

// A setting outside its range stops the service at start-up, naming the variable (never a silent default).
let issuer = await runtime.startUp {
    SecurityTokenIssuer(database: runtime.database, outbox: runtime.outbox,
                        timeToLive: .seconds(try runtime.configuration.environment.int("ORCHARD_SECURITY_TOKEN_TTL_SECONDS",
                                                                                        default: 300, range: 10...3600)),
                        service: runtime.definition.name)
}
let pairing = await runtime.startUp {
    let kek = try runtime.requireKeyEncryptionKey("keeps its pairing-token key encrypted with it")
    return PairingTokens(database: runtime.database, outbox: runtime.outbox,
                         key: try await PairingTokens.loadKey(database: runtime.database, box: try SecretBox(key: kek)),
                         timeToLive: TimeInterval(try runtime.configuration.environment.int(
                             "ORCHARD_PAIRING_TOKEN_TTL_SECONDS", default: 600, range: 10...3600)),
                         service: runtime.definition.name)
}

var routes = MessageRouter()
runtime.respond(IssuePairingToken.self, on: &routes) { request, message in
    try await pairing.issue(request, correlationID: message.correlationID)
}
runtime.respond(RedeemPairingToken.self, on: &routes) { request, message in
    try await pairing.redeem(request, correlationID: message.correlationID)
}
runtime.respond(IssueSecurityToken.self, on: &routes) { request, message in
    try await issuer.issue(request, correlationID: message.correlationID)
}
let requests = runtime.consumer(topics: [IssueSecurityToken.topic], handler: routes.handler)

let pruner = RetentionPruner(database: runtime.database, rules: TokenServiceMigrations.pruning, logger: runtime.logger)
await runtime.run(router: runtime.makeRouter(), services: [requests, pruner])
