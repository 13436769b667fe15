import OrchardStorage

/// This service's schema. The messaging outbox and inbox tables are added by the service kit.
enum UserEnrollmentAuthMigrations {
    static let all: [Migration] = [
        Migration(1, "Managed Apple Account domains", """
            CREATE TABLE managed_domains (
                domain text PRIMARY KEY, mode text NOT NULL CHECK (mode IN ('mdm-byod', 'mdm-adde')),
                directory text NOT NULL DEFAULT 'local', minimum_os text NOT NULL, created_by text NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
            """),
        // Sign-in (items 3-5): a domain's LDAP directory (its search account's password sealed with ORCHARD_KEK),
        // access tokens by their SHA-256 (the token itself is never stored), and failed sign-ins per account and
        // per address for rate limiting and lockout.
        Migration(2, "directories, access tokens and sign-in throttling", """
            ALTER TABLE managed_domains ALTER COLUMN directory SET DEFAULT 'none';
            UPDATE managed_domains SET directory = 'none' WHERE directory = 'local';
            ALTER TABLE managed_domains ADD COLUMN ldap_settings text, ADD COLUMN ldap_bind_password bytea;
            CREATE TABLE account_tokens (
                id text PRIMARY KEY, token_hash text NOT NULL UNIQUE, managed_apple_id text NOT NULL, domain text NOT NULL,
                directory_dn text, issued_at timestamptz NOT NULL DEFAULT now(), expires_at timestamptz NOT NULL,
                directory_checked_at timestamptz NOT NULL DEFAULT now(), revoked_at timestamptz, revoked_reason text);
            CREATE INDEX account_tokens_user ON account_tokens (managed_apple_id);
            CREATE TABLE sign_in_failures (
                key text PRIMARY KEY, failures integer NOT NULL, window_started_at timestamptz NOT NULL,
                locked_until timestamptz);
            """),
    ]
}
