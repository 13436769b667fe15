import OrchardStorage

/// token-service's schema. Tokens are stored only as SHA-256 hashes.
enum TokenServiceMigrations {
    static let all: [Migration] = [
        Migration(1, "security tokens", """
            CREATE TABLE security_tokens (
                token_hash bytea PRIMARY KEY,
                watch_udid text NOT NULL,
                watch_serial text,
                issued_at timestamptz NOT NULL DEFAULT now(),
                expires_at timestamptz NOT NULL,
                consumed_at timestamptz,
                consumed_by_phone text);
            CREATE INDEX security_tokens_expiry ON security_tokens (expires_at);
            """),
    ]
}
