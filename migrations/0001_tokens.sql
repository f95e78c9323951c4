-- Impersonation tokens: one row per token, keyed by the SHA-256 digest of its secret (64 lowercase
-- hex characters); the secret itself is never stored. Times are milliseconds since the Unix epoch.
-- `{prefix}` is replaced by the store's table prefix. The same text runs on SQLite and Postgres.
CREATE TABLE {prefix}tokens (
    digest       TEXT PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    organization TEXT NOT NULL,
    name         TEXT,
    roles        TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    created_by   TEXT NOT NULL,
    last_four    TEXT NOT NULL,
    expires_at   BIGINT,
    last_used    BIGINT
);

-- Listing and counting an organization's tokens, oldest first.
CREATE INDEX {prefix}tokens_by_organization ON {prefix}tokens (organization, created_at, id);
