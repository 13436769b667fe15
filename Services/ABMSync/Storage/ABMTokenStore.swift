import Foundation
import OrchardStorage

/// The `abm_tokens` table: each ABM server token's key pair (sealed), its uploaded credentials (sealed), its health and
/// its account-driven discovery registration. `ServerTokens` holds the rules; every statement is here.
enum ABMTokenStore {
    static func insert(_ c: Connection, id: String, name: String, sealedKey: [UInt8], certificatePEM: String, certificateSHA256: String) throws {
        try c.query("""
            INSERT INTO abm_tokens (id, name, sealed_private_key, certificate_pem, certificate_sha256)
            VALUES ($1::uuid, $2, $3, $4, $5)
            """, [.text(id), .text(name), .bytes(sealedKey), .text(certificatePEM), .text(certificateSHA256)])
    }

    /// What an upload needs: name, sealed_private_key, certificate_pem, consumer_key and the staged key pair's columns.
    static func keys(_ database: Database, id: String) async throws -> Row? {
        try await database.query("""
            SELECT name, sealed_private_key, certificate_pem, consumer_key, staged_private_key, staged_certificate_pem,
                   staged_certificate_sha256 FROM abm_tokens WHERE id = $1::uuid
            """, [.text(id)]).first
    }

    static func saveCredentials(_ c: Connection, id: String, sealed: [UInt8], consumerKey: String, expiry: Date) throws {
        try c.query("""
            UPDATE abm_tokens SET sealed_server_token = $2, consumer_key = $3, access_token_expiry = $4,
                   server_token_uploaded_at = now(), expiry_warned_days = NULL WHERE id = $1::uuid
            """, [.text(id), .bytes(sealed), .text(consumerKey), .timestamp(expiry)])
    }

    /// The staged key pair becomes the token's key pair.
    static func promoteStagedKey(_ c: Connection, id: String, sealedKey: [UInt8], certificatePEM: String, certificateSHA256: String) throws {
        try c.query("""
            UPDATE abm_tokens SET sealed_private_key = $2, certificate_pem = $3, certificate_sha256 = $4,
                   staged_private_key = NULL, staged_certificate_pem = NULL, staged_certificate_sha256 = NULL, key_staged_at = NULL
            WHERE id = $1::uuid
            """, [.text(id), .bytes(sealedKey), .text(certificatePEM), .text(certificateSHA256)])
    }

    /// The discovery URL ABM has for the token, and whether its registration succeeded.
    static func discovery(_ database: Database, id: String) async throws -> (url: String?, registered: Bool)? {
        try await database.query("SELECT discovery_url, discovery_registered_at FROM abm_tokens WHERE id = $1::uuid", [.text(id)])
            .first.map { ($0.string("discovery_url"), $0.date("discovery_registered_at") != nil) }
    }

    static func saveDiscovery(_ c: Connection, id: String, url: String, failure: String?) throws {
        try c.query("""
            UPDATE abm_tokens SET discovery_url = $2, discovery_registered_at = CASE WHEN $3::text IS NULL THEN now() END,
                   discovery_error = $3 WHERE id = $1::uuid
            """, [.text(id), .text(url), .optionalText(failure)])
    }

    /// Stages a new key pair; the token's name, nil when there is no such token.
    static func stageKey(_ c: Connection, id: String, sealedKey: [UInt8], certificatePEM: String, certificateSHA256: String) throws -> String? {
        try c.query("""
            UPDATE abm_tokens SET staged_private_key = $2, staged_certificate_pem = $3, staged_certificate_sha256 = $4,
                   key_staged_at = now() WHERE id = $1::uuid RETURNING name
            """, [.text(id), .bytes(sealedKey), .text(certificatePEM), .text(certificateSHA256)]).first?.string("name")
    }

    static func expiry(_ database: Database, id: String) async throws -> (name: String?, expiry: Date, warnedDays: Int?)? {
        guard let row = try await database.query("""
            SELECT name, access_token_expiry, expiry_warned_days FROM abm_tokens WHERE id = $1::uuid
            """, [.text(id)]).first, let expiry = row.date("access_token_expiry") else { return nil }
        return (row.string("name"), expiry, row.int("expiry_warned_days"))
    }

    static func markWarned(_ c: Connection, id: String, days: Int) throws {
        try c.query("UPDATE abm_tokens SET expiry_warned_days = $2 WHERE id = $1::uuid", [.text(id), .int(days)])
    }

    static func idsWithCredentials(_ database: Database) async throws -> [String] {
        try await database.query("SELECT id::text AS id FROM abm_tokens WHERE access_token_expiry IS NOT NULL").compactMap { $0.string("id") }
    }

    /// Records `GET /account`'s outcome; the token's name.
    static func saveCheck(_ c: Connection, id: String, failure: String?, termsNotSigned: Bool, organization: String?,
                          serverName: String?, serverUUID: String?) throws -> String? {
        try c.query("""
            UPDATE abm_tokens SET last_checked_at = now(), last_error = $2, terms_not_signed = $3,
                   org_name = COALESCE($4, org_name), server_name = COALESCE($5, server_name), server_uuid = COALESCE($6, server_uuid)
            WHERE id = $1::uuid RETURNING name
            """, [.text(id), .optionalText(failure), .bool(termsNotSigned), .optionalText(organization), .optionalText(serverName),
                  .optionalText(serverUUID)]).first?.string("name")
    }

    /// `.some(nil)`: the token exists without an uploaded server token; nil: no such token.
    static func sealedCredentials(_ database: Database, id: String) async throws -> [UInt8]?? {
        guard let row = try await database.query("SELECT sealed_server_token FROM abm_tokens WHERE id = $1::uuid", [.text(id)]).first
        else { return nil }
        return .some(row.bytes("sealed_server_token"))
    }

    /// Every token's health columns (`healthColumns`), oldest first.
    static func healthRows(_ database: Database) async throws -> [Row] {
        try await database.query("\(healthColumns) ORDER BY created_at, id")
    }

    static func healthRow(_ database: Database, id: String) async throws -> Row? {
        try await database.query("\(healthColumns) WHERE id = $1::uuid", [.text(id)]).first
    }

    private static let healthColumns = """
        SELECT id::text AS id, name, certificate_pem, certificate_sha256, sealed_server_token IS NOT NULL AS has_token,
               consumer_key, access_token_expiry, server_token_uploaded_at, created_at, org_name, server_name, last_checked_at,
               last_error, terms_not_signed, staged_certificate_pem, staged_certificate_sha256, last_sync_at, last_sync_error,
               default_profile_id::text AS default_profile_id, discovery_url, discovery_registered_at, discovery_error,
               (SELECT count(*)::int FROM abm_devices d WHERE d.token_id = abm_tokens.id AND d.deleted_at IS NULL) AS devices
        FROM abm_tokens
        """

    /// The signing key of a token: for `serial` the token ABM assigned the device to, otherwise (or when none) the most
    /// recently connected one; id, sealed_private_key and server_uuid.
    static func signingKey(_ database: Database, serial: String?) async throws -> Row? {
        if let serial, !serial.isEmpty, let row = try await database.query("""
            SELECT t.id::text AS id, t.sealed_private_key, t.server_uuid FROM abm_tokens t JOIN abm_devices d ON d.token_id = t.id
            WHERE d.serial_number = $1 AND t.sealed_server_token IS NOT NULL ORDER BY t.server_token_uploaded_at DESC NULLS LAST LIMIT 1
            """, [.text(serial)]).first {
            return row
        }
        return try await database.query("""
            SELECT id::text AS id, sealed_private_key, server_uuid FROM abm_tokens WHERE sealed_server_token IS NOT NULL
            ORDER BY server_token_uploaded_at DESC NULLS LAST LIMIT 1
            """).first
    }

    static func signingKey(_ database: Database, id: String) async throws -> Row? {
        try await database.query("SELECT id::text AS id, sealed_private_key, server_uuid FROM abm_tokens WHERE id = $1::uuid", [.text(id)]).first
    }

    /// Tokens due for their periodic sync (credentials, terms signed, last sync older than `intervalSeconds`, no sync
    /// running elsewhere), with whether a full fetch is due (the last one is more than a day old).
    static func dueForSync(_ database: Database, intervalSeconds: Int) async throws -> [(id: String, fullFetch: Bool)] {
        try await database.query("""
            SELECT id::text AS id, (last_full_fetch_at IS NOT NULL AND last_full_fetch_at < now() - interval '1 day') AS full_fetch
            FROM abm_tokens
            WHERE sealed_server_token IS NOT NULL AND NOT terms_not_signed
              AND (last_sync_at IS NULL OR last_sync_at < now() - make_interval(secs => $1))
              AND (sync_lease_until IS NULL OR sync_lease_until < now())
            ORDER BY last_sync_at NULLS FIRST LIMIT 100
            """, [.int(intervalSeconds)]).compactMap { row in row.string("id").map { ($0, row.bool("full_fetch") == true) } }
    }
}
