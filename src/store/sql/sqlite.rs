//! [`SqliteStore`]: tokens in an SQLite file, the durable store for one instance.

use std::{path::Path, time::Duration};

use sqlx::{
    Executor, Sqlite, SqliteConnection,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

use super::{SqlStore, backend, database::Dialect, write::waits_within};
use crate::store::{DEFAULT_OPERATION_TIMEOUT, StoreError};

/// Connections kept open: readers run side by side in WAL mode; writers take turns.
const MAX_CONNECTIONS: u32 = 4;

/// Keeps tokens in an SQLite file (feature `sqlite`; the SQLite library is compiled in): the
/// durable default for a single instance. See [`SqlStore`] for the layout and behaviour.
///
/// The file is opened in WAL mode with `synchronous = FULL`: a creation or revocation that was
/// answered is on disk, and survives the process being killed the next moment, or the machine
/// losing power. A write waits for another writer (another process on the same file) for three
/// quarters of the operation timeout at most, then fails with nothing changed. Put a
/// [`CachingStore`](crate::store::CachingStore) in front so that lookups are answered from memory.
///
/// ```no_run
/// # async fn run() -> Result<(), tower_impersonation::StoreError> {
/// use tower_impersonation::{MemoryStore, store::{CachingStore, SqliteStore}};
///
/// let file = SqliteStore::open("impersonation.db").await?;
/// file.migrate().await?;
/// let store = CachingStore::new(MemoryStore::new(), file);
/// # let _ = store; Ok(()) }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub type SqliteStore = SqlStore<Sqlite>;

#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
impl SqlStore<Sqlite> {
    /// Opens the SQLite file at `path`, creating it, readable and writable by this user alone
    /// (mode 0600), if it does not exist. Call [`SqlStore::migrate`] before use.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        create_private(path)?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(waits_within(DEFAULT_OPERATION_TIMEOUT))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(DEFAULT_OPERATION_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|error| {
                backend(
                    <Sqlite as sqlx::Database>::NAME,
                    "open the database file",
                    &error,
                )
            })?;
        Ok(Self::from_pool(pool))
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
impl Dialect for Sqlite {
    /// SQLite has one writer at a time: `BEGIN IMMEDIATE` takes the write lock at once, so what a
    /// transaction reads stays true until it commits, and no later statement of it waits. It
    /// waits for another writer's transaction to end for `waits` at most (the connection's busy
    /// timeout, set here whatever the pool's options). The lock's name is not needed.
    async fn begin_write(
        connection: &mut SqliteConnection,
        _lock: Option<&str>,
        waits: Duration,
    ) -> Result<(), sqlx::Error> {
        let begin = format!(
            "PRAGMA busy_timeout = {}; BEGIN IMMEDIATE",
            waits.as_millis()
        );
        connection.execute(sqlx::raw_sql(&begin)).await?;
        Ok(())
    }

    fn revoke_statement(tokens: &str, _channel: &str) -> String {
        format!("DELETE FROM {tokens} WHERE id = $1 AND organization = $2 RETURNING digest")
    }

    /// One process or several on one file: there is nobody to tell but through the file.
    fn announce_jwt_revocations(_channel: &str) -> Option<String> {
        None
    }
}

/// Creates the file at `path` with mode 0600 if it does not exist; SQLite gives its journal
/// files the same mode. An existing file is left as it is.
fn create_private(path: &Path) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(StoreError::Backend(format!(
            "sqlite: could not create {}: {error}",
            path.display()
        ))),
    }
}
