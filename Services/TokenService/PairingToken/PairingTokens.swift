import Foundation
import OrchardCore
import OrchardCrypto
import OrchardSchemas
import OrchardMessaging
import OrchardStorage

/// Pairing tokens: `v1.<claims>.<mac>`, base64url, where the claims bind the security token (by hash),
/// the phone, the watch, the organisation, an expiry and a single-use id, and the MAC is HMAC-SHA256
/// under a key only token-service holds. token-service both mints and checks them, so a MAC is enough;
/// the database row makes each token single use.
struct PairingTokens: Sendable {
    let database: Database
    let outbox: OutboxPublisher
    let key: [UInt8]
    let timeToLive: TimeInterval
    let service: String

    struct Claims: Codable {
        let jti: String
        let sec: String
        let phone: String
        let watch: String
        let org: String
        let iat: Int
        let exp: Int
    }

    /// Loads the MAC key, creating it (sealed with the KEK) on first start, once across replicas.
    static func loadKey(database: Database, box: SecretBox) async throws -> [UInt8] {
        let fresh = try box.seal(try SecureRandom.bytes(32), context: "token_service.keys/pairing")
        let sealed = try await database.transaction { c in try TokenStore.sealedKey(c, name: "pairing", orInsert: fresh) }
        guard let sealed else { throw CryptoError(operation: "loading pairing key", detail: "missing") }
        return try box.open(sealed, context: "token_service.keys/pairing")
    }

    /// Exchanges a watch's security token for a pairing token. Refused: unknown, expired, issued for
    /// another watch, or already exchanged by another phone. The same phone asking again for the same
    /// watch gets a pairing token again (each single use at the gateway, all bound to that phone and watch).
    func issue(_ r: IssuePairingToken, correlationID: String?) async throws -> IssuePairingToken.Reply {
        let securityHash = Digest.sha256(Array(r.securityToken.utf8))
        let now = Date()
        let claims = Claims(jti: RandomUUID.lowercased(), sec: securityHash.hexString, phone: r.phoneUDID, watch: r.watchUDID,
                            org: r.organization, iat: Int(now.timeIntervalSince1970), exp: Int(now.timeIntervalSince1970 + timeToLive))
        let token = try Self.encode(claims, key: key)
        do {
            try await database.transaction { c in
                guard let row = try TokenStore.lockSecurityToken(c, hash: securityHash) else {
                    throw RequestRefused(code: "security-token.unknown", message: "unknown security token", httpStatus: 403)
                }
                if row.expired {
                    throw RequestRefused(code: "security-token.expired", message: "the security token has expired", httpStatus: 403)
                }
                guard row.watchUDID == r.watchUDID else {
                    throw RequestRefused(code: "security-token.other-watch", message: "the security token was issued to another watch",
                                         httpStatus: 403)
                }
                // Exchanged already: by another iPhone, refused; by this iPhone for this watch, it is the same
                // GetToken again because its answer never arrived (the gateway died, the reply was late):
                // it gets a pairing token again, or a server failure would cost the pairing its retry.
                if let phone = row.consumedByPhone, phone != r.phoneUDID {
                    throw RequestRefused(code: "security-token.used", message: "the security token was already exchanged by another iPhone",
                                         httpStatus: 403)
                }
                try TokenStore.recordExchange(c, securityHash: securityHash, phoneUDID: r.phoneUDID, watchUDID: r.watchUDID,
                                              jti: claims.jti, expiresAt: Date(timeIntervalSince1970: TimeInterval(claims.exp)))
                try Outbox.append(ActivityRecorded(actor: "device:\(r.phoneUDID)", action: "pairing-token.issued", deviceID: r.watchUDID,
                                                   relatedDeviceIDs: [r.phoneUDID], outcome: .succeeded, service: service),
                                  correlationID: correlationID, on: c)
            }
        } catch let refused as RequestRefused {
            try await refusal(refused, action: "pairing-token.refused", watch: r.watchUDID, phone: r.phoneUDID, correlationID: correlationID)
            throw refused
        }
        outbox.notify()
        return .init(pairingToken: token, expiresAt: Date(timeIntervalSince1970: TimeInterval(claims.exp)))
    }

    /// Verifies a pairing token presented by a watch. Refused: bad MAC, malformed, expired, for another
    /// watch or organisation, or unknown. Verifying does not spend it: the gateway spends the token id when
    /// it records the profile it delivered (a watch whose request failed — profile-signer too slow, the
    /// gateway restarted — presents the same token again; a replay after delivery is refused there).
    func redeem(_ r: RedeemPairingToken, correlationID: String?) async throws -> RedeemPairingToken.Reply {
        do {
            let claims = try Self.decode(r.pairingToken, key: key)
            guard claims.exp > Int(Date().timeIntervalSince1970) else {
                throw RequestRefused(code: "pairing-token.expired", message: "the pairing token has expired", httpStatus: 403)
            }
            guard claims.watch == r.watchUDID else {
                throw RequestRefused(code: "pairing-token.other-watch", message: "the pairing token was issued for another watch",
                                     httpStatus: 403)
            }
            guard claims.org == r.organization else {
                throw RequestRefused(code: "pairing-token.other-organization", message: "the pairing token belongs to another organization",
                                     httpStatus: 403)
            }
            try await database.transaction { c in
                guard try TokenStore.redeemPairingToken(c, jti: claims.jti, watchUDID: r.watchUDID) else {
                    throw RequestRefused(code: "pairing-token.unknown", message: "unknown pairing token", httpStatus: 403)
                }
                try Outbox.append(ActivityRecorded(actor: "device:\(r.watchUDID)", action: "pairing-token.redeemed", deviceID: r.watchUDID,
                                                   relatedDeviceIDs: [claims.phone], outcome: .succeeded, service: service),
                                  correlationID: correlationID, on: c)
            }
            outbox.notify()
            return .init(phoneUDID: claims.phone, tokenID: claims.jti, expiresAt: Date(timeIntervalSince1970: TimeInterval(claims.exp)))
        } catch let refused as RequestRefused {
            try await refusal(refused, action: "pairing-token.rejected", watch: r.watchUDID, phone: nil, correlationID: correlationID)
            throw refused
        }
    }

    private func refusal(_ refused: RequestRefused, action: String, watch: String, phone: String?, correlationID: String?) async throws {
        let entry = ActivityRecorded(actor: "device:\(phone ?? watch)", action: action, deviceID: watch,
                                     relatedDeviceIDs: phone.map { [$0] } ?? [], outcome: .refused,
                                     detail: "\(refused.code): \(refused.message)", service: service)
        try await database.transaction { c in try Outbox.append(entry, correlationID: correlationID, on: c) }
        outbox.notify()
    }

    static func encode(_ claims: Claims, key: [UInt8]) throws -> String {
        let body = base64URL(try MessageCodec.encode(claims))
        return "v1.\(body).\(base64URL(Digest.hmacSHA256(key: key, data: Array("v1.\(body)".utf8))))"
    }

    /// The claims of a token this key made; 403 `pairing-token.invalid` for anything else (changed, forged, too long).
    static func decode(_ token: String, key: [UInt8]) throws -> Claims {
        let malformed = RequestRefused(code: "pairing-token.invalid", message: "the pairing token is malformed or forged", httpStatus: 403)
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard token.utf8.count < 4096, parts.count == 3, parts[0] == "v1", let mac = fromBase64URL(String(parts[2])),
              Digest.constantTimeEquals(mac, Digest.hmacSHA256(key: key, data: Array("v1.\(parts[1])".utf8))),
              let body = fromBase64URL(String(parts[1])), let claims = try? MessageCodec.decode(Claims.self, from: body)
        else { throw malformed }
        return claims
    }
}
