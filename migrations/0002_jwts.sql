-- Minted impersonation JWTs (never the JWT itself), kept until they expire, for listing and
-- revoking them; `revoked_at` is set when one is revoked by its jti.
CREATE TABLE {prefix}jwts (
    jti          TEXT PRIMARY KEY,
    organization TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    actor        TEXT NOT NULL,
    reason       TEXT NOT NULL,
    issued_at    BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);

CREATE INDEX {prefix}jwts_by_organization ON {prefix}jwts (organization, issued_at, jti);
CREATE INDEX {prefix}jwts_by_expiry ON {prefix}jwts (expires_at);

-- A user's JWTs in an organization issued before `cutoff` are revoked; kept until `forget_at`.
CREATE TABLE {prefix}jwt_user_revocations (
    organization TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    cutoff       BIGINT NOT NULL,
    forget_at    BIGINT NOT NULL,
    PRIMARY KEY (organization, user_id)
);
