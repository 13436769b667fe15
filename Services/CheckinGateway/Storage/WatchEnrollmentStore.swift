import OrchardStorage

/// All SQL of the watch-enrollment settings: the mode, the selected iPhones, the iPhones it is turned on
/// for, and the iPhone rows eligibility is decided from.
enum WatchEnrollmentStore {
    /// The enrollment columns `WatchEnrollmentSettings.ineligibility` reads.
    static let phoneColumns = "id, enrollment_kind, product_name, status, supervised, os_version, server_capabilities"

    static func save(_ c: Connection, mode: String, anchorsPEM: String?, selected: [String]) throws {
        try c.query("""
            INSERT INTO watch_enrollment_settings (id, mode, anchors_pem) VALUES (1, $1, $2)
            ON CONFLICT (id) DO UPDATE SET mode = EXCLUDED.mode, anchors_pem = EXCLUDED.anchors_pem, updated_at = now()
            """, [.text(mode), .optionalText(anchorsPEM)])
        try c.query("DELETE FROM watch_enrollment_selection")
        if !selected.isEmpty {
            try c.query("INSERT INTO watch_enrollment_selection SELECT unnest($1::text[]) ON CONFLICT DO NOTHING",
                        [.text(postgresArray(selected))])
        }
    }

    static func mode(_ c: Connection) throws -> String? {
        try c.query("SELECT mode FROM watch_enrollment_settings WHERE id = 1").first?.string("mode")
    }

    /// For one enrollment: the mode, and whether it is selected and turned on (one indexed round trip, whatever
    /// the number of phones; the whole selection is read only when reconciling every phone).
    static func scope(_ c: Connection, of id: String) throws -> (mode: String?, selected: Bool, enabled: Bool) {
        let row = try c.query("""
            SELECT (SELECT mode FROM watch_enrollment_settings WHERE id = 1) AS mode,
                   EXISTS (SELECT 1 FROM watch_enrollment_selection WHERE enrollment_id = $1) AS selected,
                   EXISTS (SELECT 1 FROM watch_enrollment_phones WHERE enrollment_id = $1) AS enabled
            """, [.text(id)]).first
        return (row?.string("mode"), row?.bool("selected") ?? false, row?.bool("enabled") ?? false)
    }

    static func selected(_ c: Connection) throws -> Set<String> {
        Set(try c.query("SELECT enrollment_id FROM watch_enrollment_selection").compactMap { $0.string("enrollment_id") })
    }

    static func enabledPhones(_ c: Connection) throws -> Set<String> {
        Set(try c.query("SELECT enrollment_id FROM watch_enrollment_phones").compactMap { $0.string("enrollment_id") })
    }

    /// iPhones (all, or `only`), and any enrollment selected or turned on, with the columns eligibility needs.
    static func candidatePhones(_ c: Connection, only: String?, selected: Set<String>, enabled: Set<String>) throws -> [Row] {
        try c.query("""
            SELECT \(phoneColumns) FROM enrollments WHERE ($1::text IS NULL OR id = $1)
              AND (product_name LIKE 'iPhone%' OR id = ANY($2::text[]) OR id = ANY($3::text[]))
            """, [.optionalText(only), .text(postgresArray(Array(selected))), .text(postgresArray(Array(enabled)))])
    }

    static func phone(_ c: Connection, id: String) throws -> Row? {
        try c.query("SELECT \(phoneColumns) FROM enrollments WHERE id = $1", [.text(id)]).first
    }

    static func isEnabled(_ c: Connection, phone: String) throws -> Bool {
        try !c.query("SELECT 1 FROM watch_enrollment_phones WHERE enrollment_id = $1", [.text(phone)]).isEmpty
    }

    static func enable(_ c: Connection, phone: String) throws {
        try c.execute("INSERT INTO watch_enrollment_phones (enrollment_id) VALUES ($1) ON CONFLICT DO NOTHING", [.text(phone)])
    }

    static func disable(_ c: Connection, phone: String) throws {
        try c.execute("DELETE FROM watch_enrollment_phones WHERE enrollment_id = $1", [.text(phone)])
    }

    static func declarationExists(_ c: Connection, identifier: String) throws -> Bool {
        try !c.query("SELECT 1 FROM declarations WHERE identifier = $1", [.text(identifier)]).isEmpty
    }

    static func anchorsPEM(_ database: Database) async throws -> String? {
        try await database.query("SELECT anchors_pem FROM watch_enrollment_settings WHERE id = 1").first?.string("anchors_pem")
    }
}
