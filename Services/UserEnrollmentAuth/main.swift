import Foundation
import HTTPTypes
import Hummingbird
import OrchardCrypto
import OrchardMessaging
import OrchardSchemas
import OrchardServiceKit
import OrchardStorage

// user-enrollment-auth: account-driven enrollment. Managed Apple Account domains and their directories, service
// discovery (`/.well-known/com.apple.remotemanagement`), the sign-in page and the access tokens it issues; the
// gateway serves the BaseURL and asks this service about domains and tokens over `orchard.account-requests.v1`.
let runtime = await ServiceRuntime.bootstrap(ServiceDefinition(
    name: "user-enrollment-auth", defaultPort: 8084, schema: "user_enrollment_auth", migrations: UserEnrollmentAuthMigrations.all))

struct AccountServices {
    let domains: ManagedDomains
    let tokens: AccountTokens
    let signIn: SignInRoutes
    let activity: AccountActivity
    let oauth2: OAuth2Routes
}

let services = await runtime.startUp { () throws -> AccountServices in
    let env = runtime.configuration.environment
    func url(_ name: String, default value: String) throws -> String {
        var url = try env.string(name, default: value)
        while url.hasSuffix("/") { url.removeLast() }
        guard url.hasPrefix("https://") || url.hasPrefix("http://") else { throw ConfigurationError("\(name) must be an http(s) URL") }
        return url
    }
    // Where devices reach this service (the sign-in page) and the gateway (the BaseURL), through the TLS terminator.
    let ownURL = try url("ORCHARD_ENROLLMENT_AUTH_PUBLIC_URL", default: "http://127.0.0.1:\(runtime.configuration.httpPort)")
    let gatewayURL = try url("ORCHARD_PUBLIC_URL", default: "http://127.0.0.1:8080")
    let kek = try runtime.requireKeyEncryptionKey("seals directory passwords and keys its sign-in forms with it")
    var domains = ManagedDomains(database: runtime.database, outbox: runtime.outbox, service: runtime.definition.name,
                                 gatewayURL: gatewayURL, secrets: try SecretBox(key: kek))
    domains.discoveryURL = "\(ownURL)/.well-known/com.apple.remotemanagement"
    domains.enrollmentSSOURL = "\(ownURL)/\(EnrollmentSSO.path)"
    let activity = AccountActivity(database: runtime.database, outbox: runtime.outbox, service: runtime.definition.name)
    let oidc = OIDCProviders()
    let challenges = AccountChallenges(ownURL: ownURL, clientID: try env.string("ORCHARD_OAUTH2_CLIENT_ID", default: "orchard-enrollment"),
                                       oidc: oidc)
    let tokens = AccountTokens(database: runtime.database, outbox: runtime.outbox, domains: domains, service: runtime.definition.name,
                               lifetime: TimeInterval(try env.int("ORCHARD_ACCOUNT_TOKEN_LIFETIME_SECONDS", default: 30 * 86400, range: 60...(400 * 86400))),
                               challenges: challenges, oidc: oidc, logger: runtime.logger,
                               recheck: TimeInterval(try env.int("ORCHARD_DIRECTORY_RECHECK_SECONDS", default: 30, range: 1...300)))
    let accountLimit = try env.int("ORCHARD_SIGN_IN_ACCOUNT_FAILURES", default: 5, range: 1...1000)
    let addressLimit = try env.int("ORCHARD_SIGN_IN_ADDRESS_FAILURES", default: 20, range: 1...100_000)
    let forwarded = try env.forwardedForHeader()
    let grants = OAuthGrants(database: runtime.database, tokens: tokens, domains: domains, activity: activity,
                             accessLifetime: TimeInterval(try env.int("ORCHARD_OAUTH2_ACCESS_TOKEN_SECONDS", default: 3600, range: 60...86400)),
                             refreshLifetime: TimeInterval(try env.int("ORCHARD_OAUTH2_REFRESH_TOKEN_SECONDS", default: 90 * 86400,
                                                                       range: 3600...(400 * 86400))))
    let signIn = SignInRoutes(database: runtime.database, activity: activity, domains: domains, tokens: tokens, grants: grants,
                              challenges: challenges, throttle: FailureThrottle(database: runtime.database),
                              accountLimit: accountLimit, addressLimit: addressLimit,
                              csrfKey: Digest.hmacSHA256(key: kek, data: Array("orchard sign-in csrf".utf8)),
                              secureCookies: ownURL.hasPrefix("https://"), forwardedFor: forwarded, logger: runtime.logger)
    return AccountServices(domains: domains, tokens: tokens, signIn: signIn, activity: activity,
                           oauth2: OAuth2Routes(signIn: signIn, grants: grants, challenges: challenges))
}
let domains = services.domains, tokens = services.tokens

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
runtime.respond(DescribeAccountEnrollment.self, on: &routes) { request, _ in
    guard let record = try await domains.find(try ManagedDomains.canonical(request.domain)) else {
        throw RequestRefused(code: "account-domain.unknown", message: "this organisation does not enroll devices for \(request.domain.prefix(253))",
                             httpStatus: 404)
    }
    return .init(domain: record.view.domain, mode: record.view.mode, minimumOS: record.view.minimumOS,
                 challenge: try await tokens.challenges.challenge(for: record), enrollmentSSOURL: record.view.enrollmentSSOURL)
}
runtime.respond(ValidateAccountToken.self, on: &routes) { request, message in
    try await tokens.validate(request, correlationID: message.correlationID)
}
runtime.respond(RevokeAccountTokens.self, on: &routes) { request, message in
    .init(revoked: try await tokens.revoke(user: request.managedAppleID, actor: request.actor, reason: "revoked by \(request.actor)",
                                           correlationID: message.correlationID))
}
let requests = runtime.consumer(topics: [SaveManagedDomain.topic], handler: routes.handler)
let sweep = DirectorySweep(database: runtime.database, domains: domains, tokens: tokens, service: runtime.definition.name,
                           interval: .seconds(Int64(tokens.recheck)), logger: runtime.logger)

let router = runtime.makeRouter(AccountRequestContext.self)
DiscoveryRoutes(domains: domains, activity: services.activity, forwardedFor: services.signIn.forwardedFor).add(to: router)
services.signIn.add(to: router)
services.oauth2.add(to: router)
EnrollmentSSO.add(to: router, domains: domains)
await runtime.run(router: router, services: [requests, sweep])
