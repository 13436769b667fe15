import AppleProtocol
import Foundation
import HTTPTypes
import Hummingbird
import OrchardSchemas
import OrchardMessaging
import OrchardServiceKit
import OrchardStorage

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
if configuration.localTrial {
    runtime.logger.warning("""
        LOCAL TRIAL (ORCHARD_LOCAL_TRIAL=1): stand-ins for Apple's services are trusted here (the stand-in Apple device CA, \
        the APNs stand-in). Never run a production server with this setting.
        """)
}
let database = runtime.database, requests = runtime.requests!, service = runtime.definition.name
let timeout = runtime.configuration.requestTimeout

let pushCertificates = PushCertificates(database: database, secrets: configuration.secrets)
let pusher = APNsPusher(database: database, certificates: pushCertificates, baseURL: configuration.apnsURL,
                        trustRoots: configuration.apnsTrustRoots, logger: runtime.logger)
let pushTopic: @Sendable () async throws -> String? = { try await pusher.topic() }
let trust = DeviceTrust(database: database, extraRoots: configuration.extraDeviceRoots)
// How devices prove who they are; a new method (MachineInfo, a bearer token) is added here only.
var authenticators: [any DeviceAuthenticator] = [MdmSignatureAuthenticator(trust: trust)]
if let header = configuration.clientCertificateHeader.flatMap({ HTTPField.Name($0) }) {
    authenticators.append(ClientCertificateAuthenticator(trust: trust, header: header))
}
let declarations = DeclarationService(database: database, outbox: runtime.outbox, service: service, statusObservers: [AppInstallObserver()])
let watchEnrollment = WatchEnrollmentSettings(database: database, declarations: declarations, outbox: runtime.outbox,
                                              publicURL: configuration.publicURL)
let delivery = ProfileDelivery(database: database, outbox: runtime.outbox, requests: requests, trust: trust,
                               configuration: configuration, pushTopic: pushTopic, requestTimeout: timeout)
let links = EnrollmentLinks(database: database, outbox: runtime.outbox, delivery: delivery, publicURL: configuration.publicURL)
let topicCheck = PushTopicCheck(pushTopic: pushTopic)
let watchPairing = WatchPairingTokens(database: database, outbox: runtime.outbox, requests: requests, settings: watchEnrollment,
                                      organization: configuration.organization, requestTimeout: timeout)
let machineInfo = MachineInfoAuthenticator(roots: configuration.appleDeviceRoots)
let adeSetup = ADESetup(declarations: declarations, deadline: configuration.adeReleaseDeadline, service: service)
let returnToService = ADEReturnToService(delivery: delivery, secrets: configuration.secrets)
let checkins = CheckinHandlers(
    authenticate: AuthenticateHandler(topic: topicCheck),
    tokenUpdate: TokenUpdateHandler(topic: topicCheck, secrets: configuration.secrets, service: service, observers: [adeSetup]),
    checkOut: CheckOutHandler(),
    setBootstrapToken: SetBootstrapTokenHandler(secrets: configuration.secrets),
    getBootstrapToken: GetBootstrapTokenHandler(secrets: configuration.secrets),
    declarativeManagement: DeclarativeManagementHandler(declarations: declarations),
    getToken: GetTokenHandler(services: [GetToken.watchPairing: watchPairing,
                                         GetToken.managedAppleID: ManagedAppleIDTokenService(database: database, outbox: runtime.outbox, requests: requests,
                                                                                             requestTimeout: timeout)]),
    userAuthenticate: UserAuthenticateHandler(),
    returnToService: ReturnToServiceHandler(returnToService: returnToService),
    userTokenUpdate: UserTokenUpdateHandler(topic: topicCheck))

let accounts = AccountAuthorization(database: database, requests: requests, timeout: timeout,
                                    tokenCacheSeconds: TimeInterval(configuration.accountTokenCacheSeconds))

let router = runtime.makeRouter(GatewayContext.self)
DevicePipeline(database: database, authentication: DeviceAuthentication(methods: authenticators), checkins: checkins,
               commandResults: CommandResultHandler(observers: [WatchEligibilityObserver(settings: watchEnrollment, service: service), adeSetup,
                                                                ActivationLockObserver(secrets: configuration.secrets), InstalledProfilesObserver(),
                                                                AppInstallObserver()]),
               userCommandResults: UserCommandChannelHandler(),
               pusher: pusher, accounts: accounts, outbox: runtime.outbox).add(to: router)
router.get("enroll/:token") { _, context -> Response in
    try await links.download(token: try context.parameters.require("token"), correlationID: context.correlationID)
}
WatchEnrollmentRoutes(database: database, outbox: runtime.outbox, requests: requests, delivery: delivery, settings: watchEnrollment,
                      configuration: configuration, requestTimeout: timeout, machineInfo: machineInfo).add(to: router)
let reenrollment = ADEReenrollment(database: database, outbox: runtime.outbox, requests: requests, timeout: max(timeout, .seconds(15)))
let adeEnrollment = ADEEnrollmentRoutes(database: database, outbox: runtime.outbox, delivery: delivery, machineInfo: machineInfo,
                                        reenrollment: reenrollment, accounts: accounts, forwardedFor: configuration.forwardedFor)
adeEnrollment.add(to: router)
let passwords = PasswordHasher()
ADESignInRoutes(database: database, enrollment: adeEnrollment, passwords: passwords, throttle: FailureThrottle(database: database),
                accountLimit: configuration.signInAccountFailures, addressLimit: configuration.signInAddressFailures,
                forwardedFor: configuration.forwardedFor).add(to: router)
AccountEnrollmentRoutes(database: database, outbox: runtime.outbox, delivery: delivery, accounts: accounts,
                        machineInfo: machineInfo, service: service, forwardedFor: configuration.forwardedFor).add(to: router)
AdminRoutes(database: database, outbox: runtime.outbox, links: links, declarations: declarations,
            pushCertificates: pushCertificates, pusher: pusher, requests: requests, secrets: configuration.secrets,
            requestTimeout: timeout, watchEnrollment: watchEnrollment, accounts: accounts, passwords: passwords, returnToService: returnToService,
            adeEnrollmentURL: "\(configuration.publicURL)/mdm/ade/enroll").add(to: router)

let activity = runtime.consumer(topics: [ActivityRecorded.topic], group: "orchard.checkin-gateway.activity", background: true,
                                handler: ActivityLogConsumer.handler(database: database),
                                batchHandler: ActivityLogConsumer.batchHandler(database: database))
// The gateway's copy of abm-sync's devices and ADE profiles (it enrolls ADE devices while abm-sync is down).
let abmEvents = runtime.consumer(topics: [ABMDeviceEvent.topic, ADEProfileEvent.topic], group: "orchard.checkin-gateway.abm",
                                 background: true, handler: ABMEventConsumer.handler(database: database),
                                 batchHandler: ABMEventConsumer.batchHandler(database: database))
// The gateway's copy of account-driven access tokens (a device's bearer is checked locally).
let accountTokens = runtime.consumer(topics: [AccountTokenEvent.topic], group: "orchard.checkin-gateway.account-tokens", background: true,
                                     handler: AccountTokenCopy.handler(database: database),
                                     batchHandler: AccountTokenCopy.batchHandler(database: database))
let enqueue = runtime.consumer(topics: [EnqueueCommand.topic], background: true,
                               handler: EnqueueConsumer.handler(database: database, outbox: runtime.outbox, pusher: pusher))
await runtime.run(router: router, services: [
    pusher, activity, enqueue, abmEvents, accountTokens,
    ReleaseDeadline(setup: adeSetup, database: database, outbox: runtime.outbox, pusher: pusher, logger: runtime.logger),
    AppRollout(database: database, outbox: runtime.outbox, requests: requests, pusher: pusher, declarations: declarations, logger: runtime.logger,
               interval: .milliseconds(configuration.appRolloutIntervalMilliseconds)),
    RetentionPruner(database: database, rules: CommandQueue.pruning(retentionDays: configuration.commandRetentionDays)
                                        + WatchPairingStore.pruning + AccountTokenCopyStore.pruning, logger: runtime.logger),
    // A download's claim is given back 30 s after its delivery must have ended either way: the delivery's one slow
    // step, the request to profile-signer, gives up after ORCHARD_REQUEST_TIMEOUT_MS. A delivered profile's claim
    // expires after an hour (iOS drops a downloaded profile not installed within minutes; a Mac keeps it).
    RetentionPruner(database: database, rules: EnrollmentLinkStore.claimRecovery(undelivered: timeout + .seconds(30),
                                                                                 delivered: .seconds(3600)),
                    interval: .seconds(10), logger: runtime.logger),
])
