import OrchardCore
import Foundation
import OrchardCrypto
import OrchardSchemas
import OrchardMessaging
import OrchardStorage

/// Issues the security token a watch receives in its 403 `com.apple.watch.pairing.token.missing`
/// answer. The token is a random UUID (Apple's schema asks for one), stored hashed, bound to the
/// watch's UDID and valid for a short time.
struct SecurityTokenIssuer: Sendable {
    let database: Database
    let outbox: OutboxPublisher
    let timeToLive: Duration
    let service: String

    func issue(_ request: IssueSecurityToken, correlationID: String?) async throws -> IssueSecurityToken.Reply {
        guard DeviceIdentifier.isValid(request.watchUDID) else {
            throw RequestRefused(code: "invalid-udid", message: "watch UDID is missing or malformed", httpStatus: 400)
        }
        // A CSPRNG (glibc arc4random: ChaCha20 keyed from getrandom), the one UUID source.
        let token = RandomUUID.uppercased()
        let expiresAt = Date().addingTimeInterval(TimeInterval(timeToLive.components.seconds))
        let activity = ActivityRecorded(actor: "device:\(request.watchUDID)", action: "security-token.issued",
                                        deviceID: request.watchUDID, outcome: .succeeded,
                                        detail: "expires \(expiresAt)", service: service)
        try await database.transaction { c in
            try TokenStore.insertSecurityToken(c, hash: Digest.sha256(Array(token.utf8)), watchUDID: request.watchUDID,
                                               watchSerial: request.watchSerialNumber, expiresAt: expiresAt)
            try Outbox.append(activity, correlationID: correlationID, on: c)
        }
        outbox.notify()
        return .init(securityToken: token, expiresAt: expiresAt)
    }
}
