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
    ]
}
