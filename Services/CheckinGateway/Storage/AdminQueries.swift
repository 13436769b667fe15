import OrchardStorage
import OrchardSchemas

/// The admin API's reads and its few writes of its own (revocations, API keys), as SQL. The routes in
/// `Admin/` map these rows to their views; writes that belong to a flow go through that flow's store.
enum AdminQueries {
    static let deviceColumns = """
        e.id, e.udid, e.enrollment_kind, e.status, e.supervised, e.serial_number, e.os_version, e.build_version,
        e.product_name, e.model, e.device_name, (e.push_token IS NOT NULL AND NOT e.push_token_invalid) AS push_ok,
        (e.sealed_unlock_token IS NOT NULL) AS has_unlock, e.awaiting_configuration, e.created_at, e.enrolled_at,
        e.last_seen_at, e.paired_with, e.managed_apple_id, e.enrollment_mode, e.left_abm_at,
        ARRAY(SELECT p.id FROM enrollments p WHERE p.paired_with = e.id) AS paired_children,
        (SELECT a.state FROM ade_enrollments a WHERE a.udid = e.udid) AS ade_state
        """

    // MARK: Enrollment links

    static func links(_ database: Database) async throws -> [Row] {
        try await database.query("""
            SELECT id::text AS id, name, created_by, created_at, expires_at, max_uses, uses, outstanding, revoked_at
            FROM enrollment_links ORDER BY created_at DESC LIMIT 500
            """)
    }

    static func revokeLink(_ c: Connection, id: String) throws -> Bool {
        try !c.query("UPDATE enrollment_links SET revoked_at = now() WHERE id = $1::uuid AND revoked_at IS NULL RETURNING id",
                     [.text(id)]).isEmpty
    }

    // MARK: Devices and their commands

    static func devices(_ database: Database, status: String?, managedAppleID: String? = nil, after: String, limit: Int) async throws -> [Row] {
        try await database.query("""
            SELECT \(deviceColumns) FROM enrollments e
            WHERE ($1::text IS NULL OR e.status = $1) AND ($4::text IS NULL OR e.managed_apple_id = $4)
              AND e.id > $2 ORDER BY e.id LIMIT $3
            """, [.optionalText(status), .text(after), .int(limit), .optionalText(managedAppleID?.lowercased())])
    }

    static func device(_ database: Database, id: String) async throws -> Row? {
        try await database.query("SELECT \(deviceColumns) FROM enrollments e WHERE e.id = $1", [.text(id)]).first
    }

    static func commands(_ database: Database, of enrollmentID: String) async throws -> [Row] {
        try await database.query("""
            SELECT q.command_uuid, c.request_type, q.status, c.requested_by, q.queued_at, q.sent_at, q.completed_at, q.result
            FROM command_queue q JOIN commands c ON c.uuid = q.command_uuid WHERE q.enrollment_id = $1
            ORDER BY q.id DESC LIMIT 200
            """, [.text(enrollmentID)])
    }

    /// What per-device commands (ClearPasscode, Unenroll) are built from.
    /// The Apple Watches among `ids` (enrolled through an iPhone, or reporting a watch model), each with whether it is supervised.
    static func watches(_ c: Connection, among ids: [String]) throws -> [String: Bool] {
        var found: [String: Bool] = [:]
        for row in try c.query("""
            SELECT id, COALESCE(supervised, false) AS supervised FROM enrollments
            WHERE id = ANY($1::text[]) AND (paired_with IS NOT NULL OR product_name LIKE 'Watch%')
            """, [.text(postgresArray(ids))]) {
            if let id = row.string("id") { found[id] = row.bool("supervised") ?? false }
        }
        return found
    }

    /// The User Enrollments (`mdm-byod`) among `ids`, each with its ProductName (nil when the device never said).
    static func userEnrollments(_ c: Connection, among ids: [String]) throws -> [String: String?] {
        var found: [String: String?] = [:]
        for row in try c.query("SELECT id, product_name FROM enrollments WHERE id = ANY($1::text[]) AND enrollment_mode = $2",
                               [.text(postgresArray(ids)), .text(AccountEnrollmentMode.userEnrollment.rawValue)]) {
            if let id = row.string("id") { found[id] = row.string("product_name") }
        }
        return found
    }

    static func commandInputs(_ c: Connection, of enrollmentID: String) throws -> Row? {
        try c.query("SELECT sealed_unlock_token, profile_identifier FROM enrollments WHERE id = $1", [.text(enrollmentID)]).first
    }

    // MARK: Declarations

    static func declarations(_ database: Database) async throws -> [Row] {
        try await database.query("SELECT identifier, type, server_token, updated_at, payload FROM declarations ORDER BY identifier")
    }

    static func deleteDeclaration(_ c: Connection, identifier: String) throws -> Bool {
        try !c.query("DELETE FROM declarations WHERE identifier = $1 RETURNING identifier", [.text(identifier)]).isEmpty
    }

    static func assignedDeclarations(_ database: Database, to enrollmentID: String) async throws -> [String] {
        try await database.query("SELECT identifier FROM declaration_assignments WHERE enrollment_id = $1 ORDER BY identifier",
                                 [.text(enrollmentID)]).compactMap { $0.string("identifier") }
    }

    static func declarationStatus(_ database: Database, of enrollmentID: String) async throws -> Row? {
        try await database.query("SELECT report, received_at FROM declaration_status WHERE enrollment_id = $1", [.text(enrollmentID)]).first
    }

    // MARK: Activity

    static func activity(_ database: Database, deviceID: String?, action: String?, limit: Int) async throws -> [Row] {
        try await database.query("""
            SELECT id, occurred_at, actor, action, device_id, array_to_json(related_device_ids)::text AS related_device_ids,
                   outcome, detail, service, correlation_id
            FROM activity_log
            WHERE ($1::text IS NULL OR device_id = $1 OR related_device_ids @> ARRAY[$1::text])
              AND ($2::text IS NULL OR action = $2)
            ORDER BY occurred_at DESC, id LIMIT $3
            """, [.optionalText(deviceID), .optionalText(action), .int(limit)])
    }

    // MARK: Watch enrollment

    static func watchSettings(_ database: Database) async throws -> Row? {
        try await database.query("SELECT mode, anchors_pem IS NOT NULL AS anchors FROM watch_enrollment_settings WHERE id = 1").first
    }

    static func watchEnabledPhones(_ database: Database) async throws -> Set<String> {
        Set(try await database.query("SELECT enrollment_id FROM watch_enrollment_phones").compactMap { $0.string("enrollment_id") })
    }

    static func iPhones(_ database: Database) async throws -> [Row] {
        try await database.query("""
            SELECT \(WatchEnrollmentStore.phoneColumns) FROM enrollments WHERE product_name LIKE 'iPhone%' ORDER BY id LIMIT 10000
            """)
    }

    // MARK: API keys

    static func createKey(_ c: Connection, id: String, name: String, keyHash: [UInt8], scopes: [String]) throws {
        try c.query("INSERT INTO api_keys (id, name, key_hash, scopes) VALUES ($1::uuid, $2, $3, $4)",
                    [.text(id), .text(name), .bytes(keyHash), .text(scopes.joined(separator: ","))])
    }

    static func keys(_ database: Database) async throws -> [Row] {
        try await database.query("SELECT id::text AS id, name, scopes, created_at, revoked_at FROM api_keys ORDER BY name")
    }

    static func revokeKey(_ c: Connection, id: String) throws -> Bool {
        try !c.query("UPDATE api_keys SET revoked_at = now() WHERE id = $1::uuid AND revoked_at IS NULL RETURNING id",
                     [.text(id)]).isEmpty
    }

    /// The unrevoked key with this SHA-256 (hex), as id, name and scopes.
    static func activeKey(_ database: Database, hashHex: String) async throws -> Row? {
        try await database.query("""
            SELECT id::text AS id, name, scopes FROM api_keys WHERE key_hash = decode($1, 'hex') AND revoked_at IS NULL
            """, [.text(hashHex)]).first
    }

    static func installBootstrapKey(_ database: Database, keyHash: [UInt8]) async throws {
        try await database.query("""
            INSERT INTO api_keys (id, name, key_hash, scopes) VALUES (gen_random_uuid(), 'bootstrap', $1, 'admin')
            ON CONFLICT (name) DO UPDATE SET key_hash = EXCLUDED.key_hash, scopes = 'admin', revoked_at = NULL
            """, [.bytes(keyHash)])
    }
}
