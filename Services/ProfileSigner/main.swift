import Foundation
import OrchardCrypto
import OrchardSchemas
import OrchardMessaging
import OrchardServiceKit

// profile-signer: builds and CMS-signs enrollment profiles, and issues device identities from its own
// CA (or points devices at a SCEP or ACME server). Answers requests from orchard.profile-requests.v1.
let runtime = await ServiceRuntime.bootstrap(ServiceDefinition(
    name: "profile-signer", defaultPort: 8082, schema: "profile_signer", migrations: ProfileSignerMigrations.all))
let env = runtime.configuration.environment

let builder = await runtime.startUp {
    let kek = try runtime.requireKeyEncryptionKey("keeps its CA key encrypted with it")
    let source: IdentitySource
    switch try env.string("ORCHARD_IDENTITY_SOURCE", default: "ca") {
    case "ca": source = .certificateAuthority
    case "scep": source = .scep(url: try env.string("ORCHARD_SCEP_URL"), challenge: env.optional("ORCHARD_SCEP_CHALLENGE"))
    case "acme": source = .acme(directoryURL: try env.string("ORCHARD_ACME_DIRECTORY_URL"))
    case let other: throw ConfigurationError("ORCHARD_IDENTITY_SOURCE must be ca, scep or acme, not \(other)")
    }
    guard let keyType = DeviceKeyPool.KeyType(rawValue: try env.string("ORCHARD_DEVICE_KEY_TYPE", default: "rsa2048")) else {
        throw ConfigurationError("ORCHARD_DEVICE_KEY_TYPE must be rsa2048 or p256")
    }
    let anchors = try env.optional("ORCHARD_ANCHOR_CERTIFICATES").map {
        try Certificate.parsePEM(Array(try Data(contentsOf: URL(fileURLWithPath: $0))))
    } ?? []
    let authorities = try await Authorities.loadOrCreate(
        database: runtime.database, box: try SecretBox(key: kek),
        organization: try env.string("ORCHARD_ORGANIZATION", default: "Orchard"))
    let pool = DeviceKeyPool(type: keyType, target: try env.int("ORCHARD_DEVICE_KEY_POOL_SIZE", default: 32, range: 0...10_000))
    await pool.startRefill()
    guard let watchKeyType = DeviceKeyPool.KeyType(rawValue: try env.string("ORCHARD_WATCH_KEY_TYPE", default: "p256")) else {
        throw ConfigurationError("ORCHARD_WATCH_KEY_TYPE must be rsa2048 or p256")
    }
    return ProfileBuilder(authorities: authorities, keys: pool, watchKeyType: watchKeyType, identitySource: source, anchors: anchors,
                          database: runtime.database, outbox: runtime.outbox, service: runtime.definition.name)
}

var routes = MessageRouter()
runtime.respond(BuildEnrollmentProfile.self, on: &routes) { request, message in
    try await builder.build(request, correlationID: message.correlationID)
}
runtime.respond(DescribeSigningIdentities.self, on: &routes) { _, _ in
    try builder.describe()
}
let requests = runtime.consumer(topics: [BuildEnrollmentProfile.topic], handler: routes.handler)

await runtime.run(router: runtime.makeRouter(), services: [requests])
// No key generation may be running when the process exits (OpenSSL's exit-time cleanup would race it).
await builder.keys.stop()
