import Foundation
import OrchardStorage

/// The `managed_domains` table. Rows come back with `columns`, which `ManagedDomains.record(_:)` reads.
enum DomainStore {
    static let columns = "domain, mode, directory, minimum_os, updated_at, ldap_settings, ldap_bind_password, authentication, oidc_settings, enrollment_sso"

    struct Saved {
        let domain: String, mode: String, directory: String, minimumOS: String, actor: String
        let ldapSettings: String?, sealedBindPassword: [UInt8]?, authentication: String, oidcSettings: String?, enrollmentSSO: String?
    }

    /// Inserts or updates the domain (a bind password not given keeps the stored one, unless the LDAP settings go);
    /// true when it was new.
    static func save(_ c: Connection, _ d: Saved) throws -> Bool {
        try c.query("""
            INSERT INTO managed_domains (domain, mode, directory, minimum_os, created_by, ldap_settings, ldap_bind_password,
                                         authentication, oidc_settings, enrollment_sso)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            ON CONFLICT (domain) DO UPDATE SET mode = EXCLUDED.mode, directory = EXCLUDED.directory,
                minimum_os = EXCLUDED.minimum_os, ldap_settings = EXCLUDED.ldap_settings,
                authentication = EXCLUDED.authentication, oidc_settings = EXCLUDED.oidc_settings,
                enrollment_sso = EXCLUDED.enrollment_sso,
                ldap_bind_password = CASE WHEN EXCLUDED.ldap_settings IS NULL THEN NULL
                                          ELSE COALESCE(EXCLUDED.ldap_bind_password, managed_domains.ldap_bind_password) END,
                updated_at = now()
            RETURNING (xmax = 0) AS inserted
            """, [.text(d.domain), .text(d.mode), .text(d.directory), .text(d.minimumOS), .text(d.actor),
                  .optionalText(d.ldapSettings), d.sealedBindPassword.map(SQLValue.bytes) ?? .null, .text(d.authentication),
                  .optionalText(d.oidcSettings), .optionalText(d.enrollmentSSO)]).first?.bool("inserted") ?? true
    }

    static func list(_ database: Database) async throws -> [Row] {
        try await database.query("SELECT \(columns) FROM managed_domains ORDER BY domain")
    }

    static func find(_ database: Database, domain: String) async throws -> Row? {
        try await database.query("SELECT \(columns) FROM managed_domains WHERE domain = $1", [.text(domain)]).first
    }

    /// The domains whose OpenID Connect provider is `issuer`.
    static func trusting(_ database: Database, issuer: String) async throws -> [Row] {
        try await database.query("""
            SELECT \(columns) FROM managed_domains WHERE oidc_settings IS NOT NULL AND (oidc_settings::json ->> 'issuer') = $1
            """, [.text(issuer)])
    }

    static func delete(_ c: Connection, domain: String) throws -> Bool {
        !(try c.query("DELETE FROM managed_domains WHERE domain = $1 RETURNING 1", [.text(domain)])).isEmpty
    }
}
