import OrchardServiceKit
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
        Migration(2, "pairing tokens and keys", """
            CREATE TABLE keys (name text PRIMARY KEY, sealed_key bytea NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
            CREATE TABLE pairing_tokens (
                jti text PRIMARY KEY,
                phone_udid text NOT NULL,
                watch_udid text NOT NULL,
                security_token_hash bytea NOT NULL,
                issued_at timestamptz NOT NULL DEFAULT now(),
                expires_at timestamptz NOT NULL,
                redeemed_at timestamptz);
            """),
        Migration(3, "pairing token expiry index (pruning)", """
            CREATE INDEX pairing_tokens_expiry ON pairing_tokens (expires_at);
            """),
    ]

    /// Expired tokens are refused whether their row exists or not: a day after expiry they go.
    static let pruning: [RetentionPruner.Rule] = [
        .init(name: "expired security tokens", deleteBatch: """
            DELETE FROM security_tokens WHERE token_hash IN (
                SELECT token_hash FROM security_tokens WHERE expires_at < now() - interval '1 day' LIMIT 5000) RETURNING 1
            """),
        .init(name: "expired pairing tokens", deleteBatch: """
            DELETE FROM pairing_tokens WHERE jti IN (
                SELECT jti FROM pairing_tokens WHERE expires_at < now() - interval '1 day' LIMIT 5000) RETURNING 1
            """),
    ]
}
