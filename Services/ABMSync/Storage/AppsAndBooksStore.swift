import Foundation
import OrchardSchemas
import OrchardStorage

/// Every statement on the Apps and Books tables: content tokens, and Orchard's MDM id toward Apple.
enum AppsAndBooksStore {
    struct Token: Sendable {
        let sealed: [UInt8]
        let view: ContentTokenView
    }

    private static func token(_ r: Row) -> Token {
        Token(sealed: r.bytes("sealed_token") ?? [],
              view: ContentTokenView(id: r.string("id") ?? "", organization: r.string("organization") ?? "", location: r.string("location"),
                                     countryCode: r.string("country_code"), expiresAt: r.date("expires_at") ?? Date.distantPast,
                                     uploadedAt: r.date("uploaded_at") ?? Date()))
    }

    static func token(_ database: Database, id: String) async throws -> Token? {
        try await database.query("SELECT * FROM apps_books_tokens WHERE id = $1", [.text(id)]).first.map(token)
    }

    static func tokens(_ database: Database) async throws -> [Token] {
        try await database.query("SELECT * FROM apps_books_tokens ORDER BY id").map(token)
    }

    static func save(_ c: Connection, _ view: ContentTokenView, sealed: [UInt8], actor: String) throws {
        try c.query("""
            INSERT INTO apps_books_tokens (id, organization, location, country_code, expires_at, sealed_token, uploaded_by)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            ON CONFLICT (id) DO UPDATE SET organization = EXCLUDED.organization, location = EXCLUDED.location,
                country_code = EXCLUDED.country_code, expires_at = EXCLUDED.expires_at, sealed_token = EXCLUDED.sealed_token,
                uploaded_by = EXCLUDED.uploaded_by, uploaded_at = now()
            """, [.text(view.id), .text(view.organization), .optionalText(view.location), .optionalText(view.countryCode),
                  .timestamp(view.expiresAt), .bytes(sealed), .text(actor)])
    }

    /// The id Orchard gives Apple as its MDM (`mdmInfo.id`): made once, the same for every replica.
    static func mdmID(_ database: Database) async throws -> String {
        try await database.query("""
            WITH made AS (INSERT INTO apps_books_client (id, mdm_id) VALUES (1, $1::uuid) ON CONFLICT DO NOTHING RETURNING mdm_id)
            SELECT mdm_id::text AS id FROM made UNION ALL SELECT mdm_id::text FROM apps_books_client WHERE id = 1 LIMIT 1
            """, [.text(UUID().uuidString.lowercased())]).first?.string("id") ?? ""
    }

    /// ABM server tokens with credentials whose organisation Apple was never asked for.
    static func abmTokensWithoutOrganization(_ database: Database) async throws -> [String] {
        try await database.query("""
            SELECT id::text AS id FROM abm_tokens WHERE org_name IS NULL AND access_token_expiry IS NOT NULL ORDER BY id LIMIT 20
            """).compactMap { $0.string("id") }
    }

    /// The organisations Orchard's ABM server tokens belong to (as Apple named them when each was last checked).
    static func abmOrganizations(_ database: Database) async throws -> Set<String> {
        Set(try await database.query("SELECT DISTINCT org_name FROM abm_tokens WHERE org_name IS NOT NULL").compactMap { $0.string("org_name") })
    }
}
