import OrchardCore
import Foundation
import OrchardCrypto
import OrchardMessages
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
        let token = try randomUUID()
        let expiresAt = Date().addingTimeInterval(TimeInterval(timeToLive.components.seconds))
        let activity = ActivityRecorded(actor: "device:\(request.watchUDID)", action: "security-token.issued",
                                        deviceID: request.watchUDID, outcome: .succeeded,
                                        detail: "expires \(expiresAt)", service: service)
        try await database.transaction { c in
            try c.query("""
                INSERT INTO security_tokens (token_hash, watch_udid, watch_serial, expires_at) VALUES ($1, $2, $3, $4)
                """, [.bytes(Digest.sha256(Array(token.utf8))), .text(request.watchUDID),
                      .optionalText(request.watchSerialNumber), .timestamp(expiresAt)])
            try Outbox.append(activity, correlationID: correlationID, on: c)
        }
        outbox.notify()
        return .init(securityToken: token, expiresAt: expiresAt)
    }
}

/// A version-4 UUID from OpenSSL's generator (122 random bits).
func randomUUID() throws -> String {
    var bytes = try SecureRandom.bytes(16)
    bytes[6] = (bytes[6] & 0x0F) | 0x40
    bytes[8] = (bytes[8] & 0x3F) | 0x80
    let uuid = UUID(uuid: (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                           bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
    return uuid.uuidString
}
