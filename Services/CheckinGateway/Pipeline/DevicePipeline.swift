import AppleProtocol
import Foundation
import Hummingbird
import OrchardMessaging
import OrchardSchemas
import OrchardStorage

/// The device-facing MDM endpoints as one pipeline, in this order for every request:
/// 1. bounded body (413) and content type (415);
/// 2. authentication over the raw bytes (`DeviceAuthentication`; 401), before anything is parsed;
/// 3. parsing into one typed message (400);
/// 4. authorization of the enrollment the message names (`EnrollmentAuthorizer`; 401/403), in the
///    transaction that then applies the message;
/// 5. the handler of that message type (`DeviceMessageHandler`): apply in that transaction, respond after.
/// An account-driven enrollment's request also needs a good bearer for its Managed Apple Account (401 with the
/// domain's challenge otherwise); one for an enrollment Orchard does not know, or signed by an identity its enrollment
/// replaced when it re-enrolled, gets 403 com.apple.unrecognized.device (the device unenrolls).
/// A request on a Mac's user channel (`EnrollmentUserID` or `UserID`) is authorized as its enrollment's, with the bearer
/// required when the enrollment is account-driven; only TokenUpdate (the user's push credentials), UserAuthenticate and
/// the command channel are answered there (Orchard queues no user-channel commands: its Idle gets an empty answer).
/// No handler is reachable any other way.
struct DevicePipeline: Sendable {
    let database: Database
    let authentication: DeviceAuthentication
    let checkins: CheckinHandlers
    let commandResults: any DeviceMessageHandler<CommandResult>
    let userCommandResults: any DeviceMessageHandler<CommandResult>
    let pusher: APNsPusher
    let accounts: AccountAuthorization
    let outbox: OutboxPublisher

    static let checkinLimit = 1 << 20
    static let resultLimit = 8 << 20

    func add(to router: Router<GatewayContext>) {
        router.put("mdm/checkin") { request, context -> Response in
            try await checkin(request, correlationID: context.correlationID)
        }
        router.put("mdm/server") { request, context -> Response in
            try await commandResult(request, correlationID: context.correlationID)
        }
    }

    /// `PUT` CheckInURL.
    func checkin(_ request: Request, correlationID: String) async throws -> Response {
        guard request.headers[.contentType]?.hasPrefix(CheckinMessage.contentType) == true else {
            throw refuse(.unsupportedMediaType, "check-in needs Content-Type \(CheckinMessage.contentType)")
        }
        let body = try await request.bodyBytes(limit: Self.checkinLimit)
        var credential = try await authentication.authenticate(request, body: body)
        credential.bearer = AccountAuthorization.bearer(request)
        let message: CheckinMessage
        do { message = try CheckinMessage.parse(body) } catch let error as PlistError {
            throw refuse(.badRequest, "malformed check-in: \(error)")
        }
        let h = checkins, id = message.identity
        credential.user = id.userChannel
        let answer: DeviceAnswer
        if id.userChannel != nil {
            switch message {
            case .tokenUpdate(let m): answer = try await run(h.userTokenUpdate, m, id, credential, correlationID)
            case .userAuthenticate(let m): answer = try await run(h.userAuthenticate, m, id, credential, correlationID)
            default: throw refuse(.badRequest, "\(message.messageType) is not answered on the user channel")
            }
            if !answer.push.isEmpty { await pusher.push(answer.push) }
            return answer.response
        }
        switch message {
        case .authenticate(let m): answer = try await run(h.authenticate, m, id, credential, correlationID)
        case .tokenUpdate(let m): answer = try await run(h.tokenUpdate, m, id, credential, correlationID)
        case .checkOut(let m): answer = try await run(h.checkOut, m, id, credential, correlationID)
        case .setBootstrapToken(let m): answer = try await run(h.setBootstrapToken, m, id, credential, correlationID)
        case .getBootstrapToken(let m): answer = try await run(h.getBootstrapToken, m, id, credential, correlationID)
        case .declarativeManagement(let m): answer = try await run(h.declarativeManagement, m, id, credential, correlationID)
        case .getToken(let m): answer = try await run(h.getToken, m, id, credential, correlationID)
        case .userAuthenticate(let m): answer = try await run(h.userAuthenticate, m, id, credential, correlationID)
        case .returnToService(let m): answer = try await run(h.returnToService, m, id, credential, correlationID)
        }
        if !answer.push.isEmpty { await pusher.push(answer.push) }
        return answer.response
    }

    /// `PUT` ServerURL: the result of the previous command (or Idle), answered with the next command.
    func commandResult(_ request: Request, correlationID: String) async throws -> Response {
        let body = try await request.bodyBytes(limit: Self.resultLimit)
        var credential = try await authentication.authenticate(request, body: body)
        credential.bearer = AccountAuthorization.bearer(request)
        let result: CommandResult
        do { result = try CommandResult.parse(body) } catch let error as PlistError {
            throw refuse(.badRequest, "malformed command result: \(error)")
        }
        credential.user = result.identity.userChannel
        let answer = credential.user == nil ? try await run(commandResults, result, result.identity, credential, correlationID)
            : try await run(userCommandResults, result, result.identity, credential, correlationID)
        if !answer.push.isEmpty { await pusher.push(answer.push) }
        return answer.response
    }

    private func run<H: DeviceMessageHandler>(_ handler: H, _ message: H.Message, _ identity: EnrollmentIdentity,
                                              _ credential: DeviceCredential, _ correlationID: String) async throws -> DeviceAnswer {
        guard let id = identity.enrollmentKey else { throw refuse(.badRequest, "missing UDID or EnrollmentID") }
        var credential = credential
        if let bearer = credential.bearer {
            credential.accountToken = try await accounts.validate(bearer, correlationID: correlationID)
        }
        do {
            return try await authorizeAndApply(handler, message, id, credential, correlationID)
        } catch let required as AccountChallengeRequired {
            let binding = required.binding
            var challenge = credential.accountToken?.challenge
            if challenge == nil { challenge = try await accounts.describe(binding.domain, correlationID: correlationID)?.challenge }
            guard let challenge else {
                try await record(id, "account.enrollment.unrecognized", .refused, "\(binding.domain) no longer enrolls devices", correlationID)
                return DeviceAnswer(response: AccountAuthorization.unrecognizedDevice("domain \(binding.domain) no longer enrolls devices"))
            }
            try await record(id, "account.reauthentication-required", .refused, "\(binding.managedAppleID): \(required.reason)", correlationID)
            return DeviceAnswer(response: AccountAuthorization.challenge(challenge, reason: "sign in again: \(required.reason)"))
        } catch let unknown as UnrecognizedDevice {
            try await record(id, unknown.action, .refused, unknown.reason, correlationID)
            return DeviceAnswer(response: AccountAuthorization.unrecognizedDevice(unknown.reason))
        }
    }

    private func record(_ id: String, _ action: String, _ outcome: ActivityRecorded.Outcome, _ detail: String, _ correlationID: String) async throws {
        var journal = Journal(correlationID: correlationID)
        journal.activity(actor: "device:\(id)", action, device: id, outcome: outcome, detail: detail)
        try await journal.commit(to: database, outbox: outbox)
    }

    private func authorizeAndApply<H: DeviceMessageHandler>(_ handler: H, _ message: H.Message, _ id: String,
                                                            _ credential: DeviceCredential, _ correlationID: String) async throws -> DeviceAnswer {
        try await handler.check(message)
        let (enrollment, applied): (AuthorizedEnrollment, H.Applied)
        do {
            (enrollment, applied) = try await database.transaction { c in
                let enrollment = try EnrollmentAuthorizer.authorize(c, id: id, credential: credential, access: handler.access,
                                                                    touch: !handler.recordsLastSeen,
                                                                    leading: handler.leadingStatement(message, enrollmentID: id,
                                                                                                      credential: credential))
                var journal = Journal(correlationID: correlationID)
                let applied = try handler.apply(message, to: enrollment, in: c, journal: &journal)
                try journal.write(c)
                return (enrollment, applied)
            }
        } catch {
            throw handler.transactionFailed(error)
        }
        return try await handler.respond(message, to: enrollment, applied: applied, correlationID: correlationID)
    }
}
