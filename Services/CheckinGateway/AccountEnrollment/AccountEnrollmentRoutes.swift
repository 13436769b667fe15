import AppleProtocol
import Foundation
import HTTPTypes
import Hummingbird
import OrchardCore
import OrchardCrypto
import OrchardMessaging
import OrchardSchemas
import OrchardServiceKit
import OrchardStorage

/// The `BaseURL` of account-driven enrollment, `/mdm/account/enroll/<domain>` (REFERENCE §5.2–5.5): the device POSTs its
/// MachineInfo, CMS-signed by its built-in identity, whatever the Content-Type. Without a good bearer the answer is
/// `401` with the domain's challenge (`WWW-Authenticate: Bearer method="apple-as-web", url="…"`); with one, the signed
/// profile with `EnrollmentMode` and `AssignedManagedAppleID`, its identity bound to that Managed Apple Account.
/// An OS below the domain's minimum gets a 403 whose message names both versions. Nothing is enrolled until the
/// device Authenticates with the profile's identity.
struct AccountEnrollmentRoutes: Sendable {
    let database: Database
    let outbox: OutboxPublisher
    let delivery: ProfileDelivery
    let accounts: AccountAuthorization
    let machineInfo: MachineInfoAuthenticator
    let service: String
    /// The TLS terminator's header naming the client address (`ORCHARD_FORWARDED_FOR_HEADER`), when there is one.
    let forwardedFor: HTTPField.Name?
    /// Activity entries per minute: per client address before the signature is checked (the request proves nothing),
    /// per signing device after (a signed MachineInfo can be sent again and again; devices behind one address each have
    /// their own). The answers are never limited.
    let budget = ActivityBudget(limit: 30)

    func add(to router: Router<GatewayContext>) {
        router.post("mdm/account/enroll/:domain") { request, context -> Response in
            try await enroll(request, domain: try context.parameters.require("domain"), correlationID: context.correlationID,
                             address: context.clientAddress(request, forwardedFor: forwardedFor))
        }
    }

    func enroll(_ request: Request, domain rawDomain: String, correlationID: String, address: String) async throws -> Response {
        let signed = try await request.bodyBytes(limit: 64 * 1024)
        guard !signed.isEmpty else { throw refuse(.badRequest, "send the device's signed MachineInfo as the body") }
        let domain = rawDomain.lowercased()
        var budgetKey = "address:\(address)"
        func record(_ action: String, outcome: ActivityRecorded.Outcome, detail: String) async throws {
            if budget.allow(budgetKey) { try await self.record(action, outcome: outcome, detail: detail, correlationID: correlationID) }
        }
        // The raw bytes are authenticated before anything is parsed or another service is asked.
        let verified: VerifiedContent
        do { verified = try machineInfo.authenticate(signed, tellUnsigned: true) } catch let rejection as MachineInfoAuthenticator.Rejection {
            let unsigned = if case .unsigned = rejection { true } else { false }
            try await record("account.enrollment.refused", outcome: .refused,
                             detail: "\(domain.prefix(253)): \(unsigned ? "unsigned body" : "body not signed by a trusted device identity")")
            if unsigned { throw refuse(.badRequest, rejection.description) }
            throw refuse(.forbidden, "the body is not a MachineInfo signed by a trusted device identity")
        }
        budgetKey = "device:\(verified.signer.sha256Fingerprint)"
        guard domain.count <= 253, let settings = try await accounts.describe(domain, correlationID: correlationID) else {
            try await record("account.enrollment.refused", outcome: .refused, detail: "unknown domain \(domain.prefix(253))")
            throw refuse(.notFound, "this organisation does not enroll devices for \(domain.prefix(253))")
        }
        let info: AccountEnrollmentRequest
        do { info = try AccountEnrollmentRequest.parse(verified.content) } catch {
            throw refuse(.badRequest, "malformed MachineInfo: \(error)")
        }
        guard let platform = info.platform else {
            throw refuse(.badRequest, "account-driven enrollment is for iPhone, iPad, Mac and Apple Vision Pro, not \(info.product)")
        }
        if let refusal = try await osRefusal(info, platform: platform, settings: settings, correlationID: correlationID,
                                             recorded: budget.allow(budgetKey)) { return refusal }

        let user: String
        switch try await accounts.judge(request, domain: settings.domain, correlationID: correlationID) {
        case .missing:
            try await record("account.challenged", outcome: .succeeded, detail: "\(domain): \(info.product) asked to sign in")
            var response = AccountAuthorization.challenge(settings.challenge, reason: "sign in to enroll")
            // Enrollment SSO: the device fetches the document, installs the identity app, and signs in through it.
            // Apple offers it on iOS, iPadOS and visionOS, not macOS.
            if let esso = settings.enrollmentSSOURL, platform != .macOS { response.headers[AccountAuthorization.enrollmentSSO] = esso }
            return response
        case .refused(let why):
            try await record("account.token.refused", outcome: .refused, detail: "\(domain): \(why)")
            return AccountAuthorization.challenge(settings.challenge, reason: "sign in again: \(why)")
        case .accepted(let accepted):
            user = accepted
        }
        let account = AccountBinding(managedAppleID: user, domain: settings.domain, mode: settings.mode,
                                     bearerRequired: platform != .macOS)
        // User Enrollment has no device identifier: the profile is made for a fresh one (its identity's subject).
        let subject = info.udid ?? RandomUUID.uppercased()
        return try await delivery.deliver(
            to: .init(subject: subject, platform: platform == .macOS ? .macOS : .iOS,
                      // A Mac's bearer travels on its user channel only (REFERENCE §5.7): the profile opens one.
                      capabilities: platform == .macOS ? ["com.apple.mdm.token", "com.apple.mdm.per-user-connections"] : nil,
                      account: account),
            correlationID: correlationID) { _ in
            ActivityRecorded(actor: "user:\(user)", action: "account.enrollment-profile.served", deviceID: info.udid, relatedDeviceIDs: [],
                             outcome: .succeeded,
                             detail: "\(settings.mode == AccountEnrollmentMode.userEnrollment.rawValue ? "User Enrollment" : "Device Enrollment") profile for \(user) on \(info.product) \(info.osVersion ?? info.version)",
                             service: service)
        }
    }

    /// The refusal for an OS below the domain's minimum for its platform, with both versions in the message;
    /// `com.apple.softwareupdate.required` when the device says it can be asked to update. A device without
    /// `OS_VERSION` runs an OS older than iOS 17 / macOS 14.
    private func osRefusal(_ info: AccountEnrollmentRequest, platform: AccountEnrollmentRequest.Platform,
                           settings: DescribeAccountEnrollment.Reply, correlationID: String, recorded: Bool) async throws -> Response? {
        guard let minimum = settings.minimumOS[platform.rawValue] else { return nil }
        let running = info.osVersion ?? (platform == .macOS ? "13" : "16")
        guard OSVersion.compare(running, minimum) == .orderedAscending else { return nil }
        let shown = info.osVersion ?? "an older version"
        let message = "\(settings.domain) enrolls devices with \(platform.rawValue) \(minimum) or later; this device runs \(platform.rawValue) \(shown). Update it in Settings, then enroll again."
        if recorded {
            try await record("account.enrollment.refused", outcome: .refused,
                             detail: "\(settings.domain): \(info.product) runs \(platform.rawValue) \(shown), minimum \(minimum)", correlationID: correlationID)
        }
        var document = info.canRequestSoftwareUpdate ? ErrorDocument.softwareUpdateRequired(osVersion: minimum)
            : ErrorDocument(code: "com.orchard.account.os-too-old", description: "OS \(shown) below the minimum \(minimum)", details: [:])
        document.message = message
        return bytesResponse(document.json, contentType: "application/json", status: .forbidden)
    }

    private func record(_ action: String, outcome: ActivityRecorded.Outcome, detail: String, correlationID: String) async throws {
        var journal = Journal(correlationID: correlationID)
        journal.activity(ActivityRecorded(actor: "service:\(service)", action: action, deviceID: nil, relatedDeviceIDs: [],
                                          outcome: outcome, detail: detail, service: service))
        try await journal.commit(to: database, outbox: outbox)
    }
}
