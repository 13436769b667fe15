import AsyncHTTPClient
import Foundation
import NIOSSL
import OrchardCrypto
import OrchardMessaging
import OrchardSchemas
import OrchardServiceKit
import ServiceLifecycle

// abm-sync: owns the Apple Business Manager (and School Manager) server tokens, mirrors the devices
// ABM assigns to them, defines and assigns ADE profiles. Answers the admin API's requests from orchard.abm-requests.v1.
let runtime = await ServiceRuntime.bootstrap(ServiceDefinition(
    name: "abm-sync", defaultPort: 8083, schema: "abm_sync", migrations: ABMSyncMigrations.all))

let (tokens, businessAPI, appsAndBooks, appMetadata) = await runtime.startUp {
    let env = runtime.configuration.environment
    let kek = try runtime.requireKeyEncryptionKey("keeps the ABM server tokens' private keys and credentials encrypted with it")
    // Apple's device-assignment API; http:// only for a local stand-in, a CA file for an https:// one (as for APNs).
    let appleURL = try env.string("ORCHARD_ABM_URL", default: "https://mdmenrollment.apple.com")
    guard appleURL.hasPrefix("https://") || appleURL.hasPrefix("http://") else {
        throw ConfigurationError("ORCHARD_ABM_URL must be an http:// or https:// URL, not \(appleURL)")
    }
    var tls = TLSConfiguration.makeClientConfiguration()
    if let caFile = env.optional("ORCHARD_ABM_CA_PEM") {
        let roots = try Certificate.parsePEM(Array(try Data(contentsOf: URL(fileURLWithPath: caFile))))
        tls.trustRoots = .certificates(try roots.map { try NIOSSLCertificate(bytes: $0.der, format: .der) })
    }
    let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: HTTPClient.Configuration(tlsConfiguration: tls))
    var tokens = ServerTokens(database: runtime.database, box: try SecretBox(key: kek), outbox: runtime.outbox,
                              service: runtime.definition.name, appleURL: appleURL, http: http)
    // Account-driven enrollment's discovery URL (user-enrollment-auth's), registered with ABM for every connected server.
    var enrollmentAuth = try env.string("ORCHARD_ENROLLMENT_AUTH_PUBLIC_URL", default: "http://127.0.0.1:8084")
    while enrollmentAuth.hasSuffix("/") { enrollmentAuth.removeLast() }
    tokens.discoveryURL = "\(enrollmentAuth)/.well-known/com.apple.remotemanagement"
    // The Apple Business Manager API (OAuth 2 client credentials): its API and token endpoint.
    func url(_ name: String, _ fallback: String) throws -> String {
        var value = try env.string(name, default: fallback)
        guard value.hasPrefix("https://") || value.hasPrefix("http://") else { throw ConfigurationError("\(name) must be an http:// or https:// URL, not \(value)") }
        while value.hasSuffix("/") { value.removeLast() }
        return value
    }
    let businessAPI = BusinessAPI(database: runtime.database, box: try SecretBox(key: kek), outbox: runtime.outbox, service: runtime.definition.name,
                                  http: http, apiURL: try url("ORCHARD_ABM_API_URL", "https://api-business.apple.com"),
                                  tokenURL: try url("ORCHARD_ABM_API_TOKEN_URL", "https://account.apple.com/auth/oauth2/token"))
    // Apps and Books (app licences): Apple's API, or a stand-in.
    var appsAndBooks = AppsAndBooks(database: runtime.database, box: try SecretBox(key: kek), outbox: runtime.outbox,
                                    service: runtime.definition.name, http: http,
                                    baseURL: try url("ORCHARD_APPS_BOOKS_URL", "https://vpp.itunes.apple.com/mdm/v2"))
    let checker = tokens
    appsAndBooks.checkOrganization = { id in _ = try? await checker.check(CheckABMToken(id: id, actor: "orchard:apps-books"), correlationID: nil) }
    // App metadata (watch bundle ids, device families): Apple's Apps and Books Metadata API with the MDM vendor's developer
    // key (a P-256 key from Apple's developer account, its key id and team id), or none: lookups are then refused.
    var developerKey: AppMetadata.DeveloperKey?
    if let file = env.optional("ORCHARD_APPS_METADATA_KEY_FILE") {
        let pem = try Data(contentsOf: URL(fileURLWithPath: file))
        guard let key = try? PrivateKey(pem: Array(pem)), key.isP256 else {
            throw ConfigurationError("ORCHARD_APPS_METADATA_KEY_FILE must be a P-256 private key in PEM (the .p8 file Apple's developer account gives)")
        }
        let keyID = try env.string("ORCHARD_APPS_METADATA_KEY_ID"), teamID = try env.string("ORCHARD_APPS_METADATA_TEAM_ID")
        guard keyID.count == 10, teamID.count == 10, (keyID + teamID).allSatisfy({ $0.isASCII && ($0.isUppercase || $0.isNumber) }) else {
            throw ConfigurationError("ORCHARD_APPS_METADATA_KEY_ID and ORCHARD_APPS_METADATA_TEAM_ID are Apple's 10-character identifiers")
        }
        developerKey = .init(key: key, keyID: keyID, teamID: teamID)
    }
    let appMetadata = AppMetadata(database: runtime.database, box: try SecretBox(key: kek), http: http,
                                  baseURL: try url("ORCHARD_APPS_METADATA_URL", "https://api.ent.apple.com/v1"), developerKey: developerKey)
    return (tokens, businessAPI, appsAndBooks, appMetadata)
}

let assigner = Assigner(tokens: tokens, database: runtime.database, outbox: runtime.outbox)
let profiles = ADEProfiles(tokens: tokens, assigner: assigner, database: runtime.database, outbox: runtime.outbox)
let sync = await DeviceSync(tokens: tokens, database: runtime.database, outbox: runtime.outbox, service: runtime.definition.name,
                            instance: runtime.configuration.instanceID, assigner: assigner,
                            lease: .seconds(runtime.startUp {
                                try runtime.configuration.environment.int("ORCHARD_ABM_SYNC_LEASE_SECONDS", default: 45, range: 5...600)
                            }))
// Hourly by default; 0 turns the schedule off (syncs on demand only, as the test stack runs).
let syncInterval = await runtime.startUp {
    try runtime.configuration.environment.int("ORCHARD_ABM_SYNC_INTERVAL_SECONDS", default: 3600, range: 0...86400)
}
guard syncInterval == 0 || syncInterval >= 60 else {
    runtime.logger.critical("ORCHARD_ABM_SYNC_INTERVAL_SECONDS must be 0 (off) or in 60...86400, got \(syncInterval)")
    exit(1)
}

var routes = MessageRouter()
let maid = ManagedAppleIDTokens(tokens: tokens, database: runtime.database)
runtime.respond(SignManagedAppleIDToken.self, on: &routes) { request, message in
    try await maid.sign(request, correlationID: message.correlationID)
}
runtime.respond(SyncABMToken.self, on: &routes) { request, message in
    try await sync.sync(request, correlationID: message.correlationID)
}
runtime.respond(CreateABMToken.self, on: &routes) { request, message in
    try await tokens.create(request, correlationID: message.correlationID)
}
runtime.respond(UploadABMServerToken.self, on: &routes) { request, message in
    try await tokens.upload(request, correlationID: message.correlationID)
}
runtime.respond(RotateABMTokenKey.self, on: &routes) { request, message in
    try await tokens.rotate(request, correlationID: message.correlationID)
}
runtime.respond(CheckABMToken.self, on: &routes) { request, message in
    try await tokens.check(request, correlationID: message.correlationID)
}
runtime.respond(ListABMTokens.self, on: &routes) { _, _ in
    ListABMTokens.Reply(items: try await tokens.list())
}
runtime.respond(DefineADEProfile.self, on: &routes) { request, message in
    try await profiles.define(request, correlationID: message.correlationID)
}
runtime.respond(ListADEProfiles.self, on: &routes) { _, _ in
    ListADEProfiles.Reply(items: try await profiles.list())
}
runtime.respond(SetDefaultADEProfile.self, on: &routes) { request, message in
    try await profiles.makeDefault(request, correlationID: message.correlationID)
}
runtime.respond(AssignADEProfile.self, on: &routes) { request, message in
    try await profiles.assign(request, correlationID: message.correlationID)
}
runtime.respond(ListABMDevices.self, on: &routes) { request, _ in
    ListABMDevices.Reply(items: try await profiles.devices(request))
}
runtime.respond(ABMDeviceAction.self, on: &routes) { request, message in
    try await profiles.act(request, correlationID: message.correlationID)
}
runtime.respond(ConfirmADEProfilePush.self, on: &routes) { request, _ in
    try await profiles.profilePush(request)
}
runtime.respond(SaveABMAPIAccount.self, on: &routes) { request, message in
    try await businessAPI.save(request, correlationID: message.correlationID)
}
runtime.respond(ListABMAPIAccounts.self, on: &routes) { _, _ in
    ListABMAPIAccounts.Reply(items: try await businessAPI.list())
}
runtime.respond(SyncABMInventory.self, on: &routes) { request, message in
    try await businessAPI.syncInventory(request, correlationID: message.correlationID)
}
runtime.respond(ListABMInventory.self, on: &routes) { request, _ in
    try await businessAPI.inventory(request)
}
runtime.respond(ListABMServers.self, on: &routes) { request, _ in
    try await businessAPI.servers(request)
}
runtime.respond(ABMAssignmentJob.self, on: &routes) { request, message in
    try await businessAPI.assignment(request, correlationID: message.correlationID)
}
runtime.respond(UploadContentToken.self, on: &routes) { request, message in
    try await appsAndBooks.upload(request, correlationID: message.correlationID)
}
runtime.respond(ListContentTokens.self, on: &routes) { _, _ in
    ListContentTokens.Reply(items: try await appsAndBooks.list())
}
runtime.respond(AssociateAppLicences.self, on: &routes) { request, message in
    try await appsAndBooks.associate(request, correlationID: message.correlationID)
}
runtime.respond(LookUpAppMetadata.self, on: &routes) { request, _ in
    try await appMetadata.lookUp(request)
}
await runtime.startUp { try await profiles.announceSignInRequirements() }
let requests = runtime.consumer(topics: [CreateABMToken.topic], handler: routes.handler)

let schedule: [any Service] = syncInterval == 0 ? [] : [
    SyncSchedule(sync: sync, database: runtime.database, interval: .seconds(syncInterval), logger: runtime.logger),
]
await runtime.run(router: runtime.makeRouter(),
                  services: [requests, ExpiryWatch(tokens: tokens, logger: runtime.logger)] + schedule)
