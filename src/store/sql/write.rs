//! [`Write`]: one change to an SQL store, made in a transaction on a connection of its own and
//! answered only once committed.
//!
//! The operation's deadline bounds every step before the commit: taking a connection, beginning
//! (and waiting for a lock), running the statements. Abandoning the write at any of them changes
//! nothing, since nothing is committed. Once `COMMIT` is sent, its answer is awaited whatever the
//! deadline, so that what the store answers is what happened. A connection is returned to the pool
//! only after a commit that succeeded; after anything else it is closed, which rolls back what
//! it held, and the pool opens a fresh one.

use std::time::Duration;

use sqlx::{Database, Executor, IntoArguments, Pool, pool::PoolConnection, query::Query};
use tokio::time::{Instant, timeout_at};

use super::SqlDatabase;

/// Why a write failed.
#[derive(Debug)]
pub(super) enum WriteError {
    /// The database failed or refused before the commit was sent: nothing changed.
    BeforeCommit(sqlx::Error),
    /// The deadline passed before the commit was sent: nothing changed.
    TimedOut,
    /// The commit failed: nothing changed if the database said so; the change may have been
    /// made if the connection was lost before its answer came.
    AtCommit(sqlx::Error),
}

impl From<sqlx::Error> for WriteError {
    fn from(error: sqlx::Error) -> Self {
        WriteError::BeforeCommit(error)
    }
}

/// The part of the time left to a write that the database's own waits (for a lock, for a
/// statement) may take: three quarters, so that the database ends them, and says so, before
/// the write's deadline.
pub(super) fn waits_within(time_left: Duration) -> Duration {
    (time_left * 3 / 4).max(Duration::from_millis(1))
}

/// A write transaction in progress: committed, it returns its connection to the pool; dropped
/// uncommitted, it closes it.
pub(super) struct Write<DB: Database> {
    connection: PoolConnection<DB>,
    deadline: Instant,
    committed: bool,
}

impl<DB> Write<DB>
where
    DB: SqlDatabase,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    /// Takes a connection from `pool` and begins a transaction holding `lock` (see
    /// [`Dialect::begin_write`](super::database::Dialect::begin_write)), all within `timeout`,
    /// which then bounds the steps before the commit.
    pub(super) async fn begin(
        pool: &Pool<DB>,
        lock: Option<&str>,
        timeout: Duration,
    ) -> Result<Self, WriteError> {
        let deadline = Instant::now() + timeout;
        let connection = before(deadline, pool.acquire()).await?;
        let mut write = Self {
            connection,
            deadline,
            committed: false,
        };
        let waits = waits_within(deadline.saturating_duration_since(Instant::now()));
        let beginning = DB::begin_write(write.connection(), lock, waits);
        before(deadline, beginning).await?;
        Ok(write)
    }

    /// Runs a statement to its end.
    pub(super) async fn execute<'q, A>(&mut self, query: Query<'q, DB, A>) -> Result<(), WriteError>
    where
        A: IntoArguments<'q, DB> + 'q,
    {
        let deadline = self.deadline;
        let running = self.connection().execute(query);
        before(deadline, running).await?;
        Ok(())
    }

    /// Runs statements given as text, with no parameters.
    pub(super) async fn execute_raw(&mut self, sql: &str) -> Result<(), WriteError> {
        let deadline = self.deadline;
        let running = self.connection().execute(sqlx::raw_sql(sql));
        before(deadline, running).await?;
        Ok(())
    }

    /// Runs a statement and answers every row it returns: a statement is read to its end, so that
    /// no error of its goes unread.
    pub(super) async fn fetch_all<'q, A>(
        &mut self,
        query: Query<'q, DB, A>,
    ) -> Result<Vec<DB::Row>, WriteError>
    where
        A: IntoArguments<'q, DB> + 'q,
    {
        let deadline = self.deadline;
        let running = self.connection().fetch_all(query);
        before(deadline, running).await
    }

    /// Runs a statement that returns one row, read to its end, and answers that row.
    pub(super) async fn fetch_one<'q, A>(
        &mut self,
        query: Query<'q, DB, A>,
    ) -> Result<DB::Row, WriteError>
    where
        A: IntoArguments<'q, DB> + 'q,
    {
        let rows = self.fetch_all(query).await?;
        Ok(rows.into_iter().next().ok_or(sqlx::Error::RowNotFound)?)
    }

    /// Commits, and answers once the database has said whether it did, however long past the
    /// deadline: a commit once sent may land, and the answer must say whether it did.
    pub(super) async fn commit(mut self) -> Result<(), WriteError> {
        let committing = self.connection().execute(sqlx::raw_sql("COMMIT"));
        committing.await.map_err(WriteError::AtCommit)?;
        // Out of any transaction: the connection may serve again.
        self.committed = true;
        Ok(())
    }

    fn connection(&mut self) -> &mut DB::Connection {
        &mut self.connection
    }
}

impl<DB: Database> Drop for Write<DB> {
    fn drop(&mut self) {
        if !self.committed {
            // Its transaction may be open, or the connection broken.
            self.connection.close_on_drop();
        }
    }
}

/// `step`'s result, or [`WriteError::TimedOut`] once `deadline` has passed.
async fn before<T>(
    deadline: Instant,
    step: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, WriteError> {
    match timeout_at(deadline, step).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(WriteError::TimedOut),
    }
}
