//! The SQL text of [`SqlStore`](super::SqlStore), built once per table prefix. `$1`-style
//! parameters read the same on SQLite and Postgres, so one text serves both but for the
//! revocation, which each [`Dialect`](super::database::Dialect) words.

use super::{
    SqlDatabase,
    row::{COLUMNS, JWT_COLUMNS},
};
use crate::error::ConfigError;

/// Longest table prefix: Postgres names are at most 63 bytes, and the longest name built from
/// the prefix adds 31.
const MAX_PREFIX_LEN: usize = 32;

/// Every statement the store runs, with its table names filled in.
pub(super) struct Queries {
    /// The tokens table's name; also the name of the lock creations take.
    pub(super) tokens: String,
    pub(super) insert: String,
    pub(super) count: String,
    pub(super) lookup: String,
    pub(super) list: String,
    pub(super) revoke: String,
    pub(super) record_use: String,
    /// The table of applied migrations; also the name of the lock migrations take.
    pub(super) versions: String,
    pub(super) create_versions: String,
    pub(super) current_version: String,
    pub(super) record_version: String,
    pub(super) record_jwt: String,
    pub(super) forget_expired_jwts: String,
    pub(super) forget_expired_user_revocations: String,
    pub(super) list_jwts: String,
    pub(super) revoke_jwt: String,
    pub(super) revoke_user_jwts: String,
    pub(super) revoked_jtis: String,
    pub(super) user_revocations: String,
    /// Announces JWT revocations to the instances listening, where the backend can.
    pub(super) announce_jwt_revocations: Option<String>,
}

impl Queries {
    /// The statements for tables named with `prefix`, already checked by [`check_prefix`].
    pub(super) fn new<DB: SqlDatabase>(prefix: &str) -> Self {
        let tokens = format!("{prefix}tokens");
        let versions = format!("{prefix}schema_versions");
        let channel = revocation_channel(prefix);
        let jwts = format!("{prefix}jwts");
        let users = format!("{prefix}jwt_user_revocations");
        // A JWT is live while neither expired nor revoked, by its jti or with its user's.
        let live = format!(
            "expires_at > $2 AND revoked_at IS NULL AND NOT EXISTS (SELECT 1 FROM {users} u \
             WHERE u.organization = j.organization AND u.user_id = j.user_id \
             AND j.issued_at < u.cutoff)"
        );
        Self {
            record_jwt: format!(
                "INSERT INTO {jwts} ({JWT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            ),
            forget_expired_jwts: format!("DELETE FROM {jwts} WHERE expires_at <= $1"),
            forget_expired_user_revocations: format!("DELETE FROM {users} WHERE forget_at <= $1"),
            list_jwts: format!(
                "SELECT {JWT_COLUMNS} FROM {jwts} j WHERE organization = $1 AND {live} \
                 ORDER BY issued_at, jti"
            ),
            revoke_jwt: format!(
                "UPDATE {jwts} SET revoked_at = $2 WHERE jti = $3 AND organization = $1 \
                 AND jti IN (SELECT jti FROM {jwts} j WHERE organization = $1 AND {live}) \
                 RETURNING jti"
            ),
            revoke_user_jwts: format!(
                "INSERT INTO {users} (organization, user_id, cutoff, forget_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (organization, user_id) \
                 DO UPDATE SET \
                 cutoff = CASE WHEN excluded.cutoff > {users}.cutoff \
                     THEN excluded.cutoff ELSE {users}.cutoff END, \
                 forget_at = CASE WHEN excluded.forget_at > {users}.forget_at \
                     THEN excluded.forget_at ELSE {users}.forget_at END"
            ),
            revoked_jtis: format!(
                "SELECT jti, expires_at FROM {jwts} \
                 WHERE revoked_at IS NOT NULL AND expires_at > $1"
            ),
            user_revocations: format!(
                "SELECT organization, user_id, cutoff, forget_at FROM {users} WHERE forget_at > $1"
            ),
            announce_jwt_revocations: DB::announce_jwt_revocations(&channel),
            insert: format!(
                "INSERT INTO {tokens} ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            ),
            count: format!("SELECT COUNT(*) AS held FROM {tokens} WHERE organization = $1"),
            lookup: format!("SELECT {COLUMNS} FROM {tokens} WHERE digest = $1"),
            list: format!(
                "SELECT {COLUMNS} FROM {tokens} WHERE organization = $1 ORDER BY created_at, id"
            ),
            revoke: DB::revoke_statement(&tokens, &channel),
            record_use: format!(
                "UPDATE {tokens} SET last_used = $1 \
                 WHERE id = $2 AND (last_used IS NULL OR last_used < $1)"
            ),
            create_versions: format!(
                "CREATE TABLE IF NOT EXISTS {versions} (version BIGINT PRIMARY KEY, \
                 description TEXT NOT NULL, applied_at BIGINT NOT NULL)"
            ),
            current_version: format!("SELECT COALESCE(MAX(version), 0) AS version FROM {versions}"),
            record_version: format!(
                "INSERT INTO {versions} (version, description, applied_at) VALUES ($1, $2, $3)"
            ),
            tokens,
            versions,
        }
    }
}

/// Where revocations are announced, on a backend that announces them.
pub(super) fn revocation_channel(prefix: &str) -> String {
    format!("{prefix}revocations")
}

/// Refuses a prefix that is not a plain SQL identifier: it is written into the statements.
pub(super) fn check_prefix(prefix: &str) -> Result<(), ConfigError> {
    let plain = prefix
        .bytes()
        .enumerate()
        .all(|(at, b)| b.is_ascii_lowercase() || b == b'_' || (at > 0 && b.is_ascii_digit()));
    if prefix.is_empty() || prefix.len() > MAX_PREFIX_LEN || !plain {
        return Err(ConfigError::InvalidTablePrefix(prefix.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_identifiers_are_prefixes() {
        for good in ["impersonation_", "app2_", "a", "_x"] {
            assert_eq!(check_prefix(good), Ok(()), "{good}");
        }
        let long = "a".repeat(MAX_PREFIX_LEN + 1);
        for bad in [
            "",
            "2fa_",
            "Tokens_",
            "a-b",
            "a b",
            "x;drop table y",
            "é",
            &long,
        ] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
    }
}
