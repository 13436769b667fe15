import AppleProtocol
import Foundation
import OrchardStorage

/// The user channels of macOS enrollments: each user's push credentials, kept apart from the device's.
enum UserChannelStore {
    /// How many users' channels one enrollment may hold: a Mac has a handful of local users; a device that reports
    /// more is refused rather than allowed to grow the table without bound.
    static let limitPerEnrollment = 64

    enum Outcome: Equatable { case registered, updated, full }

    /// Records the user's TokenUpdate; `.full` (nothing written) when the enrollment already has `limitPerEnrollment`
    /// other users.
    static func tokenUpdate(_ c: Connection, enrollmentID: String, user: String, _ m: TokenUpdate) throws -> Outcome {
        let rows = try c.query("""
            WITH room AS (
                SELECT count(*) < $8 AS ok FROM user_channels WHERE enrollment_id = $1 AND user_id <> $2)
            INSERT INTO user_channels (enrollment_id, user_id, short_name, long_name, push_token, push_magic, topic)
            SELECT $1, $2, $3, $4, $5, $6, $7 FROM room WHERE ok
            ON CONFLICT (enrollment_id, user_id) DO UPDATE SET short_name = EXCLUDED.short_name, long_name = EXCLUDED.long_name,
                push_token = EXCLUDED.push_token, push_magic = EXCLUDED.push_magic, topic = EXCLUDED.topic, last_seen_at = now()
            RETURNING (xmax = 0) AS inserted
            """, [.text(enrollmentID), .text(user), .optionalText(m.identity.userShortName), .optionalText(m.identity.userLongName),
                  .bytes(m.token), .text(m.pushMagic), .text(m.topic), .int(limitPerEnrollment)])
        guard let row = rows.first else { return .full }
        return row.bool("inserted") == true ? .registered : .updated
    }

    /// Records that the user's channel was seen; false when the user has no channel (no TokenUpdate yet).
    static func touch(_ c: Connection, enrollmentID: String, user: String) throws -> Bool {
        !(try c.query("UPDATE user_channels SET last_seen_at = now() WHERE enrollment_id = $1 AND user_id = $2 RETURNING 1",
                      [.text(enrollmentID), .text(user)])).isEmpty
    }

    /// An enrollment's user channels, for the admin API.
    static func channels(_ database: Database, enrollmentID: String) async throws -> [Row] {
        try await database.query("""
            SELECT user_id, short_name, long_name, created_at, last_seen_at FROM user_channels WHERE enrollment_id = $1 ORDER BY user_id
            """, [.text(enrollmentID)])
    }
}
