import Foundation
import OrchardStorage

/// What a device last reported installed (ProfileList), as JSON, with when.
enum InstalledProfilesStore {
    static func save(_ c: Connection, id: String, json: String) throws {
        try c.execute("UPDATE enrollments SET installed_profiles = $2, installed_profiles_at = now() WHERE id = $1", [.text(id), .text(json)])
    }

    static func load(_ database: Database, id: String) async throws -> (json: String?, at: Date?)? {
        guard let row = try await database.query("SELECT installed_profiles, installed_profiles_at FROM enrollments WHERE id = $1",
                                                 [.text(id)]).first else { return nil }
        return (row.string("installed_profiles"), row.date("installed_profiles_at"))
    }
}
