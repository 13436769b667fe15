import Foundation
import OrchardCrypto
import OrchardStorage

/// profile-signer's certificate authority (issues device identities) and its profile-signing identity
/// (signs every profile; chains to the CA, so `openssl cms -verify -CAfile <CA>` accepts profiles).
/// Created on first start, once across replicas, and kept with their keys sealed by the KEK.
struct Authorities: Sendable {
    let ca: SigningIdentity
    let profileSigning: SigningIdentity

    static func loadOrCreate(database: Database, box: SecretBox, organization: String) async throws -> Authorities {
        let validity = Date().addingTimeInterval(-3600)...Date().addingTimeInterval(86400 * 365 * 10)
        let caKey = try PrivateKey.generateP256()
        let caCert = try Certificate.issue(subject: "/CN=\(organization) Orchard Device CA/O=\(organization)", key: caKey,
                                           issuer: nil, usage: .certificateAuthority, validity: validity)
        let signingKey = try PrivateKey.generateP256()
        let signingCert = try Certificate.issue(subject: "/CN=\(organization) Orchard Profile Signing/O=\(organization)",
                                                key: signingKey, issuer: (caCert, caKey), usage: .clientIdentity,
                                                validity: validity)
        let candidates = [("device-ca", caCert, caKey), ("profile-signing", signingCert, signingKey)]
        let sealed = try candidates.map { role, cert, key in
            SignerStore.SealedAuthority(role: role, certificate: cert.der,
                                        sealedKey: try box.seal(try key.derRepresentation(), context: "profile_signer.authorities/\(role)"))
        }
        // Replicas starting together: the first inserts, the others read its rows.
        let rows = try await database.transaction { c in try SignerStore.authorities(c, orInsert: sealed) }
        func identity(_ role: String, chain: [Certificate]) throws -> SigningIdentity {
            guard let row = rows.first(where: { $0.role == role }) else {
                throw CryptoError(operation: "loading authorities", detail: "\(role) missing")
            }
            let privateKey = try PrivateKey(der: try box.open(row.sealedKey, context: "profile_signer.authorities/\(role)"))
            return try SigningIdentity(certificate: try Certificate(der: row.certificate), key: privateKey, chain: chain)
        }
        let ca = try identity("device-ca", chain: [])
        return Authorities(ca: ca, profileSigning: try identity("profile-signing", chain: [ca.certificate]))
    }
}
