import OrchardStorage

/// This service's schema. The messaging outbox and inbox tables are added by the service kit.
enum ABMSyncMigrations {
    static let all: [Migration] = [
        Migration(1, "server tokens", """
            CREATE TABLE abm_tokens (
                id uuid PRIMARY KEY, name text NOT NULL UNIQUE,
                sealed_private_key bytea NOT NULL, certificate_pem text NOT NULL, certificate_sha256 text NOT NULL,
                sealed_server_token bytea, consumer_key text, access_token_expiry timestamptz,
                server_token_uploaded_at timestamptz, created_at timestamptz NOT NULL DEFAULT now());
            """),
        Migration(2, "server token health from ABM", """
            ALTER TABLE abm_tokens ADD COLUMN org_name text, ADD COLUMN server_name text, ADD COLUMN server_uuid text,
                ADD COLUMN last_checked_at timestamptz, ADD COLUMN last_error text,
                ADD COLUMN terms_not_signed boolean NOT NULL DEFAULT false;
            """),
    ]
}
