import Foundation
import OrchardStorage

/// A device as the mirror keeps it (one row of `abm_devices`), from one page of ABM's device fetch or sync.
struct ABMMirrorDevice: Sendable {
    let serialNumber: String
    let model: String?, description: String?, color: String?, assetTag: String?, os: String?, deviceFamily: String?
    let profileStatus: String?, profileUUID: String?, profileAssignTime: String?, deviceAssignedDate: String?
    let deviceAssignedBy: String?, opType: String?, opDate: Date?
    /// What the mirror keeps of the device, hashed: a page that repeats a device unchanged changes nothing.
    let fieldsHash: [UInt8]
    let migrationDeadline: Date?
}

/// The mirror of ABM's devices per server token (`abm_devices`) and each token's sync state (cursor, lease) in
/// `abm_tokens`. `DeviceSync` holds the rules; every statement is here.
enum ABMDeviceStore {
    /// Starts over with a full fetch (a new generation: devices the fetch does not show are then gone).
    static func restartFetch(_ database: Database, id: String) async throws {
        try await database.query("""
            UPDATE abm_tokens SET cursor = NULL, cursor_kind = 'fetch', fetch_generation = fetch_generation + 1 WHERE id = $1::uuid
            """, [.text(id)])
    }

    static func cursor(_ database: Database, id: String) async throws -> (cursor: String?, kind: String?, generation: Int)? {
        try await database.query("SELECT cursor, cursor_kind, fetch_generation FROM abm_tokens WHERE id = $1::uuid", [.text(id)])
            .first.map { ($0.string("cursor"), $0.string("cursor_kind"), $0.int("fetch_generation") ?? 0) }
    }

    static func saveCursor(_ database: Database, id: String, cursor: String?, kind: String) async throws {
        try await database.query("UPDATE abm_tokens SET cursor = $2, cursor_kind = $3 WHERE id = $1::uuid",
                                 [.text(id), .optionalText(cursor), .text(kind)])
    }

    /// The cursor after a page, with the lease renewed, in the page's transaction; nothing when another replica holds the lease.
    static func savePageCursor(_ c: Connection, id: String, cursor: String, kind: String, fetchFinished: Bool, leaseSeconds: Int,
                               holder: String) throws {
        try c.query("""
            UPDATE abm_tokens SET cursor = $2, cursor_kind = $3, sync_lease_until = now() + make_interval(secs => $5),
                   last_full_fetch_at = CASE WHEN $4 THEN now() ELSE last_full_fetch_at END
            WHERE id = $1::uuid AND sync_lease_holder = $6
            """, [.text(id), .text(cursor), .text(kind), .bool(fetchFinished), .int(leaseSeconds), .text(holder)])
    }

    /// Takes the token's sync lease: free, lapsed (its holder died), or already `holder`'s.
    static func takeLease(_ database: Database, id: String, holder: String, seconds: Int) async throws -> Bool {
        !(try await database.query("""
            UPDATE abm_tokens SET sync_lease_holder = $2, sync_lease_until = now() + make_interval(secs => $3)
            WHERE id = $1::uuid AND (sync_lease_until IS NULL OR sync_lease_until < now() OR sync_lease_holder = $2)
            RETURNING 1
            """, [.text(id), .text(holder), .int(seconds)])).isEmpty
    }

    /// Ends a sync: the lease released, the outcome recorded (the last sync time only moves on success).
    static func finishSync(_ database: Database, id: String, holder: String, error: String?, termsNotSigned: Bool) async throws {
        try await database.query("""
            UPDATE abm_tokens SET sync_lease_until = NULL, last_sync_at = CASE WHEN $2::text IS NULL THEN now() ELSE last_sync_at END,
                   last_sync_error = $2, terms_not_signed = terms_not_signed OR $4
            WHERE id = $1::uuid AND sync_lease_holder = $3
            """, [.text(id), .optionalText(error), .text(holder), .bool(termsNotSigned)])
    }

    static func activeCount(_ database: Database, id: String) async throws -> Int {
        try await database.query("""
            SELECT count(*)::int AS n FROM abm_devices WHERE token_id = $1::uuid AND deleted_at IS NULL
            """, [.text(id)]).first?.int("n") ?? 0
    }

    /// ABM's "deleted" for a device: true when the mirror had it (and no later change of it).
    static func markDeleted(_ c: Connection, id: String, serial: String, opDate: Date?) throws -> Bool {
        !(try c.query("""
            UPDATE abm_devices SET deleted_at = now(), op_type = 'deleted', op_date = $3, updated_at = now()
            WHERE token_id = $1::uuid AND serial_number = $2 AND deleted_at IS NULL
              AND (op_date IS NULL OR $3::timestamptz IS NULL OR op_date <= $3::timestamptz)
            RETURNING 1
            """, [.text(id), .text(serial), opDate.map(SQLValue.timestamp) ?? .null])).isEmpty
    }

    /// The devices in one statement (a page is 1,000 devices: one round trip, not 1,000); for each device that changed,
    /// whether it was new. No entry: an older change than the one recorded, or nothing new (a row only seen again by a
    /// full fetch, its generation moved, is no change either).
    static func upsert(_ c: Connection, id: String, generation: Int, _ devices: [ABMMirrorDevice]) throws -> [String: Bool] {
        guard !devices.isEmpty else { return [:] }
        var rows: [String] = [], parameters: [SQLValue] = [.text(id), .int(generation)]
        for device in devices {
            let n = parameters.count
            rows.append("($1::uuid, " + (1...15).map { "$\(n + $0)" }.joined(separator: ", ") + ", $2, $\(n + 16)::timestamptz)")
            parameters += [.text(device.serialNumber), .optionalText(device.model), .optionalText(device.description),
                           .optionalText(device.color), .optionalText(device.assetTag), .optionalText(device.os),
                           .optionalText(device.deviceFamily), .optionalText(device.profileStatus), .optionalText(device.profileUUID),
                           .optionalText(device.profileAssignTime), .optionalText(device.deviceAssignedDate),
                           .optionalText(device.deviceAssignedBy), .optionalText(device.opType),
                           device.opDate.map(SQLValue.timestamp) ?? .null, .bytes(device.fieldsHash),
                           device.migrationDeadline.map(SQLValue.timestamp) ?? .null]
        }
        let changed = try c.query("""
            WITH old AS (SELECT serial_number, fields_hash, deleted_at FROM abm_devices
                         WHERE token_id = $1::uuid AND serial_number = ANY($\(parameters.count + 1)::text[]))
            INSERT INTO abm_devices (token_id, serial_number, model, description, color, asset_tag, os, device_family,
                profile_status, profile_uuid, profile_assign_time, device_assigned_date, device_assigned_by, op_type, op_date,
                fields_hash, seen_generation, mdm_migration_deadline)
            VALUES \(rows.joined(separator: ", "))
            ON CONFLICT (token_id, serial_number) DO UPDATE SET model = EXCLUDED.model, description = EXCLUDED.description,
                color = EXCLUDED.color, asset_tag = EXCLUDED.asset_tag, os = EXCLUDED.os, device_family = EXCLUDED.device_family,
                profile_status = EXCLUDED.profile_status, profile_uuid = EXCLUDED.profile_uuid,
                profile_assign_time = EXCLUDED.profile_assign_time, device_assigned_date = EXCLUDED.device_assigned_date,
                device_assigned_by = EXCLUDED.device_assigned_by, op_type = EXCLUDED.op_type,
                op_date = COALESCE(EXCLUDED.op_date, abm_devices.op_date), fields_hash = EXCLUDED.fields_hash,
                seen_generation = EXCLUDED.seen_generation, mdm_migration_deadline = EXCLUDED.mdm_migration_deadline,
                deleted_at = NULL, updated_at = now()
            WHERE (abm_devices.fields_hash <> EXCLUDED.fields_hash OR abm_devices.deleted_at IS NOT NULL
                   OR abm_devices.seen_generation <> EXCLUDED.seen_generation)
              AND (abm_devices.op_date IS NULL OR EXCLUDED.op_date IS NULL OR abm_devices.op_date <= EXCLUDED.op_date)
            RETURNING abm_devices.serial_number, (xmax = 0) AS inserted,
                      COALESCE((SELECT o.fields_hash <> abm_devices.fields_hash OR o.deleted_at IS NOT NULL
                                FROM old o WHERE o.serial_number = abm_devices.serial_number), true) AS changed
            """, parameters + [.text(postgresArray(devices.map(\.serialNumber)))])
        var outcome: [String: Bool] = [:]
        for row in changed where row.bool("changed") == true {
            if let serial = row.string("serial_number") { outcome[serial] = row.bool("inserted") == true }
        }
        return outcome
    }

    /// After a full fetch: the devices it did not show are no longer assigned to this server; those rows
    /// (serial_number, model, os, device_family, mdm_migration_deadline).
    static func removeUnseen(_ c: Connection, id: String, generation: Int) throws -> [Row] {
        try c.query("""
            UPDATE abm_devices SET deleted_at = now(), op_type = 'deleted', updated_at = now()
            WHERE token_id = $1::uuid AND deleted_at IS NULL AND seen_generation <> $2
            RETURNING serial_number, model, os, device_family, mdm_migration_deadline
            """, [.text(id), .int(generation)])
    }
}
