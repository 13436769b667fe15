import Foundation
import OrchardStorage

/// profile-signer's tables: its authorities (certificates with sealed keys) and the identities it issued.
enum SignerStore {
    struct SealedAuthority {
        let role: String
        let certificate: [UInt8]
        let sealedKey: [UInt8]
    }

    /// The authorities, the given ones stored first where a role has none; replicas starting together take an advisory
    /// lock, so the first inserts and the others read its rows.
    static func authorities(_ c: Connection, orInsert candidates: [SealedAuthority]) throws -> [SealedAuthority] {
        try c.query("SELECT pg_advisory_xact_lock(hashtext('orchard.profile_signer.authorities'))")
        for a in candidates {
            try c.query("INSERT INTO authorities (role, certificate, sealed_key) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                        [.text(a.role), .bytes(a.certificate), .bytes(a.sealedKey)])
        }
        return try c.query("SELECT role, certificate, sealed_key FROM authorities").compactMap { row in
            guard let role = row.string("role"), let cert = row.bytes("certificate"), let key = row.bytes("sealed_key") else { return nil }
            return SealedAuthority(role: role, certificate: cert, sealedKey: key)
        }
    }

    static func recordIssuedIdentity(_ c: Connection, fingerprint: String, subject: String, serialHex: String, notAfter: Date) throws {
        try c.query("INSERT INTO issued_identities (fingerprint, subject, serial_hex, not_after) VALUES ($1, $2, $3, $4)",
                    [.text(fingerprint), .text(subject), .text(serialHex), .timestamp(notAfter)])
    }
}
