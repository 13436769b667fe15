import OrchardStorage

/// profile-signer's schema: its authorities (private keys sealed with the key-encryption key) and a
/// record of every device identity it issued.
enum ProfileSignerMigrations {
    static let all: [Migration] = [
        Migration(1, "authorities and issued identities", """
            CREATE TABLE authorities (
                role text PRIMARY KEY,
                certificate bytea NOT NULL,
                sealed_key bytea NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now());
            CREATE TABLE issued_identities (
                fingerprint text PRIMARY KEY,
                subject text NOT NULL,
                serial_hex text NOT NULL,
                issued_at timestamptz NOT NULL DEFAULT now(),
                not_after timestamptz NOT NULL);
            """),
    ]
}
