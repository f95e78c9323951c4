//! [`PostgresStore`]: tokens in PostgreSQL, shared by many instances, with revocations announced
//! through `LISTEN`/`NOTIFY`.

use std::{fmt, future::Future, str::FromStr, time::Duration};

use sqlx::{
    Executor, PgConnection, Postgres,
    postgres::{PgConnectOptions, PgListener, PgPoolOptions},
};

use super::{SqlStore, backend, database::Dialect};
use crate::store::{
    DEFAULT_OPERATION_TIMEOUT, StoreError,
    feed::{Announcement, RevocationFeed, RevocationSubscription},
};

/// Connections kept open per instance, the revocation listener's among them.
const MAX_CONNECTIONS: u32 = 8;

/// Keeps tokens in PostgreSQL (feature `postgres`), so every instance of an app honours the same
/// tokens. See [`SqlStore`] for the layout and behaviour.
///
/// A revocation deletes the row and, in the same statement, announces the token's digest with
/// `NOTIFY` on the channel `{prefix}revocations`: the store's [`RevocationFeed`], which a
/// [`CachingStore`](crate::store::CachingStore) in front applies with
/// [`listen_for_revocations`](crate::store::CachingStore::listen_for_revocations). Postgres
/// delivers the notification only if the revocation commits.
///
/// ```no_run
/// # async fn run() -> Result<(), tower_impersonation::StoreError> {
/// use tower_impersonation::{MemoryStore, store::{CachingStore, PostgresStore}};
///
/// let shared = PostgresStore::connect("postgres://app@db.internal/app").await?;
/// shared.migrate().await?;
/// let store = CachingStore::new(MemoryStore::new(), shared);
/// let _revocations = store.listen_for_revocations(); // keep it as long as the store
/// # Ok(()) }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub type PostgresStore = SqlStore<Postgres>;

#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
impl SqlStore<Postgres> {
    /// Connects to Postgres at `url` (`postgres://user[:password]@host[:port]/database`).
    /// Fails with [`StoreError::Backend`] when the URL is invalid or the server cannot be
    /// reached; the message does not repeat the URL. Call [`SqlStore::migrate`] before use.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(|error| {
            backend(
                <Postgres as sqlx::Database>::NAME,
                "read the Postgres URL",
                &error,
            )
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(DEFAULT_OPERATION_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|error| backend(<Postgres as sqlx::Database>::NAME, "connect", &error))?;
        Ok(Self::from_pool(pool))
    }

    /// The channel on which revocations are announced: `{prefix}revocations`, with the revoked
    /// token's digest hex as the payload.
    pub fn revocation_channel(&self) -> String {
        super::queries::revocation_channel(&self.prefix)
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
impl Dialect for Postgres {
    /// `lock_timeout` and `statement_timeout`, set for the transaction alone, end the server's
    /// waits; the lock is a transaction-scoped advisory lock on the name's hash, released at
    /// commit or rollback.
    async fn begin_write(
        connection: &mut PgConnection,
        lock: Option<&str>,
        waits: Duration,
    ) -> Result<(), sqlx::Error> {
        let millis = waits.as_millis();
        let begin = format!(
            "BEGIN; SET LOCAL lock_timeout = {millis}; SET LOCAL statement_timeout = {millis}"
        );
        connection.execute(sqlx::raw_sql(&begin)).await?;
        if let Some(lock) = lock {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                .bind(lock)
                .execute(&mut *connection)
                .await?;
        }
        Ok(())
    }

    /// `NOTIFY`, delivered when the revoking transaction commits.
    fn announce_jwt_revocations(channel: &str) -> Option<String> {
        let payload = crate::store::feed::JWT_REVOCATIONS;
        Some(format!("SELECT pg_notify('{channel}', '{payload}')"))
    }

    fn revoke_statement(tokens: &str, channel: &str) -> String {
        format!(
            "WITH gone AS (DELETE FROM {tokens} WHERE id = $1 AND organization = $2 \
             RETURNING digest) \
             SELECT gone.digest FROM gone, LATERAL pg_notify('{channel}', gone.digest)"
        )
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
impl RevocationFeed for SqlStore<Postgres> {
    type Subscription = PostgresRevocations;

    /// Takes a connection of its own from the pool and `LISTEN`s on the revocation channel.
    fn subscribe(&self) -> impl Future<Output = Result<PostgresRevocations, StoreError>> + Send {
        let subscribing = async {
            let mut listener = PgListener::connect_with(&self.pool).await?;
            // A lost connection ends the subscription at once; the listener subscribes anew.
            listener.eager_reconnect(false);
            listener.listen(&self.revocation_channel()).await?;
            Ok(listener)
        };
        async move {
            let listener = self.within("listen for revocations", subscribing).await?;
            Ok(PostgresRevocations { listener })
        }
    }
}

/// Revocations announced on a [`PostgresStore`]'s channel. A connection that dies silently (no
/// reset from the peer) is not noticed until the operating system gives up on it; the cache
/// lifetime still bounds how late a revocation takes effect meanwhile.
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub struct PostgresRevocations {
    listener: PgListener,
}

impl fmt::Debug for PostgresRevocations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresRevocations")
            .finish_non_exhaustive()
    }
}

impl RevocationSubscription for PostgresRevocations {
    async fn next(&mut self) -> Result<Announcement, StoreError> {
        let database = <Postgres as sqlx::Database>::NAME;
        match self.listener.try_recv().await {
            Ok(Some(notification)) => Ok(Announcement::parse(notification.payload())),
            Ok(None) => Err(StoreError::Backend(format!(
                "{database}: the revocation listener's connection was lost"
            ))),
            Err(error) => Err(backend(database, "listen for revocations", &error)),
        }
    }
}
