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
        // OAuth 2 (item 6): a domain's sign-in method; authorization codes and refresh tokens by their SHA-256. A refresh
        // token belongs to a family (one sign-in); reusing a rotated one revokes the family's tokens.
        Migration(3, "OAuth 2 sign-in", """
            ALTER TABLE managed_domains ADD COLUMN authentication text NOT NULL DEFAULT 'apple-as-web'
                CHECK (authentication IN ('apple-as-web', 'apple-oauth2'));
            ALTER TABLE account_tokens ADD COLUMN family_id text;
            CREATE INDEX account_tokens_family ON account_tokens (family_id) WHERE family_id IS NOT NULL;
            CREATE TABLE account_codes (
                code_hash text PRIMARY KEY, client_id text NOT NULL, redirect_uri text NOT NULL, code_challenge text,
                managed_apple_id text NOT NULL, domain text NOT NULL, directory_dn text, family_id text NOT NULL,
                expires_at timestamptz NOT NULL, used_at timestamptz);
            CREATE TABLE account_refresh_tokens (
                token_hash text PRIMARY KEY, family_id text NOT NULL, client_id text NOT NULL, managed_apple_id text NOT NULL,
                domain text NOT NULL, directory_dn text, issued_at timestamptz NOT NULL DEFAULT now(),
                expires_at timestamptz NOT NULL, used_at timestamptz, revoked_at timestamptz);
            CREATE INDEX account_refresh_tokens_family ON account_refresh_tokens (family_id);
            """),
        // The directory is asked again about a user, not about each of the user's tokens (all of a user's devices
        // share one answer); revocations by user also cover tokens Orchard did not issue (an OIDC provider's).
        Migration(4, "directory checks and revocations per user", """
            CREATE TABLE account_users (
                managed_apple_id text PRIMARY KEY, directory_checked_at timestamptz NOT NULL DEFAULT now(),
                revoked_before timestamptz);
            INSERT INTO account_users (managed_apple_id, directory_checked_at)
                SELECT managed_apple_id, max(directory_checked_at) FROM account_tokens GROUP BY managed_apple_id;
            ALTER TABLE account_tokens DROP COLUMN directory_checked_at;
            """),
        Migration(5, "external OpenID Connect providers", """
            ALTER TABLE managed_domains ADD COLUMN oidc_settings text;
            """),
        // The directory sweep (one replica per interval claims it here) replaces asking the directory on a device's request.
        Migration(6, "directory sweeps", """
            CREATE TABLE directory_sweeps (name text PRIMARY KEY, swept_at timestamptz NOT NULL);
            """),
        // An OAuth 2 code outstanding when its user's tokens are revoked (admin, directory) is revoked with them.
        Migration(7, "revocable authorization codes", """
            ALTER TABLE account_codes ADD COLUMN revoked_at timestamptz;
            CREATE INDEX account_codes_user ON account_codes (managed_apple_id) WHERE used_at IS NULL AND revoked_at IS NULL;
            """),
        // Enrollment SSO (issue 22): the identity app a domain's devices sign in with, as JSON (EnrollmentSSOSettings).
        Migration(8, "enrollment SSO", """
            ALTER TABLE managed_domains ADD COLUMN enrollment_sso text;
            """),
    ]
}
