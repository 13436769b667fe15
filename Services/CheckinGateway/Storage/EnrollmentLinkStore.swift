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

    /// `pending`: the link is not used up, but as many claims are outstanding as it allows (`spareClaims` more
    /// than its uses left): downloads under way, or profiles delivered and not yet enrolled with.
    enum Claim { case claimed(linkID: String), unknown, unusable, pending }

    /// Claims a limited link allows beyond its uses left: a device whose answer was lost downloads again
    /// (the first profile's claim stands until it expires), but a holder of the link cannot mint identities
    /// without bound.
    static let spareClaims = 5

    /// Records a claim on the link in one statement with the count that bounds them. The use itself is spent
    /// when a device enrolls with the profile (`spend`); the claim is marked delivered with the profile's
    /// record (`delivered`), given back by `release` on an error, and expires by `claimRecovery`.
    static func claim(_ database: Database, tokenHash: [UInt8], claimID: String) async throws -> Claim {
        let claimed = try await database.query("""
            WITH claimed AS (
                UPDATE enrollment_links SET outstanding = outstanding + 1
                WHERE token_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
                  AND (max_uses IS NULL OR (uses < max_uses AND outstanding < max_uses - uses + \(spareClaims)))
                RETURNING id)
            INSERT INTO link_claims (id, link_id) SELECT $2::uuid, id FROM claimed RETURNING link_id::text AS id
            """, [.bytes(tokenHash), .text(claimID)]).first?.string("id")
        if let claimed { return .claimed(linkID: claimed) }
        guard let link = try await database.query("""
            SELECT revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now()) AND (max_uses IS NULL OR uses < max_uses)
                   AS pending
            FROM enrollment_links WHERE token_hash = $1
            """, [.bytes(tokenHash)]).first else { return .unknown }
        return link.bool("pending") == true ? .pending : .unusable
    }

    /// The profile a claim paid for is recorded, in that transaction. With an identity Orchard issued, the claim
    /// now names it and the use waits for the identity's first Authenticate (`spend`). With an identity Orchard
    /// cannot recognise later (an external CA's: SCEP, ACME), the use is spent now, if the link still has one (other
    /// devices may have enrolled since the claim): false when it has not, and the delivery is refused.
    static func delivered(_ c: Connection, claimID: String, identityFingerprint: String?) throws -> Bool {
        if let identityFingerprint {
            try c.execute("UPDATE link_claims SET identity_fingerprint = $2, delivered_at = now() WHERE id = $1::uuid",
                          [.text(claimID), .text(identityFingerprint)])
            return true
        }
        return try !c.query("""
            WITH gone AS (DELETE FROM link_claims WHERE id = $1::uuid RETURNING link_id)
            UPDATE enrollment_links l SET uses = l.uses + 1, outstanding = greatest(l.outstanding - 1, 0)
            FROM gone WHERE l.id = gone.link_id AND l.revoked_at IS NULL AND (l.max_uses IS NULL OR l.uses < l.max_uses)
            RETURNING l.id
            """, [.text(claimID)]).isEmpty
    }

    /// The first Authenticate of an identity a link's profile carried (`link_use_pending`): spends a use of the
    /// link, in the Authenticate's transaction, and settles the identity's claim if it still stands. False when
    /// the link has no use left (other devices enrolled with its uses) or was revoked: the Authenticate is refused,
    /// and its rollback leaves the identity pending. (An expired link's profiles still enroll: expiry ends downloads.)
    static func spend(_ c: Connection, identityFingerprint: String) throws -> Bool {
        let row = try c.query("""
            WITH pending AS (
                UPDATE issued_identities SET link_use_pending = false
                WHERE fingerprint = $1 AND link_use_pending RETURNING link_id),
            settled AS (DELETE FROM link_claims WHERE identity_fingerprint = $1 RETURNING id),
            spent AS (
                UPDATE enrollment_links l
                SET uses = l.uses + 1, outstanding = greatest(l.outstanding - (SELECT count(*)::int FROM settled), 0)
                FROM pending WHERE l.id = pending.link_id AND l.revoked_at IS NULL AND (l.max_uses IS NULL OR l.uses < l.max_uses)
                RETURNING l.id)
            SELECT (SELECT count(*) FROM pending)::int AS pending, (SELECT count(*) FROM spent)::int AS spent
            """, [.text(identityFingerprint)]).first
        return row?.int("pending") == 0 || row?.int("spent") == 1
    }

    /// Gives a claim back when its download failed (once: the claim row goes with it).
    static func release(_ database: Database, claimID: String) async throws {
        try await database.query("""
            WITH gone AS (DELETE FROM link_claims WHERE id = $1::uuid RETURNING link_id)
            UPDATE enrollment_links l SET outstanding = l.outstanding - 1 FROM gone WHERE l.id = gone.link_id AND l.outstanding > 0
            """, [.text(claimID)])
    }

    /// Claims that end without a spend: a download never recorded after `undelivered` (the gateway died between
    /// claiming and recording the profile, or PostgreSQL went away), a profile not enrolled with after `delivered`.
    /// Their places go back to their links; an expired delivered profile's identity may still enroll while the link
    /// has uses left (`spend` needs no claim).
    static func claimRecovery(undelivered: Duration, delivered: Duration) -> [RetentionPruner.Rule] {
        [.init(name: "expired enrollment link claims", deleteBatch: """
            WITH stale AS (
                DELETE FROM link_claims WHERE id IN (
                    SELECT id FROM link_claims
                    WHERE (delivered_at IS NULL AND claimed_at < now() - make_interval(secs => \(undelivered.components.seconds)))
                       OR delivered_at < now() - make_interval(secs => \(delivered.components.seconds))
                    LIMIT 5000)
                RETURNING link_id),
            counts AS (SELECT link_id, count(*) AS n FROM stale GROUP BY link_id)
            UPDATE enrollment_links l SET outstanding = greatest(l.outstanding - counts.n, 0) FROM counts WHERE l.id = counts.link_id
            RETURNING 1
            """)]
    }
}
