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
        var sealed: [(String, [UInt8], [UInt8])] = []
        for (role, cert, key) in candidates {
            sealed.append((role, cert.der, try box.seal(try key.derRepresentation(), context: "profile_signer.authorities/\(role)")))
        }
        let sealedRows = sealed
        // Replicas starting together: the first to take the lock inserts, the others read its rows.
        let rows = try await database.transaction { c -> [Row] in
            try c.query("SELECT pg_advisory_xact_lock(hashtext('orchard.profile_signer.authorities'))")
            for (role, cert, key) in sealedRows {
                try c.query("INSERT INTO authorities (role, certificate, sealed_key) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                            [.text(role), .bytes(cert), .bytes(key)])
            }
            return try c.query("SELECT role, certificate, sealed_key FROM authorities")
        }
        func identity(_ role: String, chain: [Certificate]) throws -> SigningIdentity {
            guard let row = rows.first(where: { $0.string("role") == role }), let cert = row.bytes("certificate"),
                  let key = row.bytes("sealed_key") else {
                throw CryptoError(operation: "loading authorities", detail: "\(role) missing")
            }
            let privateKey = try PrivateKey(der: try box.open(key, context: "profile_signer.authorities/\(role)"))
            return try SigningIdentity(certificate: try Certificate(der: cert), key: privateKey, chain: chain)
        }
        let ca = try identity("device-ca", chain: [])
        return Authorities(ca: ca, profileSigning: try identity("profile-signing", chain: [ca.certificate]))
    }
}
