//! How a database failure becomes a [`StoreError`], without the URL or a secret.

use crate::store::StoreError;

/// Whether `error` lost the connection, rather than being the database's own answer.
pub(super) fn is_connection_lost(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed
    )
}

/// A message for a database failure: the server's own words for its errors, the kind of an I/O
/// error, and never the connection URL or options (which may hold a password).
pub(super) fn backend(database: &str, action: &str, error: &sqlx::Error) -> StoreError {
    let why = match error {
        sqlx::Error::Database(error) => error.message().to_owned(),
        sqlx::Error::Io(error) => error.kind().to_string(),
        sqlx::Error::Tls(_) => "TLS failed".to_owned(),
        sqlx::Error::PoolTimedOut => "no connection could be had in time".to_owned(),
        sqlx::Error::PoolClosed => "the connection pool is closed".to_owned(),
        sqlx::Error::Configuration(_) => "the connection options are invalid".to_owned(),
        other => other.to_string(),
    };
    StoreError::Backend(format!("{database}: could not {action}: {why}"))
}
