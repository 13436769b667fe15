import OrchardStorage

/// checkin-gateway's schema: enrollments and their identities, the command queue, push certificate,
/// declarations, enrollment links, admin API keys and the activity log it serves.
enum CheckinGatewayMigrations {
    static let all: [Migration] = [
        Migration(1, "enrollments, identities and links", """
            CREATE TABLE enrollment_links (
                id uuid PRIMARY KEY, name text NOT NULL, token_hash bytea NOT NULL UNIQUE,
                created_by text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),
                expires_at timestamptz, max_uses integer, uses integer NOT NULL DEFAULT 0, revoked_at timestamptz);
            CREATE TABLE trusted_device_cas (
                fingerprint text PRIMARY KEY, certificate bytea NOT NULL, added_at timestamptz NOT NULL DEFAULT now());
            CREATE TABLE issued_identities (
                fingerprint text PRIMARY KEY, link_id uuid, issued_at timestamptz NOT NULL DEFAULT now(),
                mdm_payload_identifier text NOT NULL);
            CREATE TABLE enrollments (
                id text PRIMARY KEY, udid text, enrollment_kind text NOT NULL, status text NOT NULL,
                identity_fingerprint text NOT NULL, topic text NOT NULL,
                serial_number text, os_version text, build_version text, product_name text, model text, device_name text,
                supervised boolean, push_token bytea, push_magic text, push_token_invalid boolean NOT NULL DEFAULT false,
                sealed_unlock_token bytea, sealed_bootstrap_token bytea, awaiting_configuration boolean NOT NULL DEFAULT false,
                mdm_payload_identifier text, paired_with text,
                created_at timestamptz NOT NULL DEFAULT now(), enrolled_at timestamptz, last_seen_at timestamptz);
            CREATE UNIQUE INDEX enrollments_identity ON enrollments (identity_fingerprint);
            """),
        Migration(2, "command queue", """
            CREATE TABLE commands (
                uuid text PRIMARY KEY, request_type text NOT NULL, plist bytea NOT NULL,
                requested_by text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
            CREATE TABLE command_queue (
                id bigserial PRIMARY KEY, enrollment_id text NOT NULL REFERENCES enrollments ON DELETE CASCADE,
                command_uuid text NOT NULL REFERENCES commands ON DELETE CASCADE, status text NOT NULL,
                queued_at timestamptz NOT NULL DEFAULT now(), sent_at timestamptz, completed_at timestamptz, result bytea,
                UNIQUE (enrollment_id, command_uuid));
            -- Only unfinished rows are indexed for the device's next command: finished ones never slow it down.
            CREATE INDEX command_queue_active ON command_queue (enrollment_id, id) WHERE completed_at IS NULL;
            CREATE INDEX command_queue_finished ON command_queue (completed_at) WHERE completed_at IS NOT NULL;
            """),
        Migration(3, "push, declarations, admin", """
            CREATE TABLE push_certificate (
                id integer PRIMARY KEY CHECK (id = 1), certificate bytea NOT NULL, sealed_key bytea NOT NULL,
                topic text NOT NULL, not_after timestamptz NOT NULL, uploaded_at timestamptz NOT NULL DEFAULT now());
            CREATE TABLE declarations (
                identifier text PRIMARY KEY, type text NOT NULL, payload text NOT NULL, server_token text NOT NULL,
                updated_at timestamptz NOT NULL DEFAULT now());
            CREATE TABLE declaration_assignments (
                enrollment_id text NOT NULL REFERENCES enrollments ON DELETE CASCADE,
                identifier text NOT NULL REFERENCES declarations ON DELETE CASCADE,
                PRIMARY KEY (enrollment_id, identifier));
            CREATE TABLE declaration_status (
                enrollment_id text PRIMARY KEY REFERENCES enrollments ON DELETE CASCADE, report text NOT NULL,
                received_at timestamptz NOT NULL DEFAULT now());
            CREATE TABLE api_keys (
                id uuid PRIMARY KEY, name text NOT NULL UNIQUE, key_hash bytea NOT NULL UNIQUE, scopes text NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(), revoked_at timestamptz);
            CREATE TABLE activity_log (
                id text PRIMARY KEY, occurred_at timestamptz NOT NULL, actor text NOT NULL, action text NOT NULL,
                device_id text, related_device_ids text NOT NULL, outcome text NOT NULL, detail text,
                service text NOT NULL, correlation_id text);
            CREATE INDEX activity_log_device ON activity_log (device_id, occurred_at);
            CREATE INDEX activity_log_time ON activity_log (occurred_at);
            """),
        Migration(4, "watch enrollment", """
            ALTER TABLE issued_identities ADD COLUMN server_capabilities text NOT NULL DEFAULT '';
            ALTER TABLE issued_identities ADD COLUMN paired_phone text;
            ALTER TABLE enrollments ADD COLUMN server_capabilities text;
            CREATE INDEX enrollments_paired_with ON enrollments (paired_with) WHERE paired_with IS NOT NULL;
            CREATE TABLE watch_enrollment_settings (
                id integer PRIMARY KEY CHECK (id = 1), mode text NOT NULL, anchors_pem text,
                updated_at timestamptz NOT NULL DEFAULT now());
            CREATE TABLE watch_enrollment_selection (enrollment_id text PRIMARY KEY);
            CREATE TABLE watch_enrollment_phones (
                enrollment_id text PRIMARY KEY REFERENCES enrollments ON DELETE CASCADE,
                enabled_at timestamptz NOT NULL DEFAULT now());
            """),
        // Entries about a device as the related one (a watch's steps, for its iPhone) found by an index,
        // and by the whole identifier: a comma list searched with LIKE matched substrings and scanned.
        Migration(5, "activity log related devices as an indexed array", """
            ALTER TABLE activity_log ALTER COLUMN related_device_ids TYPE text[]
                USING CASE WHEN related_device_ids = '' THEN '{}'::text[] ELSE string_to_array(related_device_ids, ',') END;
            CREATE INDEX activity_log_related ON activity_log USING gin (related_device_ids);
            """),
        // An identity is bound to the one enrollment it first authenticated (for ever, not only while it
        // is that enrollment's current one), and to the one device it was issued to when Orchard knew the
        // device at issue time (a watch, from its verified MachineInfo).
        Migration(6, "identity bindings", """
            ALTER TABLE issued_identities ADD COLUMN device_id text;
            CREATE TABLE identity_bindings (
                fingerprint text PRIMARY KEY, enrollment_id text NOT NULL, bound_at timestamptz NOT NULL DEFAULT now());
            INSERT INTO identity_bindings (fingerprint, enrollment_id)
                SELECT identity_fingerprint, id FROM enrollments ON CONFLICT DO NOTHING;
            """),
        // Unenroll removes the profile by its top-level PayloadIdentifier (RemoveProfile), not the MDM
        // payload's: Orchard's profiles name the MDM payload `<profile identifier>.mdm`.
        Migration(7, "profile identifiers", """
            ALTER TABLE issued_identities RENAME COLUMN mdm_payload_identifier TO profile_identifier;
            ALTER TABLE enrollments RENAME COLUMN mdm_payload_identifier TO profile_identifier;
            UPDATE issued_identities SET profile_identifier = left(profile_identifier, -4) WHERE profile_identifier LIKE '%.mdm';
            UPDATE enrollments SET profile_identifier = left(profile_identifier, -4) WHERE profile_identifier LIKE '%.mdm';
            """),
        // A link use claimed for a download stays a claim until the profile's identity is recorded; a
        // claim the gateway never settled (it died, or PostgreSQL went away) is given back by a sweeper.
        Migration(8, "enrollment link claims", """
            CREATE TABLE link_claims (
                id uuid PRIMARY KEY, link_id uuid NOT NULL REFERENCES enrollment_links ON DELETE CASCADE,
                claimed_at timestamptz NOT NULL DEFAULT now());
            CREATE INDEX link_claims_at ON link_claims (claimed_at);
            """),
        // A pairing token is spent when the profile it paid for is recorded, in that transaction.
        Migration(9, "spent pairing tokens", """
            CREATE TABLE spent_pairing_tokens (
                token_id text PRIMARY KEY, watch_udid text NOT NULL, expires_at timestamptz NOT NULL,
                spent_at timestamptz NOT NULL DEFAULT now());
            CREATE INDEX spent_pairing_tokens_expiry ON spent_pairing_tokens (expires_at);
            """),
        // The gateway's own copy of what ADE enrollment needs from abm-sync's events (it enrolls while
        // abm-sync is down), each ADE device's way through setup, and the setup items of each ADE profile.
        Migration(10, "automated device enrollment", """
            CREATE TABLE ade_devices (
                serial_number text PRIMARY KEY, token_id text NOT NULL, profile_uuid text, profile_status text,
                model text, os text, device_family text, released boolean NOT NULL DEFAULT false,
                updated_at timestamptz NOT NULL DEFAULT now());
            CREATE TABLE ade_profiles (
                profile_uuid text PRIMARY KEY, profile_id text NOT NULL, token_id text NOT NULL, name text NOT NULL,
                is_supervised boolean NOT NULL, is_mdm_removable boolean NOT NULL, await_device_configured boolean NOT NULL,
                anchors text NOT NULL DEFAULT '[]', minimum_os text NOT NULL DEFAULT '{}',
                updated_at timestamptz NOT NULL DEFAULT now());
            CREATE INDEX ade_profiles_profile_id ON ade_profiles (profile_id);
            CREATE TABLE ade_setup_items (
                profile_id text PRIMARY KEY, commands text NOT NULL DEFAULT '[]', declarations text NOT NULL DEFAULT '[]',
                updated_by text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
            CREATE TABLE ade_enrollments (
                udid text PRIMARY KEY, serial_number text NOT NULL, profile_uuid text NOT NULL, state text NOT NULL,
                reason text, await_configured boolean NOT NULL DEFAULT false, setup_deadline timestamptz,
                release_command text, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
            CREATE INDEX ade_enrollments_serial ON ade_enrollments (serial_number);
            CREATE INDEX ade_enrollments_deadline ON ade_enrollments (setup_deadline) WHERE state = 'setting up';
            CREATE TABLE ade_setup_commands (
                udid text NOT NULL, command_uuid text NOT NULL, request_type text NOT NULL, status text,
                PRIMARY KEY (udid, command_uuid));
            """),
        // Local accounts for the ADE sign-in page (configuration_web_url): PBKDF2-SHA256, a lockout after failures.
        Migration(11, "ADE sign-in accounts", """
            CREATE TABLE ade_accounts (
                username text PRIMARY KEY, salt bytea NOT NULL, password_hash bytea NOT NULL, iterations integer NOT NULL,
                disabled boolean NOT NULL DEFAULT false, failures integer NOT NULL DEFAULT 0, locked_until timestamptz,
                created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
            """),
        // Account-driven enrollment: the Managed Apple Account a profile was served to, and whether its device sends
        // the bearer on every request (iOS, iPadOS: yes; macOS device channel: no). Copied to the enrollment at Authenticate.
        Migration(12, "account-driven enrollments", """
            ALTER TABLE issued_identities ADD COLUMN managed_apple_id text, ADD COLUMN account_domain text,
                ADD COLUMN enrollment_mode text, ADD COLUMN bearer_required boolean NOT NULL DEFAULT false;
            ALTER TABLE enrollments ADD COLUMN managed_apple_id text, ADD COLUMN account_domain text,
                ADD COLUMN enrollment_mode text, ADD COLUMN bearer_required boolean NOT NULL DEFAULT false;
            CREATE INDEX enrollments_managed_apple_id ON enrollments (managed_apple_id) WHERE managed_apple_id IS NOT NULL;
            """),
        // The gateway's copy of user-enrollment-auth's access tokens (by SHA-256), from orchard.account-token-events.v1:
        // a device's bearer is checked here, without a request to another service on every check-in.
        Migration(13, "account token copy", """
            CREATE TABLE account_token_copy (
                token_hash text PRIMARY KEY, token_id text NOT NULL, managed_apple_id text NOT NULL, domain text NOT NULL,
                expires_at timestamptz NOT NULL, revoked_at timestamptz, revoked_reason text);
            CREATE INDEX account_token_copy_expiry ON account_token_copy (expires_at);
            """),
        // Hardening (issue 18): an ADE profile may require the sign-in page (its `url` then serves no profile); failed
        // sign-ins are counted per account and per client address (unknown accounts included) in one table, as
        // user-enrollment-auth counts them, instead of on the account row; an administrator may allow an enrolled
        // serial to re-enroll once without ABM showing a new profile push.
        Migration(14, "ADE sign-in requirement, sign-in throttling, re-enrollment allowances", """
            ALTER TABLE ade_profiles ADD COLUMN requires_sign_in boolean NOT NULL DEFAULT false;
            \(FailureThrottle.tableDefinition())
            ALTER TABLE ade_accounts DROP COLUMN failures, DROP COLUMN locked_until;
            CREATE TABLE ade_reenrollment_allowances (
                serial_number text PRIMARY KEY, allowed_by text NOT NULL, allowed_at timestamptz NOT NULL DEFAULT now(),
                expires_at timestamptz NOT NULL);
            """),
        // macOS user channels (issue 22): each user's push credentials, apart from the device's, keyed by the enrollment
        // and the user's identifier (EnrollmentUserID in a User Enrollment, UserID otherwise).
        Migration(15, "user channels", """
            CREATE TABLE user_channels (
                enrollment_id text NOT NULL REFERENCES enrollments (id) ON DELETE CASCADE, user_id text NOT NULL,
                short_name text, long_name text, push_token bytea NOT NULL, push_magic text NOT NULL, topic text NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(), last_seen_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (enrollment_id, user_id));
            """),
        // Platform SSO in Setup Assistant (macOS 26, issue 21): an ADE profile (Orchard's id) may require it; the settings
        // as JSON (`ADEPlatformSSO`).
        Migration(16, "ADE platform SSO", """
            CREATE TABLE ade_platform_sso (
                profile_id text PRIMARY KEY, settings text NOT NULL, updated_by text NOT NULL,
                updated_at timestamptz NOT NULL DEFAULT now());
            """),
        // Return to Service (iOS, visionOS 26, issue 21): per ADE profile, the Wi-Fi profile a device installs after it
        // erased itself (none: the device has Ethernet).
        Migration(17, "ADE return to service", """
            CREATE TABLE ade_return_to_service (
                profile_id text PRIMARY KEY, wifi_profile bytea, updated_by text NOT NULL,
                updated_at timestamptz NOT NULL DEFAULT now());
            """),
        // Migration from another MDM server (issue 21): the copy keeps ABM's mdm_migration_deadline.
        Migration(18, "ADE migration deadline", """
            ALTER TABLE ade_devices ADD COLUMN migration_deadline timestamptz;
            CREATE INDEX ade_devices_migrating ON ade_devices (migration_deadline) WHERE migration_deadline IS NOT NULL;
            """),
        // Orchard as the old server: when ABM no longer lists an enrolled device (moved to another MDM server, or
        // disowned), the enrollment says so; its history stays.
        Migration(19, "enrollments that left ABM", """
            ALTER TABLE enrollments ADD COLUMN left_abm_at timestamptz;
            """),
        // Activation Lock (issue 21): the bypass code the device reported (ActivationLockBypassCode), and the one Orchard
        // generated when it escrowed a code with ABM for a device that had reported none; both sealed.
        Migration(20, "activation lock bypass codes", """
            ALTER TABLE enrollments ADD COLUMN sealed_device_bypass_code bytea, ADD COLUMN sealed_server_bypass_code bytea;
            """),
        // What a device last said it has installed (its ProfileList answer), for the admin API.
        Migration(21, "installed profiles", """
            ALTER TABLE enrollments ADD COLUMN installed_profiles text, ADD COLUMN installed_profiles_at timestamptz;
            """),
        // Apps, iPhone first (issue 22): an assignment names the app and its watch deployment; each device it reaches has
        // an install row (assigned → licensed → installing → installed / failed). A watch's row for a paired or dependent
        // app waits for its iPhone's row (`after_id`). `command_uuid` is the InstallApplication sent, `check_uuid` the
        // InstalledApplicationList that asks whether it finished; `next_at` when the rollout looks at the row again.
        Migration(22, "app assignments", """
            CREATE TABLE app_assignments (
                id uuid PRIMARY KEY, name text, adam_id text, manifest_url text, bundle_id text NOT NULL, watch_bundle_id text,
                pricing_param text, content_token text, watch_deployment text NOT NULL,
                created_by text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
            CREATE TABLE app_installs (
                id bigserial PRIMARY KEY, assignment_id uuid NOT NULL REFERENCES app_assignments ON DELETE CASCADE,
                enrollment_id text NOT NULL REFERENCES enrollments ON DELETE CASCADE, role text NOT NULL,
                after_id bigint REFERENCES app_installs ON DELETE CASCADE, state text NOT NULL, detail text,
                command_uuid text, check_uuid text, checks integer NOT NULL DEFAULT 0,
                next_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
                UNIQUE (assignment_id, enrollment_id));
            CREATE INDEX app_installs_due ON app_installs (next_at) WHERE state IN ('assigned', 'licensed', 'installing');
            CREATE INDEX app_installs_after ON app_installs (after_id) WHERE after_id IS NOT NULL;
            CREATE INDEX app_installs_enrollment ON app_installs (enrollment_id);
            """),
        // Apps (issue 22, the rest): where an assignment's bundle ids and deployment came from (`apple`: Apple's app
        // metadata, `admin`: as given), the app's device families as Apple lists them, and how the iPhone gets the app
        // (`command`: InstallApplication; `declaration`: Apple's com.apple.configuration.app.managed, iOS 17.2+).
        // An iPhone's install through a declaration names it (`declaration_id`); the device's app.managed.list status
        // moves it along.
        Migration(23, "app metadata and managed-app declarations", """
            ALTER TABLE app_assignments ADD COLUMN details_from text NOT NULL DEFAULT 'admin', ADD COLUMN device_families text,
                ADD COLUMN iphone_install text NOT NULL DEFAULT 'command';
            ALTER TABLE app_installs ADD COLUMN declaration_id text;
            CREATE INDEX app_installs_declaration ON app_installs (enrollment_id, declaration_id) WHERE declaration_id IS NOT NULL;
            """),
        // A watch's install of a paired or dependent app asks the watch first whether the system already put the app
        // there from its iPhone (`prechecked` once asked; then the app is not sent twice). In-house apps: the watch
        // app's manifest beside the iPhone app's (`manifest_url`, migration 22).
        Migration(24, "app prechecks and in-house apps", """
            ALTER TABLE app_installs ADD COLUMN prechecked boolean NOT NULL DEFAULT false;
            ALTER TABLE app_assignments ADD COLUMN watch_manifest_url text;
            """),
        // A link's use is spent when a device enrolls with the profile it paid for (its identity's first
        // Authenticate), not when the profile is recorded: a device whose answer was lost downloads again.
        // `uses` counts enrollments from then on; `outstanding` counts claims (downloads under way, and
        // profiles delivered but not yet enrolled with), which a limited link bounds.
        Migration(25, "enrollment link uses spent at enrollment", """
            ALTER TABLE enrollment_links ADD COLUMN outstanding int NOT NULL DEFAULT 0;
            ALTER TABLE link_claims ADD COLUMN identity_fingerprint text, ADD COLUMN delivered_at timestamptz;
            CREATE INDEX link_claims_identity ON link_claims (identity_fingerprint);
            ALTER TABLE issued_identities ADD COLUMN link_use_pending boolean NOT NULL DEFAULT false;
            UPDATE enrollment_links l SET outstanding = c.n, uses = greatest(l.uses - c.n, 0)
            FROM (SELECT link_id, count(*)::int AS n FROM link_claims GROUP BY link_id) c WHERE l.id = c.link_id;
            """),
    ]
}
