//! The versioned schema: the crate's `migrations/` files, embedded, oldest first.
//!
//! Not `sqlx::migrate!`: that macro needs sqlx's `macros` feature (a second build of the
//! drivers for the compiler), and its `_sqlx_migrations` table has a fixed name, so two apps
//! with different table prefixes in one database would take each other's migrations for their
//! own. Each store keeps its versions in `{prefix}schema_versions` instead.

/// One migration: its version, what it does, and its SQL with `{prefix}` for the table prefix.
pub(super) struct Migration {
    pub(super) version: i64,
    pub(super) description: &'static str,
    sql: &'static str,
}

impl Migration {
    /// The migration's statements for tables named with `prefix`.
    pub(super) fn sql(&self, prefix: &str) -> String {
        self.sql.replace("{prefix}", prefix)
    }
}

/// Every migration, in the order they apply.
pub(super) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "tokens",
        sql: include_str!("../../../migrations/0001_tokens.sql"),
    },
    Migration {
        version: 2,
        description: "jwts",
        sql: include_str!("../../../migrations/0002_jwts.sql"),
    },
    Migration {
        version: 3,
        description: "token users",
        sql: include_str!("../../../migrations/0003_token_users.sql"),
    },
];

/// The version a fully migrated database is at.
pub(super) const LATEST: i64 = MIGRATIONS[MIGRATIONS.len() - 1].version;
