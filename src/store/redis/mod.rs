//! [`RedisStore`]: one set of tokens shared by every instance of an app, kept in Redis.

mod errors;
mod feed;
mod jwts;
mod scripts;
mod tokens;

use std::{fmt, future::Future, sync::Arc, time::Duration};

use redis::{
    Client, FromRedisValue, RedisResult, ScriptInvocation,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use uuid::Uuid;

pub use self::feed::RedisRevocations;
use self::{
    errors::{backend, within},
    scripts::Scripts,
};
use super::{DEFAULT_OPERATION_TIMEOUT, StoreError, TokenStore};
use crate::{
    jwt::{JwtRevocations, MintedJwt, UserRevocation},
    record::TokenRecord,
    time::Timestamp,
    token::TokenDigest,
};

/// The key prefix unless configured otherwise.
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub const DEFAULT_KEY_PREFIX: &str = "tower-impersonation:";

/// How long one connection attempt may take.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the server may take to answer one command.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Keeps tokens in Redis, so every instance of an app honours the same tokens and a revocation on
/// one is a revocation on all.
///
/// # Layout
///
/// With the default prefix `tower-impersonation:`, a token is kept under three keys, none of which
/// holds its secret:
///
/// - `{prefix}token:{digest hex}`: a hash with `record` (the [`TokenRecord`] as JSON),
///   `organization`, and `last_used` (milliseconds since the epoch, once the token was used);
/// - `{prefix}id:{uuid}`: the digest hex, to revoke by id;
/// - `{prefix}org:{organization}`: the set of the organization's token ids, for listing.
///
/// A token past its expiry is kept, found and listed (as expired) until it is revoked, as every
/// store of this crate does; the layer refuses it. Listing removes the ids of vanished tokens
/// (deleted by hand, say) from the organization's set.
///
/// Creation is one Lua script that counts the organization's live tokens against the limit and
/// stores the token only below it, so instances sharing the Redis never pass the limit together.
/// Revocation is one Lua script that deletes the token only if it belongs to the given
/// organization and then publishes its digest hex on `{prefix}revocations`: the store's
/// [`RevocationFeed`](super::RevocationFeed), for
/// [`CachingStore::listen_for_revocations`](super::CachingStore::listen_for_revocations).
///
/// Several apps can share one Redis with different [key prefixes](RedisStore::key_prefix). The
/// scripts name keys they compute, so the store wants a single Redis (or a primary with replicas),
/// not Redis Cluster; Redis 5 or later, or Valkey.
///
/// # Failures
///
/// Each change is one Lua script (a JWT's revoke reads first), and Redis runs a script whole,
/// with nothing in between. Redis refuses a script's writes (out of memory, read-only, failed
/// snapshot) only at its first write command and never stops a script that has written, so a
/// refused script has changed nothing. What the store answers:
///
/// - `Ok`: Redis applied the change. How long it lasts is Redis's to say: a Redis without an
///   append-only file synced on every write (`appendfsync always`) can lose the latest writes
///   when it crashes, and one replaced by a replica loses what had not reached the replica yet.
///   Run it with `maxmemory-policy noeviction`: an evicting Redis forgets tokens and revocations
///   on its own, and a forgotten JWT revocation lets the JWT in again.
/// - [`StoreError::Backend`] when Redis answered with an error or could not be reached: nothing
///   changed. Redis out of memory (`OOM`, under `maxmemory` with `noeviction`) refuses creating
///   a token, recording a JWT or a use, and revoking a JWT or a user's JWTs; revoking a token
///   only deletes, so it still succeeds. A read-only replica (`READONLY`) and a Redis that
///   failed to save its snapshot (`MISCONF`, with `stop-writes-on-bgsave-error`) refuse every
///   write. Lookups still answer, and the next operation once Redis accepts writes succeeds.
/// - [`StoreError::Backend`] when the connection broke during the command, or after the
///   [operation timeout](RedisStore::operation_timeout): the one failure that may have changed
///   something, since Redis may have received the command and applied it, or apply it later,
///   without its answer reaching the store. A create may have stored a token whose secret
///   nobody received (listed, and counted towards the limit, until revoked). A revoke may have
///   revoked, and recording a JWT may have kept a record of one never handed out. Revoking a
///   user's JWTs may have taken effect, even after a retry made since (then with the first
///   attempt's earlier cutoff). Retrying a revoke is safe: it answers `true` if this attempt
///   revoked and `false` if the token or JWT was already gone, so after either the revocation
///   holds.
///
/// The [`ConnectionManager`] replaces a broken connection in the background, and a command
/// refused a connection (so never sent) is sent once more on the new one, so the first
/// operation after Redis is back succeeds, without restarting the app.
///
/// Error messages never contain a secret or the Redis URL.
///
/// Clones share the connection. Use it from within a Tokio runtime with its time driver enabled.
#[derive(Clone)]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub struct RedisStore {
    client: Client,
    connection: ConnectionManager,
    prefix: Arc<str>,
    timeout: Duration,
    scripts: Arc<Scripts>,
}

impl RedisStore {
    /// Connects to Redis at `url` (`redis://[:password@]host[:port][/db]`), with the default key
    /// prefix `tower-impersonation:`.
    ///
    /// Fails with [`StoreError::Backend`] when the URL is not a Redis URL or Redis cannot be
    /// reached; the message does not repeat the URL.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let client = Client::open(url).map_err(|error| backend("read the Redis URL", &error))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECTION_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let connecting = ConnectionManager::new_with_config(client.clone(), config);
        let connection = within(DEFAULT_OPERATION_TIMEOUT, "connect", connecting).await?;
        Ok(Self {
            client,
            connection,
            prefix: DEFAULT_KEY_PREFIX.into(),
            timeout: DEFAULT_OPERATION_TIMEOUT,
            scripts: Arc::new(Scripts::new()),
        })
    }

    /// Puts every key of this store under `prefix` (default `tower-impersonation:`), so several
    /// apps can share one Redis. Instances that should honour the same tokens use the same prefix.
    #[must_use]
    pub fn key_prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long one operation may take before it fails with [`StoreError::Backend`] (default 2
    /// seconds).
    #[must_use]
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The channel on which revocations are published: `{prefix}revocations`, with the revoked
    /// token's digest hex as the message.
    pub fn revocation_channel(&self) -> String {
        format!("{}revocations", self.prefix)
    }

    /// Runs a script, as [`RedisStore::send`] does.
    async fn invoke<T: FromRedisValue>(
        &self,
        action: &str,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        let run = |mut connection: ConnectionManager| async move {
            invocation.invoke_async(&mut connection).await
        };
        self.send(action, run).await
    }

    /// Sends a command within the operation timeout, a second time if the connection was
    /// refused: a refused command never reached Redis, and the refusal set the manager to
    /// connect again, so the first command after Redis is back does not fail on a connection
    /// that failed while it was away.
    async fn send<T, F>(
        &self,
        action: &str,
        command: impl Fn(ConnectionManager) -> F,
    ) -> Result<T, StoreError>
    where
        F: Future<Output = RedisResult<T>>,
    {
        let attempts = async {
            match command(self.connection.clone()).await {
                Err(error) if error.is_connection_refusal() => {
                    command(self.connection.clone()).await
                }
                answered => answered,
            }
        };
        within(self.timeout, action, attempts).await
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The client's connection details may hold a password: left out.
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("operation_timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl TokenStore for RedisStore {
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
        self.find(digest.to_hex())
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
