import Foundation
import OrchardMessages
import OrchardMessaging
import OrchardServiceKit

// checkin-gateway: the device-facing MDM endpoints (check-in, command channel, enrollment profiles),
// the command queue, APNs push, declarative management, and the admin API.
let runtime = await ServiceRuntime.bootstrap(ServiceDefinition(
    name: "checkin-gateway", defaultPort: 8080, schema: "checkin_gateway", migrations: CheckinGatewayMigrations.all),
    needsRequests: true)

let configuration = await runtime.startUp {
    let configuration = try GatewayConfiguration(runtime)
    if let key = configuration.bootstrapAdminKey { try await APIKeys.installBootstrap(key, database: runtime.database) }
    return configuration
}
let database = runtime.database, requests = runtime.requests!, service = runtime.definition.name
let timeout = runtime.configuration.requestTimeout

let pushCertificates = PushCertificates(database: database, secrets: configuration.secrets)
let pusher = APNsPusher(database: database, certificates: pushCertificates, baseURL: configuration.apnsURL,
                        trustRoots: configuration.apnsTrustRoots, logger: runtime.logger)
let pushTopic: @Sendable () async -> String? = { await pusher.topic() }
let identities = DeviceIdentityVerifier(database: database, extraRoots: configuration.extraDeviceRoots,
                                        clientCertificateHeader: configuration.clientCertificateHeader)
let declarations = DeclarationService(database: database, outbox: runtime.outbox, service: service)
let watchEnrollment = WatchEnrollmentSettings(database: database, declarations: declarations, outbox: runtime.outbox,
                                              publicURL: configuration.publicURL)
let links = EnrollmentLinks(database: database, outbox: runtime.outbox, requests: requests, identities: identities,
                            configuration: configuration, pushTopic: pushTopic, requestTimeout: timeout, logger: runtime.logger)
let checkins = CheckinHandler(database: database, secrets: configuration.secrets, declarations: declarations,
                              tokens: WatchPairingTokens(database: database, requests: requests, settings: watchEnrollment,
                                                         organization: configuration.organization, requestTimeout: timeout),
                              pushTopic: pushTopic, service: service)

let router = runtime.makeRouter(GatewayContext.self)
DeviceRoutes(identities: identities, checkins: checkins,
             commands: CommandChannel(database: database, service: service, watchEnrollment: watchEnrollment, pusher: pusher),
             links: links, pusher: pusher).add(to: router)
WatchEnrollmentRoutes(database: database, requests: requests, links: links, settings: watchEnrollment, configuration: configuration,
                      pushTopic: pushTopic, requestTimeout: timeout).add(to: router)
AdminRoutes(database: database, outbox: runtime.outbox, links: links, declarations: declarations,
            pushCertificates: pushCertificates, pusher: pusher, requests: requests, secrets: configuration.secrets,
            requestTimeout: timeout, watchEnrollment: watchEnrollment).add(to: router)

let activity = runtime.consumer(topics: [ActivityRecorded.topic], group: "orchard.checkin-gateway.activity", background: true,
                                handler: ActivityLogConsumer.handler(database: database))
let enqueue = runtime.consumer(topics: [EnqueueCommand.topic], background: true,
                               handler: EnqueueConsumer.handler(database: database, outbox: runtime.outbox, pusher: pusher))
await runtime.run(router: router, services: [
    pusher, activity, enqueue,
    RetentionPruner(database: database, rules: CommandQueue.pruning(retentionDays: configuration.commandRetentionDays),
                    logger: runtime.logger),
])
