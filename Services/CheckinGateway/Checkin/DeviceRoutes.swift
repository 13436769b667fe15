import AppleProtocol
import Foundation
import Hummingbird
import OrchardMessaging

/// The URLs devices call: check-in, the command channel, and profile download by enrollment link.
/// Every one assumes a hostile client: bounded bodies, parsed once, identity checked before any write.
struct DeviceRoutes: Sendable {
    let identities: DeviceIdentityVerifier
    let checkins: CheckinHandler
    let commands: CommandChannel
    let links: EnrollmentLinks
    let pusher: APNsPusher

    static let checkinLimit = 1 << 20
    static let resultLimit = 8 << 20

    func add(to router: Router<GatewayContext>) {
        router.put("mdm/checkin") { request, context -> Response in
            guard request.headers[.contentType]?.hasPrefix(CheckinMessage.contentType) == true else {
                throw refuse(.unsupportedMediaType, "check-in needs Content-Type \(CheckinMessage.contentType)")
            }
            let body = try await request.bodyBytes(limit: Self.checkinLimit)
            let message: CheckinMessage
            do { message = try CheckinMessage.parse(body) } catch let error as PlistError {
                throw refuse(.badRequest, "malformed check-in: \(error)")
            }
            let signer = try await identities.identify(request, body: body)
            let outcome = try await checkins.handle(message, signer: signer, correlationID: context.correlationID)
            if !outcome.push.isEmpty { await pusher.push(outcome.push) }
            return outcome.response
        }
        router.put("mdm/server") { request, context -> Response in
            let body = try await request.bodyBytes(limit: Self.resultLimit)
            let result: CommandResult
            do { result = try CommandResult.parse(body) } catch let error as PlistError {
                throw refuse(.badRequest, "malformed command result: \(error)")
            }
            let signer = try await identities.identify(request, body: body)
            return try await commands.handle(result, signer: signer, correlationID: context.correlationID)
        }
        router.get("enroll/:token") { _, context -> Response in
            try await links.download(token: try context.parameters.require("token"), correlationID: context.correlationID)
        }
    }
}
