//! [`SqlStore`]: tokens kept in an SQL database, so they survive restarts: `SqliteStore` (an
//! embedded file, feature `sqlite`) and `PostgresStore` (shared by many instances, feature
//! `postgres`).
//!
//! One implementation serves both. What they share lives here and beside it: the token and JWT
//! operations (`tokens.rs`, `jwts.rs`), the SQL text (`queries.rs`), the mapping between a row
//! and a [`TokenRecord`] (`row.rs`), the versioned schema (`schema.rs`, from the crate's
//! `migrations/`), how a write is made and committed (`write.rs`) and how a failure becomes a
//! [`StoreError`] (`errors.rs`). What differs, how to connect and how a write begins, is each
//! database's [`Dialect`](database::Dialect) (`sqlite.rs`, `postgres.rs`), which seals
//! [`SqlDatabase`] (`database.rs`).

mod database;
mod errors;
mod jwts;
#[cfg(feature = "postgres")]
mod postgres;
mod queries;
mod row;
mod schema;
#[cfg(feature = "sqlite")]
mod sqlite;
mod tokens;
mod write;

use std::{fmt, future::Future, sync::Arc, time::Duration};

use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};
use uuid::Uuid;

#[cfg(feature = "postgres")]
pub use postgres::{PostgresRevocations, PostgresStore};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

pub use self::database::SqlDatabase;

use self::{
    errors::{backend, is_connection_lost},
    queries::Queries,
    write::{Write, WriteError},
};
use super::{DEFAULT_OPERATION_TIMEOUT, StoreError, TokenStore};
use crate::{
    error::ConfigError,
    jwt::{JwtRevocations, MintedJwt, UserRevocation},
    record::TokenRecord,
    time::Timestamp,
    token::TokenDigest,
};

/// The table prefix unless configured otherwise: tables are `impersonation_tokens`,
/// `impersonation_jwts`, `impersonation_jwt_user_revocations` and
/// `impersonation_schema_versions`.
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub const DEFAULT_TABLE_PREFIX: &str = "impersonation_";

/// Keeps tokens in an SQL database: one row per token, keyed by the SHA-256 digest of its secret
/// (never the secret), with the record's fields as columns and an index per organization.
///
/// Use it through [`SqliteStore`] or [`PostgresStore`], and call [`SqlStore::migrate`] once at
/// start. An operation that fails answers [`StoreError::Backend`], on which the layer and the
/// services answer 503 with `Retry-After`. Error messages never hold a secret or the connection
/// URL.
///
/// - A token past its expiry is kept and listed (as expired) until revoked; the layer refuses it.
/// - A creation counts the organization's tokens and inserts in one transaction that holds a
///   lock per organization (SQLite's write lock, taken by `BEGIN IMMEDIATE`; a Postgres
///   transaction-scoped advisory lock), so racing creations never pass the limit.
/// - `record_use` moves `last_used` forward only; the layer calls it at most once a minute per
///   token ([`USE_RECORDING_INTERVAL`](crate::USE_RECORDING_INTERVAL)), never per request. Put a
///   [`CachingStore`](super::CachingStore) in front so lookups are answered from memory.
/// - Minted impersonation JWTs (never the JWTs) and their revocations are rows too, each deleted
///   once the JWTs it concerns have expired (pruned as new JWTs are recorded). Without a cache in
///   front, every JWT request reads the revocations in force: two queries.
///
/// # Writes under faults
///
/// A write (`create`, `revoke`, `record_use`, `record_jwt`, `revoke_jwt`, `revoke_user_jwts`,
/// and [`migrate`](SqlStore::migrate)) is one transaction on a connection of its own:
///
/// - It answers `Ok` only once its commit has succeeded. Any error before that, or of the commit
///   itself (a full disk, an I/O error, a lost connection, a read-only or stopped server),
///   answers [`StoreError::Backend`], and nothing changed.
/// - The [operation timeout](SqlStore::operation_timeout) (2 seconds by default) bounds every
///   step before the commit: taking a connection, waiting for the write lock, running the
///   statements; a write abandoned there changes nothing. The database ends its own waits
///   sooner, at three quarters of the time left (SQLite's busy timeout, Postgres'
///   `lock_timeout` and `statement_timeout`, set on each write), so a write that could not have
///   its lock in time never takes it later. Once `COMMIT` is sent, its answer is awaited past the
///   timeout, so that the answer says what happened.
/// - A connection on which a write did not commit is closed, never returned to the pool, which
///   opens a fresh one: the next write succeeds as soon as the cause is gone, with no restart.
///
/// What no answer can settle: a `COMMIT` whose answer is lost with the connection (the Postgres
/// server or the network failing the moment after it was sent) may or may not have been applied;
/// the error's message says so. A Postgres server that falls silent (no reset) while a commit is
/// in flight holds that write until the operating system gives up on the connection. And
/// whether a commit the disk failed to flush survives a crash is the disk's to say.
///
/// Clones share the connection pool.
///
#[cfg_attr(feature = "sqlite", doc = "[`SqliteStore`]: SqliteStore")]
#[cfg_attr(
    not(feature = "sqlite"),
    doc = "[`SqliteStore`]: https://docs.rs/tower-impersonation/latest/tower_impersonation/store/type.SqliteStore.html"
)]
#[cfg_attr(feature = "postgres", doc = "[`PostgresStore`]: PostgresStore")]
#[cfg_attr(
    not(feature = "postgres"),
    doc = "[`PostgresStore`]: https://docs.rs/tower-impersonation/latest/tower_impersonation/store/type.PostgresStore.html"
)]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub struct SqlStore<DB: SqlDatabase> {
    pool: Pool<DB>,
    queries: Arc<Queries>,
    prefix: Arc<str>,
    timeout: Duration,
}

impl<DB: SqlDatabase> Clone for SqlStore<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            queries: Arc::clone(&self.queries),
            prefix: Arc::clone(&self.prefix),
            timeout: self.timeout,
        }
    }
}

impl<DB: SqlDatabase> fmt::Debug for SqlStore<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The pool's options hold the connection details, a password among them: left out.
        f.debug_struct("SqlStore")
            .field("database", &<DB as Database>::NAME)
            .field("table_prefix", &self.prefix)
            .field("operation_timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl<DB: SqlDatabase> SqlStore<DB> {
    /// A store over `pool`, with the default table prefix and operation timeout.
    pub fn from_pool(pool: Pool<DB>) -> Self {
        Self {
            pool,
            queries: Arc::new(Queries::new::<DB>(DEFAULT_TABLE_PREFIX)),
            prefix: DEFAULT_TABLE_PREFIX.into(),
            timeout: DEFAULT_OPERATION_TIMEOUT,
        }
    }

    /// Names every table of this store with `prefix` (default `impersonation_`), so several
    /// apps can share one database. A prefix is 1 to 32 lowercase ASCII letters, digits and
    /// underscores, not starting with a digit.
    pub fn table_prefix(mut self, prefix: &str) -> Result<Self, ConfigError> {
        queries::check_prefix(prefix)?;
        self.queries = Arc::new(Queries::new::<DB>(prefix));
        self.prefix = prefix.into();
        Ok(self)
    }

    /// How long one operation may take, waiting for a connection included, before it fails with
    /// [`StoreError::Backend`] (default 2 seconds). A write's commit, once sent, is awaited past
    /// it (see [writes under faults](SqlStore#writes-under-faults)). The pools that
    /// `SqliteStore::open` and `PostgresStore::connect` make still wait 2 seconds at most for a
    /// connection.
    #[must_use]
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The table prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The connection pool, for an app that keeps its own tables beside the tokens.
    pub fn pool(&self) -> &Pool<DB> {
        &self.pool
    }

    /// Runs `operation` within the operation timeout, mapping every failure to
    /// [`StoreError::Backend`].
    async fn within<T>(
        &self,
        action: &str,
        operation: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, operation).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(backend(<DB as Database>::NAME, action, &error)),
            Err(_) => Err(self.timed_out(action)),
        }
    }

    /// The answer of a write: its value once committed, else a [`StoreError::Backend`] that says
    /// whether the change may have been made.
    async fn written<T>(
        &self,
        action: &str,
        write: impl Future<Output = Result<T, WriteError>>,
    ) -> Result<T, StoreError> {
        let database = <DB as Database>::NAME;
        match write.await {
            Ok(value) => Ok(value),
            Err(WriteError::BeforeCommit(error)) => Err(backend(database, action, &error)),
            Err(WriteError::TimedOut) => Err(self.timed_out(action)),
            Err(WriteError::AtCommit(error)) if is_connection_lost(&error) => {
                Err(StoreError::Backend(format!(
                    "{database}: could not {action}: the connection was lost while committing, \
                     so the change may or may not have been made"
                )))
            }
            Err(WriteError::AtCommit(error)) => Err(backend(database, action, &error)),
        }
    }

    fn timed_out(&self, action: &str) -> StoreError {
        StoreError::Backend(format!(
            "{}: could not {action}: timed out after {} ms",
            <DB as Database>::NAME,
            self.timeout.as_millis()
        ))
    }
}

impl<DB> SqlStore<DB>
where
    DB: SqlDatabase,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'n> &'n str: ColumnIndex<DB::Row>,
{
    /// Creates or updates the store's tables to the schema this crate expects, one migration
    /// after another, under a lock so instances starting together apply each once. Call it once
    /// at start, before serving.
    ///
    /// Fails when the database holds a schema newer than this crate knows, rather than guess.
    pub fn migrate(&self) -> impl Future<Output = Result<(), StoreError>> + Send + '_ {
        // Spelled out as `+ Send` so the promise is checked here, where the bounds are known.
        self.apply_migrations()
    }

    async fn apply_migrations(&self) -> Result<(), StoreError> {
        let applied_at = row::millis(Timestamp::now())?;
        let queries = &self.queries;
        let migrating = async {
            let mut write = self.begin_write(Some(&queries.versions)).await?;
            write.execute_raw(&queries.create_versions).await?;
            let current = write
                .fetch_one(sqlx::query(&queries.current_version))
                .await?
                .try_get::<i64, _>("version")?;
            if current > schema::LATEST {
                return Ok(Err(current));
            }
            for migration in schema::MIGRATIONS.iter().filter(|m| m.version > current) {
                write.execute_raw(&migration.sql(&self.prefix)).await?;
                let record = sqlx::query(&queries.record_version)
                    .bind(migration.version)
                    .bind(migration.description.to_owned())
                    .bind(applied_at);
                write.execute(record).await?;
            }
            write.commit().await?;
            Ok(Ok(()))
        };
        match self.written("migrate the schema", migrating).await? {
            Ok(()) => Ok(()),
            Err(found) => Err(StoreError::Backend(format!(
                "{}: the schema is at version {found}, newer than the {} this version of \
                 tower-impersonation knows; upgrade it",
                <DB as Database>::NAME,
                schema::LATEST
            ))),
        }
    }

    /// Begins a write, holding `lock` if given, within the operation timeout.
    async fn begin_write(&self, lock: Option<&str>) -> Result<Write<DB>, WriteError> {
        Write::begin(&self.pool, lock, self.timeout).await
    }
}

impl<DB> TokenStore for SqlStore<DB>
where
    DB: SqlDatabase,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'n> &'n str: ColumnIndex<DB::Row>,
{
    fn create(
        &self,
        record: TokenRecord,
        limit: usize,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.insert(record, limit)
    }

    fn lookup(
        &self,
        digest: &TokenDigest,
    ) -> impl Future<Output = Result<Option<Arc<TokenRecord>>, StoreError>> + Send {
        self.find(*digest)
    }

    fn list(
        &self,
        organization: &str,
    ) -> impl Future<Output = Result<Vec<Arc<TokenRecord>>, StoreError>> + Send {
        self.collect(organization)
    }

    fn revoke(
        &self,
        organization: &str,
        id: Uuid,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.delete(organization, id)
    }

    fn record_use(
        &self,
        id: Uuid,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.touch(id, at)
    }

    fn record_jwt(&self, jwt: MintedJwt) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.insert_jwt(jwt)
    }

    fn list_jwts(
        &self,
        organization: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<MintedJwt>, StoreError>> + Send {
        self.collect_jwts(organization, now)
    }

    fn revoke_jwt(
        &self,
        organization: &str,
        jti: Uuid,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.revoke_one_jwt(organization, jti, now)
    }

    fn revoke_user_jwts(
        &self,
        revocation: UserRevocation,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.revoke_all_user_jwts(revocation)
    }

    fn jwt_revocations(
        &self,
        now: Timestamp,
    ) -> impl Future<Output = Result<JwtRevocations, StoreError>> + Send {
        self.read_jwt_revocations(now)
    }
}
