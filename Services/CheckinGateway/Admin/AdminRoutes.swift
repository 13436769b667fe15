import OrchardCore
import AppleProtocol
import Foundation
import Hummingbird
import OrchardCrypto
import OrchardSchemas
import OrchardMessaging
import OrchardStorage

/// The admin API under `/admin/v1` (described by docs/openapi.yaml). Every change is written to the
/// activity log with the API key that made it.
struct AdminRoutes: Sendable {
    let database: Database
    let outbox: OutboxPublisher
    let links: EnrollmentLinks
    let declarations: DeclarationService
    let pushCertificates: PushCertificates
    let pusher: APNsPusher
    let requests: RequestClient
    let secrets: SecretBox
    let requestTimeout: Duration
    let watchEnrollment: WatchEnrollmentSettings
    let accounts: AccountAuthorization
    let passwords: PasswordHasher
    let returnToService: ADEReturnToService
    /// Orchard's ADE enrollment endpoint, the `url` of ADE profiles that give none.
    let adeEnrollmentURL: String
    /// Orchard's ADE sign-in page, the `configuration_web_url` of profiles defined with `signIn`.
    var adeSignInURL: String { adeEnrollmentURL.replacingOccurrences(of: "/mdm/ade/enroll", with: "/mdm/ade/sign-in") }

    /// One file per resource (`Admin/*Routes.swift`), each adding its routes under the admin group.
    func add(to router: Router<GatewayContext>) {
        let admin = router.group("admin/v1").add(middleware: AdminAuthentication(database: database))
        addEnrollmentLinkRoutes(to: admin)
        addDeviceRoutes(to: admin)
        addCommandRoutes(to: admin)
        addDeclarationRoutes(to: admin)
        addPushCertificateRoutes(to: admin)
        addSigningIdentityRoutes(to: admin)
        addABMTokenRoutes(to: admin)
        addADEProfileRoutes(to: admin)
        addADEDeviceRoutes(to: admin)
        addADEAccountRoutes(to: admin)
        addAccountDomainRoutes(to: admin)
        addActivityRoutes(to: admin)
        addWatchEnrollmentRoutes(to: admin)
        addAPIKeyRoutes(to: admin)
        ADEPlatformSSORoutes(database: database, outbox: outbox, accounts: accounts).add(to: admin)
        ADEReturnToServiceRoutes(database: database, outbox: outbox).add(to: admin)
        ABMAPIRoutes(requests: requests, requestTimeout: requestTimeout).add(to: admin)
        ActivationLockRoutes(database: database, outbox: outbox, requests: requests, requestTimeout: requestTimeout, secrets: secrets).add(to: admin)
        InstalledProfilesRoutes(database: database).add(to: admin)
        AppRoutes(database: database, outbox: outbox, requests: requests, requestTimeout: requestTimeout).add(to: admin)
    }

    /// An admin's removal: `remove` in a transaction with its activity entry when it hit; 204, or 404 with `missing`.
    func removal(_ context: GatewayContext, _ action: String, detail: String, missing: String,
                 _ remove: @escaping @Sendable (Connection) throws -> Bool) async throws -> Response {
        let removed = try await database.transaction { c -> Bool in
            let hit = try remove(c)
            if hit { try audit(c, context, action, device: nil, detail: detail) }
            return hit
        }
        guard removed else { throw refuse(.notFound, missing) }
        outbox.notify()
        return emptyResponse(.noContent)
    }

    /// One activity entry of the admin request, in its transaction (the outbox publishes it).
    func audit(_ c: Connection, _ context: GatewayContext, _ action: String, device: String?, detail: String) throws {
        var journal = Journal(correlationID: context.correlationID)
        journal.activity(actor: context.adminKey!.actor, action, device: device, detail: detail)
        try journal.write(c)
    }
}

extension DescribeSigningIdentities.Reply: ResponseEncodable {}
extension ABMTokenHealth: ResponseEncodable {}
extension ListABMTokens.Reply: ResponseEncodable {}
extension SyncABMToken.Reply: ResponseEncodable {}
extension ADEProfileView: ResponseEncodable {}
extension ManagedDomain: ResponseEncodable {}
extension ListManagedDomains.Reply: ResponseEncodable {}
extension ListADEProfiles.Reply: ResponseEncodable {}
extension AssignADEProfile.Reply: ResponseEncodable {}
extension ListABMDevices.Reply: ResponseEncodable {}
extension ABMDeviceAction.Reply: ResponseEncodable {}
extension RevokeAccountTokens.Reply: ResponseEncodable {}

/// An admin list's `limit` query parameter: 100 by default, 1 to 1000.
func pageLimit(_ value: Substring?) throws -> Int {
    guard let value else { return 100 }
    guard let limit = Int(value), (1...1000).contains(limit) else {
        throw refuse(.badRequest, "limit must be an integer from 1 to 1000")
    }
    return limit
}
