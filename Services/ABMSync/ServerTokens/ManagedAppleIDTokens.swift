import Foundation
import OrchardCore
import OrchardCrypto
import OrchardMessaging
import OrchardSchemas
import OrchardStorage

/// GetToken `com.apple.maid` (REFERENCE §2, §4.7): the JWT Apple's identity service asks a device for when a Managed
/// Apple Account signs in, to check that the account belongs to the organisation of the MDM server. Signed with the
/// current private key of the ABM server token (a staged key signs nothing until ABM's `.p7m` promotes it).
struct ManagedAppleIDTokens: Sendable {
    let tokens: ServerTokens
    let database: Database

    func sign(_ r: SignManagedAppleIDToken, correlationID: String?) async throws -> SignManagedAppleIDToken.Reply {
        guard var row = try await token(for: r.serialNumber) else {
            throw RequestRefused(code: "abm-token.none", message: "no Apple Business Manager server token is connected", httpStatus: 409)
        }
        // The server's uuid comes from ABM's GET /account; a token never checked yet is checked now.
        if row.string("server_uuid") == nil, let id = row.string("id") {
            _ = try await tokens.check(CheckABMToken(id: id, actor: "service:abm-sync"), correlationID: correlationID)
            row = try await ABMTokenStore.signingKey(database, id: id) ?? row
        }
        guard let id = row.string("id"), let sealed = row.bytes("sealed_private_key"), let serverUUID = row.string("server_uuid") else {
            throw RequestRefused(code: "abm-token.unchecked", message: "Apple Business Manager did not tell this server's uuid (GET /account)",
                                 httpStatus: 503)
        }
        let key = try PrivateKey(pem: try tokens.box.open(sealed, context: ServerTokens.keyContext(id)))
        let jti = RandomUUID.uppercased()
        let header = try JSONSerialization.data(withJSONObject: ["alg": "RS256", "typ": "JWT"], options: [.sortedKeys])
        let claims = try JSONSerialization.data(withJSONObject: [
            "iss": serverUUID, "iat": Int(Date().timeIntervalSince1970), "jti": jti, "service_type": "com.apple.maid",
        ] as [String: Any], options: [.sortedKeys])
        let input = base64URL(Array(header)) + "." + base64URL(Array(claims))
        return .init(jwt: input + "." + base64URL(try key.jwsSignature(Array(input.utf8), ecdsa: false)), tokenID: id, jti: jti)
    }

    private func token(for serial: String?) async throws -> Row? {
        try await ABMTokenStore.signingKey(database, serial: serial)
    }
}
