import OrchardCore
import Foundation
import Hummingbird
import Logging
import OrchardCrypto
import OrchardSchemas
import OrchardMessaging
import OrchardServiceKit
import OrchardStorage

/// Enrollment links: an admin creates one (a random token, optional expiry and use count); a device
/// downloads its signed profile with it at `GET /enroll/<token>`. Tokens are stored hashed.
struct EnrollmentLinks: Sendable {
    let database: Database
    let outbox: OutboxPublisher
    let delivery: ProfileDelivery
    let publicURL: String

    struct Created: Sendable { let id: String; let token: String; let url: String }

    func create(name: String, expiresAt: Date?, maxUses: Int?, actor: String, correlationID: String) async throws -> Created {
        guard !name.isEmpty, name.count <= 200 else { throw refuse(.badRequest, "name must be 1-200 characters") }
        if let maxUses, !(1...1_000_000).contains(maxUses) { throw refuse(.badRequest, "maxUses must be from 1 to 1000000") }
        guard !name.contains(where: { $0.unicodeScalars.contains { $0.properties.generalCategory == .control } }) else {
            throw refuse(.badRequest, "name must not contain control characters")
        }
        if let expiresAt, expiresAt <= Date() { throw refuse(.badRequest, "expiresAt must be in the future") }
        let token = try SecureRandom.token()
        let id = RandomUUID.lowercased()
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
        return Created(id: id, token: token, url: "\(publicURL)/enroll/\(token)")
    }

    /// Serves the signed profile for a link, counting the use. Refused: unknown (404), expired,
    /// used up or revoked (410). A failed build gives the use back; so does `claimRecovery` when the
    /// gateway died before the profile was recorded.
    func download(token: String, correlationID: String) async throws -> Response {
        guard token.count == 43, token.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
            throw refuse(.notFound, "unknown enrollment link")
        }
        let hash = Digest.sha256(Array(token.utf8))
        // The use and a claim on it, in one statement: the claim is settled when the profile's identity
        // is recorded (ProfileDelivery), given back on an error here, and by `claimRecovery` after a crash.
        let claimID = RandomUUID.lowercased()
        let claimed = try await database.query("""
            WITH claimed AS (
                UPDATE enrollment_links SET uses = uses + 1
                WHERE token_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
                  AND (max_uses IS NULL OR uses < max_uses)
                RETURNING id)
            INSERT INTO link_claims (id, link_id) SELECT $2::uuid, id FROM claimed RETURNING link_id::text AS id
            """, [.bytes(hash), .text(claimID)]).first?.string("id")
        guard let linkID = claimed else {
            let exists = try await database.query("SELECT 1 FROM enrollment_links WHERE token_hash = $1", [.bytes(hash)])
            if exists.isEmpty { throw refuse(.notFound, "unknown enrollment link") }
            throw refuse(.gone, "enrollment link expired, used up or revoked")
        }
        do {
            return try await delivery.deliver(to: .init(subject: linkID, platform: .iOS, linkID: linkID, linkClaimID: claimID),
                                              correlationID: correlationID) {
                ActivityRecorded(actor: "link:\(linkID)", action: "enrollment-profile.served", deviceID: nil, relatedDeviceIDs: [],
                                 outcome: .succeeded, detail: "identity \($0.identityFingerprint ?? "external")",
                                 service: ActivityLog.service)
            }
        } catch {
            // The device keeps its use; the error becomes its answer (503 + Retry-After when profile-signer is slow).
            try await release(claimID: claimID)
            throw error
        }
    }

    /// Gives a claimed use back (once: the claim row goes with it).
    private func release(claimID: String) async throws {
        try await database.query("""
            WITH gone AS (DELETE FROM link_claims WHERE id = $1::uuid RETURNING link_id)
            UPDATE enrollment_links l SET uses = l.uses - 1 FROM gone WHERE l.id = gone.link_id AND l.uses > 0
            """, [.text(claimID)])
    }

    /// Claims older than `after` were never settled (the gateway died between claiming a use and recording
    /// the profile it paid for, or PostgreSQL went away): their uses go back to their links.
    static func claimRecovery(after: Duration) -> [RetentionPruner.Rule] {
        [.init(name: "unsettled enrollment link claims", deleteBatch: """
            WITH stale AS (
                DELETE FROM link_claims WHERE id IN (
                    SELECT id FROM link_claims WHERE claimed_at < now() - make_interval(secs => \(after.components.seconds))
                    LIMIT 5000)
                RETURNING link_id),
            counts AS (SELECT link_id, count(*) AS n FROM stale GROUP BY link_id)
            UPDATE enrollment_links l SET uses = greatest(l.uses - counts.n, 0) FROM counts WHERE l.id = counts.link_id
            RETURNING 1
            """)]
    }
}
