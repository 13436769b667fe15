import Foundation
import OrchardStorage

/// ADE profiles defined with ABM (`abm_profiles`), each token's default, and which profile each mirrored device should
/// have (`abm_devices.wanted_profile_id` and the assignment columns). `ADEProfiles` and `Assigner` hold the rules.
enum ADEProfileStore {
    static func insert(_ c: Connection, id: String, tokenID: String, name: String, profileUUID: String, body: String, minimumOS: String,
                       definedBy: String, requiresSignIn: Bool) throws {
        try c.query("""
            INSERT INTO abm_profiles (id, token_id, name, profile_uuid, body, minimum_os, defined_by, requires_sign_in)
            VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6, $7, $8)
            """, [.text(id), .text(tokenID), .text(name), .text(profileUUID), .text(body), .text(minimumOS), .text(definedBy),
                  .bool(requiresSignIn)])
    }

    static func setDefault(_ c: Connection, tokenID: String, profileID: String) throws {
        try c.query("UPDATE abm_tokens SET default_profile_id = $2::uuid WHERE id = $1::uuid", [.text(tokenID), .text(profileID)])
    }

    /// Profiles requiring the sign-in page whose event did not say so yet, marked announced; their rows
    /// (id, token_id, name, profile_uuid, body, minimum_os).
    static func takeUnannouncedSignIn(_ c: Connection) throws -> [Row] {
        try c.query("""
            UPDATE abm_profiles SET sign_in_announced = true WHERE requires_sign_in AND NOT sign_in_announced
            RETURNING id::text AS id, token_id::text AS token_id, name, profile_uuid, body, minimum_os
            """)
    }

    /// The token a serial is mirrored under (the most recently changed, when several).
    static func tokenOf(_ database: Database, serial: String) async throws -> String? {
        try await database.query("""
            SELECT token_id::text AS token_id FROM abm_devices WHERE serial_number = $1 AND deleted_at IS NULL
            ORDER BY updated_at DESC LIMIT 1
            """, [.text(serial)]).first?.string("token_id")
    }

    /// Profiles with `viewColumns`, newest first.
    static func list(_ database: Database) async throws -> [Row] {
        try await database.query("\(viewColumns) ORDER BY p.defined_at DESC, p.id")
    }

    static func find(_ database: Database, id: String) async throws -> Row? {
        try await database.query("\(viewColumns) WHERE p.id = $1::uuid", [.text(id)]).first
    }

    private static let viewColumns = """
        SELECT p.id::text AS id, p.token_id::text AS token_id, p.name, p.profile_uuid, p.body, p.minimum_os, p.defined_at,
               p.requires_sign_in, t.default_profile_id IS NOT DISTINCT FROM p.id AS is_default
        FROM abm_profiles p JOIN abm_tokens t ON t.id = p.token_id
        """

    /// Chooses the profile for mirrored serials of its token (their cooldown ends); the serials it found.
    static func want(_ c: Connection, tokenID: String, profileID: String, serials: [String]) throws -> Set<String> {
        let json = String(decoding: try JSONSerialization.data(withJSONObject: serials), as: UTF8.self)
        return Set(try c.query("""
            UPDATE abm_devices SET wanted_profile_id = $2::uuid, assign_retry_at = NULL, assignment_cleared = false
            WHERE token_id = $1::uuid AND deleted_at IS NULL AND serial_number IN (SELECT jsonb_array_elements_text($3::jsonb))
            RETURNING serial_number
            """, [.text(tokenID), .text(profileID), .text(json)]).compactMap { $0.string("serial_number") })
    }

    /// A page of the mirror, by serial number, for one token or all.
    static func devices(_ database: Database, tokenID: String?, after: String, limit: Int) async throws -> [Row] {
        try await database.query("""
            SELECT token_id::text AS token_id, serial_number, model, os, device_family, color, asset_tag, description, profile_status,
                   profile_uuid, device_assigned_date, device_assigned_by, assign_state, assign_outcome, assign_retry_at,
                   deleted_at IS NOT NULL AS released, mdm_migration_deadline
            FROM abm_devices WHERE ($1::uuid IS NULL OR token_id = $1::uuid) AND serial_number > $2
            ORDER BY serial_number LIMIT $3
            """, [tokenID.map(SQLValue.text) ?? .null, .text(after), .int(limit)])
    }

    /// ABM removed the profile from these serials: kept out of default assignment; their rows (serial_number, model, os,
    /// device_family, profile_uuid, mdm_migration_deadline).
    static func profilesRemoved(_ c: Connection, tokenID: String, serials: [String]) throws -> [Row] {
        let json = String(decoding: try JSONSerialization.data(withJSONObject: serials), as: UTF8.self)
        return try c.query("""
            UPDATE abm_devices SET assignment_cleared = true, wanted_profile_id = NULL, profile_status = 'removed',
                   assign_state = 'unassigned', assign_outcome = 'REMOVED', assign_retry_at = NULL, updated_at = now()
            WHERE token_id = $1::uuid AND serial_number IN (SELECT jsonb_array_elements_text($2::jsonb))
            RETURNING serial_number, model, os, device_family, profile_uuid, mdm_migration_deadline
            """, [.text(tokenID), .text(json)])
    }

    /// Devices of the token whose profile (wanted, or the token's default) ABM does not show as theirs yet and whose
    /// cooldown is over (only `serials`, when given), by profile: serial_number, profile_uuid, name, migrating, awaits.
    static func assignmentCandidates(_ database: Database, tokenID: String, serials: [String]?) async throws -> [Row] {
        try await database.query("""
            SELECT d.serial_number, p.profile_uuid, p.name, d.mdm_migration_deadline IS NOT NULL AS migrating,
                   COALESCE((p.body::jsonb ->> 'await_device_configured')::boolean, false) AS awaits
            FROM abm_devices d
            JOIN abm_tokens t ON t.id = d.token_id
            JOIN abm_profiles p ON p.id = COALESCE(d.wanted_profile_id, t.default_profile_id)
            WHERE d.token_id = $1::uuid AND d.deleted_at IS NULL AND p.token_id = d.token_id AND NOT d.assignment_cleared
              AND (d.profile_uuid IS DISTINCT FROM p.profile_uuid OR COALESCE(d.profile_status, 'empty') IN ('empty', 'removed'))
              AND (d.assign_retry_at IS NULL OR d.assign_retry_at <= now())
              AND ($2::jsonb IS NULL OR d.serial_number IN (SELECT jsonb_array_elements_text($2::jsonb)))
            ORDER BY p.profile_uuid, d.serial_number
            """, [.text(tokenID), try serials.map { .text(String(decoding: try JSONSerialization.data(withJSONObject: $0), as: UTF8.self)) } ?? .null])
    }

    /// An assignment not asked of ABM: `outcome` recorded as a failure, retried in an hour.
    static func refuseAssignment(_ c: Connection, tokenID: String, serials: [String], outcome: String) throws {
        let json = String(decoding: try JSONSerialization.data(withJSONObject: serials), as: UTF8.self)
        try c.query("""
            UPDATE abm_devices SET assign_state = 'failed', assign_outcome = $3,
                   assign_retry_at = now() + interval '1 hour', updated_at = now()
            WHERE token_id = $1::uuid AND serial_number IN (SELECT jsonb_array_elements_text($2::jsonb))
            """, [.text(tokenID), .text(json), .text(outcome)])
    }

    /// ABM's outcome per serial (`wait`: seconds before a failed one is tried again); the rows (serial_number, model, os,
    /// device_family, outcome, mdm_migration_deadline).
    static func recordAssignment(_ c: Connection, tokenID: String, profileUUID: String,
                                 outcomes: [(serial: String, outcome: String, wait: Int)]) throws -> [Row] {
        let json = String(decoding: try JSONSerialization.data(withJSONObject: outcomes.map {
            ["serial": $0.serial, "outcome": $0.outcome, "wait": $0.wait] as [String: Any]
        }), as: UTF8.self)
        return try c.query("""
            UPDATE abm_devices d SET assign_outcome = o.outcome, assign_attempted_at = now(), updated_at = now(),
                assign_state = CASE o.outcome WHEN 'SUCCESS' THEN 'assigned' WHEN 'THROTTLED' THEN 'throttled'
                                              WHEN 'NOT_ACCESSIBLE' THEN 'not-accessible' ELSE 'failed' END,
                assign_retry_at = CASE WHEN o.outcome = 'SUCCESS' THEN NULL ELSE now() + make_interval(secs => o.wait) END,
                profile_uuid = CASE WHEN o.outcome = 'SUCCESS' THEN $2 ELSE d.profile_uuid END,
                profile_status = CASE WHEN o.outcome = 'SUCCESS' THEN 'assigned' ELSE d.profile_status END
            FROM jsonb_to_recordset($3::jsonb) AS o(serial text, outcome text, wait int)
            WHERE d.token_id = $1::uuid AND d.serial_number = o.serial
            RETURNING d.serial_number, d.model, d.os, d.device_family, o.outcome, d.mdm_migration_deadline
            """, [.text(tokenID), .text(profileUUID), .text(json)])
    }
}
