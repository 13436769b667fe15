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
        Migration(3, "device mirror and sync state", """
            ALTER TABLE abm_tokens ADD COLUMN cursor text, ADD COLUMN cursor_kind text NOT NULL DEFAULT 'fetch',
                ADD COLUMN fetch_generation bigint NOT NULL DEFAULT 0, ADD COLUMN last_sync_at timestamptz,
                ADD COLUMN last_full_fetch_at timestamptz, ADD COLUMN last_sync_error text,
                ADD COLUMN sync_lease_holder text, ADD COLUMN sync_lease_until timestamptz;
            CREATE TABLE abm_devices (
                token_id uuid NOT NULL REFERENCES abm_tokens(id), serial_number text NOT NULL,
                model text, description text, color text, asset_tag text, os text, device_family text,
                profile_status text, profile_uuid text, profile_assign_time text, device_assigned_date text,
                device_assigned_by text, op_type text, op_date timestamptz, fields_hash bytea NOT NULL,
                seen_generation bigint NOT NULL, deleted_at timestamptz,
                created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (token_id, serial_number));
            """),
        Migration(4, "server token expiry warnings", """
            ALTER TABLE abm_tokens ADD COLUMN expiry_warned_days integer;
            """),
        Migration(5, "ADE profiles and assignment", """
            CREATE TABLE abm_profiles (
                id uuid PRIMARY KEY, token_id uuid NOT NULL REFERENCES abm_tokens(id), name text NOT NULL,
                profile_uuid text NOT NULL, body text NOT NULL, minimum_os text NOT NULL DEFAULT '{}',
                defined_by text NOT NULL, defined_at timestamptz NOT NULL DEFAULT now());
            ALTER TABLE abm_tokens ADD COLUMN default_profile_id uuid REFERENCES abm_profiles(id);
            ALTER TABLE abm_devices ADD COLUMN wanted_profile_id uuid REFERENCES abm_profiles(id),
                ADD COLUMN assign_state text NOT NULL DEFAULT 'unassigned', ADD COLUMN assign_outcome text,
                ADD COLUMN assign_retry_at timestamptz, ADD COLUMN assign_attempted_at timestamptz;
            """),
        Migration(6, "server token key rotation", """
            ALTER TABLE abm_tokens ADD COLUMN staged_private_key bytea, ADD COLUMN staged_certificate_pem text,
                ADD COLUMN staged_certificate_sha256 text, ADD COLUMN key_staged_at timestamptz;
            """),
        // Account-driven enrollment: the discovery URL registered with ABM for this server (iOS 18.2 / macOS 15.2 fall back
        // to it when the organisation's own domain does not answer), and the last attempt's error.
        Migration(7, "account-driven discovery URL registration", """
            ALTER TABLE abm_tokens ADD COLUMN discovery_url text, ADD COLUMN discovery_registered_at timestamptz,
                ADD COLUMN discovery_error text;
            """),
        // Hardening (issue 18): whether a profile's devices must sign in (its configuration_web_url is the gateway's
        // sign-in page). The gateway learns it from the profile's event; profiles defined before are marked from their
        // body and announced again at start-up (`sign_in_announced`).
        Migration(8, "ADE profiles that require the sign-in page", """
            ALTER TABLE abm_profiles ADD COLUMN requires_sign_in boolean NOT NULL DEFAULT false,
                ADD COLUMN sign_in_announced boolean NOT NULL DEFAULT true;
            UPDATE abm_profiles SET requires_sign_in = true, sign_in_announced = false
                WHERE body::jsonb->>'configuration_web_url' LIKE '%/mdm/ade/sign-in';
            """),
        // An administrator removed the device's profile at ABM (DELETE /profile/devices): the token's default is not
        // assigned to it again until someone assigns a profile explicitly.
        Migration(9, "profile assignment cleared by an administrator", """
            ALTER TABLE abm_devices ADD COLUMN assignment_cleared boolean NOT NULL DEFAULT false;
            """),
        // Migration from another MDM server through ABM (REFERENCE §4.8): the deadline ABM shows on a migrating device.
        Migration(10, "MDM migration deadline", """
            ALTER TABLE abm_devices ADD COLUMN mdm_migration_deadline timestamptz;
            """),
        // The Apple Business Manager API (OAuth 2 client credentials): API accounts, with their private key or a client
        // assertion made elsewhere (sealed with ORCHARD_KEK); the organisation's device inventory; assignment jobs.
        Migration(11, "Apple Business Manager API", """
            CREATE TABLE abm_api_accounts (
                id text PRIMARY KEY, client_id text NOT NULL, key_id text NOT NULL, scope text NOT NULL,
                sealed_key bytea, sealed_assertion bytea, assertion_expires_at timestamptz,
                created_by text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), inventory_at timestamptz);
            CREATE TABLE abm_org_devices (
                account_id text NOT NULL REFERENCES abm_api_accounts (id) ON DELETE CASCADE, serial_number text NOT NULL,
                model text, product_family text, part_number text, order_number text, purchase_source text, status text,
                added_to_org text, updated_at timestamptz NOT NULL DEFAULT now(), seen_generation bigint NOT NULL DEFAULT 0,
                PRIMARY KEY (account_id, serial_number));
            CREATE TABLE abm_api_jobs (
                activity_id text PRIMARY KEY, account_id text NOT NULL REFERENCES abm_api_accounts (id) ON DELETE CASCADE,
                server_id text NOT NULL, action text NOT NULL, serials text NOT NULL, status text NOT NULL, sub_status text,
                created_by text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
            """),
        // Apps and Books (app licences): content tokens (sealed with ORCHARD_KEK), and the one id Orchard gives Apple as
        // its MDM (`mdmInfo.id`) so a token Orchard uses is recognised as its own after a restart or on another replica.
        Migration(12, "Apps and Books content tokens", """
            CREATE TABLE apps_books_tokens (
                id text PRIMARY KEY, organization text NOT NULL, location text, country_code text, expires_at timestamptz NOT NULL,
                sealed_token bytea NOT NULL, uploaded_by text NOT NULL, uploaded_at timestamptz NOT NULL DEFAULT now());
            CREATE TABLE apps_books_client (id integer PRIMARY KEY CHECK (id = 1), mdm_id uuid NOT NULL);
            """),
    ]
}
