import Foundation
import OrchardStorage

/// All SQL on declarations, their assignment to enrollments, and the status reports devices send.
enum DeclarationStore {
    struct Stored: Sendable {
        let identifier: String, type: String, payload: String, serverToken: String, updatedAt: Date?
    }

    /// The declarations assigned to an enrollment.
    static func assigned(_ database: Database, to enrollmentID: String) async throws -> [Stored] {
        try await database.query("""
            SELECT d.identifier, d.type, d.payload, d.server_token, d.updated_at
            FROM declaration_assignments a JOIN declarations d USING (identifier) WHERE a.enrollment_id = $1
            """, [.text(enrollmentID)]).compactMap { r in
            guard let id = r.string("identifier"), let type = r.string("type"), let token = r.string("server_token"),
                  let payload = r.string("payload") else { return nil }
            return Stored(identifier: id, type: type, payload: payload, serverToken: token, updatedAt: r.date("updated_at"))
        }
    }

    /// Identifier and server token of each declaration assigned to an enrollment (for its declarations token).
    static func tokens(_ c: Connection, of enrollmentID: String) throws -> [(identifier: String, serverToken: String)] {
        try c.query("""
            SELECT d.identifier, d.server_token FROM declaration_assignments a JOIN declarations d USING (identifier)
            WHERE a.enrollment_id = $1
            """, [.text(enrollmentID)]).map { (identifier: $0.string("identifier") ?? "", serverToken: $0.string("server_token") ?? "") }
    }

    static func saveStatus(_ c: Connection, enrollmentID: String, reportJSON: String) throws {
        try c.query("""
            INSERT INTO declaration_status (enrollment_id, report) VALUES ($1, $2)
            ON CONFLICT (enrollment_id) DO UPDATE SET report = EXCLUDED.report, received_at = now()
            """, [.text(enrollmentID), .text(reportJSON)])
    }

    /// Creates or replaces a declaration; returns the enrollments it is assigned to.
    static func upsert(_ c: Connection, identifier: String, type: String, payload: String, serverToken: String) throws -> [String] {
        try c.query("""
            INSERT INTO declarations (identifier, type, payload, server_token) VALUES ($1, $2, $3, $4)
            ON CONFLICT (identifier) DO UPDATE SET type = EXCLUDED.type, payload = EXCLUDED.payload,
                server_token = EXCLUDED.server_token, updated_at = now()
            """, [.text(identifier), .text(type), .text(payload), .text(serverToken)])
        return try c.query("SELECT enrollment_id FROM declaration_assignments WHERE identifier = $1",
                           [.text(identifier)]).compactMap { $0.string("enrollment_id") }
    }

    /// Creates a declaration, or changes it only when its server token differs (the app rollout writes the same ones
    /// for each batch): no enrollments read, no `updated_at` moved for nothing.
    static func put(_ c: Connection, identifier: String, type: String, payload: String, serverToken: String) throws {
        try c.query("""
            INSERT INTO declarations (identifier, type, payload, server_token) VALUES ($1, $2, $3, $4)
            ON CONFLICT (identifier) DO UPDATE SET type = EXCLUDED.type, payload = EXCLUDED.payload,
                server_token = EXCLUDED.server_token, updated_at = now()
            WHERE declarations.server_token IS DISTINCT FROM EXCLUDED.server_token
            """, [.text(identifier), .text(type), .text(payload), .text(serverToken)])
    }

    /// Type and payload (JSON text) of those of `identifiers` that exist, by identifier.
    static func definitions(_ c: Connection, _ identifiers: [String]) throws -> [String: (type: String, payload: String)] {
        var found: [String: (type: String, payload: String)] = [:]
        for row in try c.query("SELECT identifier, type, payload FROM declarations WHERE identifier = ANY($1::text[])",
                               [.text(postgresArray(identifiers))]) {
            if let id = row.string("identifier") { found[id] = (row.string("type") ?? "", row.string("payload") ?? "") }
        }
        return found
    }

    /// Those of `identifiers` that exist.
    static func existing(_ c: Connection, _ identifiers: [String]) throws -> Set<String> {
        Set(try c.query("SELECT identifier FROM declarations WHERE identifier = ANY($1::text[])",
                        [.text(postgresArray(identifiers))]).compactMap { $0.string("identifier") })
    }

    static func replaceAssignments(_ c: Connection, of enrollmentID: String, with identifiers: [String]) throws {
        try c.query("DELETE FROM declaration_assignments WHERE enrollment_id = $1", [.text(enrollmentID)])
        try add(c, identifiers, to: enrollmentID)
    }

    static func add(_ c: Connection, _ identifiers: [String], to enrollmentID: String) throws {
        guard !identifiers.isEmpty else { return }
        try c.query("INSERT INTO declaration_assignments SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING",
                    [.text(enrollmentID), .text(postgresArray(identifiers))])
    }

    static func remove(_ c: Connection, _ identifiers: [String], from enrollmentID: String) throws {
        guard !identifiers.isEmpty else { return }
        try c.query("DELETE FROM declaration_assignments WHERE enrollment_id = $1 AND identifier = ANY($2::text[])",
                    [.text(enrollmentID), .text(postgresArray(identifiers))])
    }
}
