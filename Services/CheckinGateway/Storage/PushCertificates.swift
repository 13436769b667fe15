import Foundation
import Hummingbird
import OrchardCrypto
import OrchardStorage

/// The MDM push certificate: its topic (the certificate's UID, `com.apple.mgmt.…`) addresses every
/// device, and its key authenticates Orchard to APNs. Stored with the key sealed by the KEK.
struct PushCertificate: Sendable {
    let identity: SigningIdentity
    let topic: String
    let notAfter: Date
    let uploadedAt: Date
}

struct PushCertificates: Sendable {
    let database: Database
    let secrets: SecretBox

    /// Validates and stores an uploaded push certificate; returns it.
    func save(_ identity: SigningIdentity) async throws -> PushCertificate {
        guard let topic = identity.certificate.subjectValue("UID"), topic.hasPrefix("com.apple.mgmt.") else {
            throw refuse(.badRequest, "not an MDM push certificate: its subject UID must start with com.apple.mgmt.")
        }
        guard identity.certificate.notAfter > Date() else { throw refuse(.badRequest, "the push certificate has expired") }
        let sealed = try secrets.seal(try identity.key.derRepresentation(), context: "push-certificate")
        try await database.query("""
            INSERT INTO push_certificate (id, certificate, sealed_key, topic, not_after) VALUES (1, $1, $2, $3, $4)
            ON CONFLICT (id) DO UPDATE SET certificate = EXCLUDED.certificate, sealed_key = EXCLUDED.sealed_key,
                topic = EXCLUDED.topic, not_after = EXCLUDED.not_after, uploaded_at = now()
            """, [.bytes(identity.certificate.der), .bytes(sealed), .text(topic), .timestamp(identity.certificate.notAfter)])
        return PushCertificate(identity: identity, topic: topic, notAfter: identity.certificate.notAfter, uploadedAt: Date())
    }

    func load() async throws -> PushCertificate? {
        guard let row = try await database.query("SELECT certificate, sealed_key, topic, not_after, uploaded_at FROM push_certificate WHERE id = 1").first,
              let der = row.bytes("certificate"), let sealed = row.bytes("sealed_key"), let topic = row.string("topic")
        else { return nil }
        let key = try PrivateKey(der: try secrets.open(sealed, context: "push-certificate"))
        return PushCertificate(identity: try SigningIdentity(certificate: try Certificate(der: der), key: key), topic: topic,
                               notAfter: row.date("not_after") ?? Date(), uploadedAt: row.date("uploaded_at") ?? Date())
    }
}
