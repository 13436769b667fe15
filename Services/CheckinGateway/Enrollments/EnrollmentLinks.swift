import Foundation
import Hummingbird
import Logging
import OrchardCrypto
import OrchardMessages
import OrchardMessaging
import OrchardStorage

/// Enrollment links: an admin creates one (a random token, optional expiry and use count); a device
/// downloads its signed profile with it at `GET /enroll/<token>`. Tokens are stored hashed.
struct EnrollmentLinks: Sendable {
    let database: Database
    let outbox: OutboxPublisher
    let requests: RequestClient
    let trust: DeviceTrust
    let configuration: GatewayConfiguration
    let pushTopic: @Sendable () async -> String?
    let requestTimeout: Duration
    let logger: Logger

    struct Created: Sendable { let id: String; let token: String; let url: String }

    func create(name: String, expiresAt: Date?, maxUses: Int?, actor: String, correlationID: String) async throws -> Created {
        guard !name.isEmpty, name.count <= 200 else { throw refuse(.badRequest, "name must be 1-200 characters") }
        if let maxUses, !(1...1_000_000).contains(maxUses) { throw refuse(.badRequest, "maxUses must be from 1 to 1000000") }
        guard !name.contains(where: { $0.unicodeScalars.contains { $0.properties.generalCategory == .control } }) else {
            throw refuse(.badRequest, "name must not contain control characters")
        }
        if let expiresAt, expiresAt <= Date() { throw refuse(.badRequest, "expiresAt must be in the future") }
        let token = try SecureRandom.token()
        let id = UUID().uuidString.lowercased()
        try await database.transaction { c in
            try c.query("""
                INSERT INTO enrollment_links (id, name, token_hash, created_by, expires_at, max_uses) VALUES ($1::uuid, $2, $3, $4, $5, $6)
                """, [.text(id), .text(name), .bytes(Digest.sha256(Array(token.utf8))), .text(actor),
                      expiresAt.map(SQLValue.timestamp) ?? .null, maxUses.map { .int($0) } ?? .null])
            var journal = Journal(correlationID: correlationID)
            journal.activity(actor: actor, "enrollment-link.created", device: nil, detail: "\(name) (\(id))")
            try journal.write(c)
        }
        outbox.notify()
        return Created(id: id, token: token, url: "\(configuration.publicURL)/enroll/\(token)")
    }

    /// Serves the signed profile for a link, counting the use. Refused: unknown (404), expired,
    /// used up or revoked (410). A failed build gives the use back.
    func download(token: String, correlationID: String) async throws -> Response {
        guard token.count == 43, token.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
            throw refuse(.notFound, "unknown enrollment link")
        }
        let hash = Digest.sha256(Array(token.utf8))
        let claimed = try await database.query("""
            UPDATE enrollment_links SET uses = uses + 1
            WHERE token_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
              AND (max_uses IS NULL OR uses < max_uses)
            RETURNING id::text AS id
            """, [.bytes(hash)]).first?.string("id")
        guard let linkID = claimed else {
            let exists = try await database.query("SELECT 1 FROM enrollment_links WHERE token_hash = $1", [.bytes(hash)])
            if exists.isEmpty { throw refuse(.notFound, "unknown enrollment link") }
            throw refuse(.gone, "enrollment link expired, used up or revoked")
        }
        guard let topic = await pushTopic() else {
            try await release(linkID)
            throw refuse(.serviceUnavailable, "no push certificate is installed yet")
        }
        let request = BuildEnrollmentProfile(subject: linkID, platform: .iOS, topic: topic, serverURL: configuration.serverURL,
                                             checkInURL: configuration.checkInURL, organization: configuration.organization)
        let reply: BuildEnrollmentProfile.Reply
        do {
            reply = try await requests.request(request, timeout: requestTimeout, correlationID: correlationID)
        } catch {
            // The device keeps its use; the error becomes its answer (DependencyFailure: 503 + Retry-After on time-out).
            try await release(linkID)
            throw error
        }
        var journal = Journal(correlationID: correlationID)
        journal.activity(actor: "link:\(linkID)", "enrollment-profile.served", device: nil,
                         detail: "identity \(reply.identityFingerprint ?? "external")")
        try await remember(reply, linkID: linkID, capabilities: request.serverCapabilities, deviceID: nil, pairedPhone: nil,
                           journal: journal)
        return bytesResponse(Array(reply.signedProfile), contentType: "application/x-apple-aspen-config")
    }

    /// Records the identity handed out (with what its profile advertises, the device it was issued to
    /// when known, and for a watch its iPhone), and trusts its CA for Mdm-Signature.
    /// `journal` (the activity of serving the profile) commits in the same transaction.
    func remember(_ reply: BuildEnrollmentProfile.Reply, linkID: String?, capabilities: [String], deviceID: String?,
                  pairedPhone: String?, journal: Journal) async throws {
        if let ca = reply.issuingCA { try await trust.trust(Array(ca)) }
        try await database.transaction { c in
            if let fingerprint = reply.identityFingerprint {
                try c.query("""
                    INSERT INTO issued_identities (fingerprint, link_id, profile_identifier, server_capabilities,
                                                   device_id, paired_phone)
                    VALUES ($1, $2::uuid, $3, $4, $5, $6) ON CONFLICT DO NOTHING
                    """, [.text(fingerprint), .optionalText(linkID), .text(reply.removableIdentifier),
                          .text(capabilities.joined(separator: ",")), .optionalText(deviceID), .optionalText(pairedPhone)])
            }
            try journal.write(c)
        }
        outbox.notify()
    }

    private func release(_ linkID: String) async throws {
        try await database.query("UPDATE enrollment_links SET uses = uses - 1 WHERE id = $1::uuid AND uses > 0", [.text(linkID)])
    }
}
