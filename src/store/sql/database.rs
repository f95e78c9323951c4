//! [`SqlDatabase`]: the SQL databases an [`SqlStore`](super::SqlStore) runs on, and the
//! private [`Dialect`] in which each does its own way what the store needs.

use std::{future::Future, time::Duration};

use sqlx::Database;

/// An SQL database an [`SqlStore`](super::SqlStore) runs on: `sqlx::Sqlite` (feature
/// `sqlite`) and `sqlx::Postgres` (feature `postgres`). Sealed: the crate implements it for
/// these two alone.
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub trait SqlDatabase: Dialect {}

impl<DB: Dialect> SqlDatabase for DB {}

/// What one SQL database does its own way: how a write begins, and how a revocation is announced.
/// Private, so that [`SqlDatabase`] is sealed.
pub trait Dialect: Database {
    /// Begins a write transaction on `connection`, holding the lock named `lock`, if any, until
    /// it ends (writes naming the same lock run one after another), and has the database end
    /// each of its own waits in it (for a lock, for a statement) within `waits`, with an error.
    fn begin_write<'a>(
        connection: &'a mut Self::Connection,
        lock: Option<&'a str>,
        waits: Duration,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send + 'a;

    /// The statement that deletes token `$1` of organization `$2` from `tokens` and answers its
    /// `digest`, announcing the revocation on `channel` where the database can.
    fn revoke_statement(tokens: &str, channel: &str) -> String;

    /// The statement that announces JWT revocations on `channel`, where the database can.
    fn announce_jwt_revocations(channel: &str) -> Option<String>;
}
