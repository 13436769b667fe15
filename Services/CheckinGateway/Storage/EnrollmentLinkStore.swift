import Foundation
import OrchardServiceKit
import OrchardStorage

/// All SQL on enrollment links and their claimed uses.
enum EnrollmentLinkStore {
    static func create(_ c: Connection, id: String, name: String, tokenHash: [UInt8], createdBy: String, expiresAt: Date?,
                       maxUses: Int?) throws {
        try c.query("""
            INSERT INTO enrollment_links (id, name, token_hash, created_by, expires_at, max_uses) VALUES ($1::uuid, $2, $3, $4, $5, $6)
            """, [.text(id), .text(name), .bytes(tokenHash), .text(createdBy),
                  expiresAt.map(SQLValue.timestamp) ?? .null, maxUses.map { .int($0) } ?? .null])
    }

    /// `pending`: every use left is held by a claim not yet settled: it comes back if that delivery fails.
    enum Claim { case claimed(linkID: String), unknown, unusable, pending }

    /// Counts a use of the link and records a claim on it, in one statement; the claim is settled when the
    /// profile is recorded (`settle`), given back by `release`, or by `claimRecovery` after a crash.
    static func claim(_ database: Database, tokenHash: [UInt8], claimID: String) async throws -> Claim {
        let claimed = try await database.query("""
            WITH claimed AS (
                UPDATE enrollment_links SET uses = uses + 1
                WHERE token_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
                  AND (max_uses IS NULL OR uses < max_uses)
                RETURNING id)
            INSERT INTO link_claims (id, link_id) SELECT $2::uuid, id FROM claimed RETURNING link_id::text AS id
            """, [.bytes(tokenHash), .text(claimID)]).first?.string("id")
        if let claimed { return .claimed(linkID: claimed) }
        guard let link = try await database.query("""
            SELECT revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
                   AND EXISTS (SELECT 1 FROM link_claims c WHERE c.link_id = l.id) AS pending
            FROM enrollment_links l WHERE token_hash = $1
            """, [.bytes(tokenHash)]).first else { return .unknown }
        return link.bool("pending") == true ? .pending : .unusable
    }

    /// The use is spent for good: its claim goes, in the transaction that records the delivered profile.
    static func settle(_ c: Connection, claimID: String) throws {
        try c.query("DELETE FROM link_claims WHERE id = $1::uuid", [.text(claimID)])
    }

    /// Gives a claimed use back (once: the claim row goes with it).
    static func release(_ database: Database, claimID: String) async throws {
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
