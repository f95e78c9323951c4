//! Where impersonation tokens are kept: the [`TokenStore`] trait and its backends.
//!
//! - [`MemoryStore`]: this process's memory, the default, lost when the process stops;
//! - [`SqliteStore`] (feature `sqlite`): an SQLite file, durable, for one instance;
//! - [`PostgresStore`] (feature `postgres`): Postgres, shared by every instance of an app, with
//!   revocations announced by `LISTEN`/`NOTIFY`;
//! - [`RedisStore`] (feature `redis`): Redis, shared the same way, with revocations announced by
//!   pub/sub;
//! - [`CachingStore`]: a fast store in front of a durable or shared one, with a bounded
//!   revocation delay, and with `listen_for_revocations` (features `postgres` or `redis`) to drop
//!   a token revoked elsewhere at once.
//!
//! Each backend's page shows its set-up: open or connect, `migrate()` for the SQL stores, a
//! [`CachingStore`] in front, and the revocation listener for the shared ones. Every backend
//! passes the same conformance suite; a store of the app's own implements [`TokenStore`].
//!
#![cfg_attr(feature = "sqlite", doc = "[`SqliteStore`]: SqliteStore")]
#![cfg_attr(
    not(feature = "sqlite"),
    doc = "[`SqliteStore`]: https://docs.rs/tower-impersonation/latest/tower_impersonation/store/type.SqliteStore.html"
)]
#![cfg_attr(feature = "postgres", doc = "[`PostgresStore`]: PostgresStore")]
#![cfg_attr(
    not(feature = "postgres"),
    doc = "[`PostgresStore`]: https://docs.rs/tower-impersonation/latest/tower_impersonation/store/type.PostgresStore.html"
)]
#![cfg_attr(feature = "redis", doc = "[`RedisStore`]: RedisStore")]
#![cfg_attr(
    not(feature = "redis"),
    doc = "[`RedisStore`]: https://docs.rs/tower-impersonation/latest/tower_impersonation/store/struct.RedisStore.html"
)]

mod caching;
#[cfg(any(feature = "redis", feature = "postgres"))]
mod feed;
mod memory;
#[cfg(feature = "redis")]
mod redis;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;

use std::{fmt, future::Future, sync::Arc, time::Duration};

use uuid::Uuid;

#[cfg(any(feature = "redis", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "redis", feature = "postgres"))))]
pub use caching::RevocationListener;
pub use caching::{CachingStore, DEFAULT_CACHE_LIFETIME, DEFAULT_MAX_CACHED_TOKENS};
#[cfg(any(feature = "redis", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "redis", feature = "postgres"))))]
pub use feed::{Announcement, RevocationFeed, RevocationSubscription};
pub use memory::MemoryStore;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::{DEFAULT_KEY_PREFIX, RedisRevocations, RedisStore};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sql::SqliteStore;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub use sql::{DEFAULT_TABLE_PREFIX, SqlDatabase, SqlStore};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use sql::{PostgresRevocations, PostgresStore};

pub use crate::jwt::{JwtIdentity, JwtRevocations, MintedJwt, UserRevocation};
use crate::{record::TokenRecord, time::Timestamp, token::TokenDigest};

/// How long one operation of a networked or on-disk store may take, reconnection included, unless
/// configured otherwise: past it the operation fails with [`StoreError::Backend`] and the layer
/// answers 503. (An SQL store's write, once its commit is sent, awaits the commit's answer
/// instead; see `SqlStore`.)
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(2);

/// Keeps token records, keyed by the digest of their secret.
///
/// Methods return `impl Future + Send`, so a networked store is as welcome as [`MemoryStore`]; an
/// implementation holds no lock across an `.await`. Writes are atomic: a `create` or `revoke` that
/// fails applies entirely or not at all, never half. (A networked store that times out cannot
/// know which of the two happened; it says so with [`StoreError::Backend`].)
pub trait TokenStore: Send + Sync + 'static {
    /// Stores a new record (its id and digest are fresh) unless its organization already holds
    /// `limit` tokens: then it fails with [`StoreError::LimitReached`] and stores nothing. Counting
    /// and storing are one atomic step, so creations racing each other, in this process or in
    /// others sharing the store, never pass the limit. `usize::MAX` sets no limit. Tokens count
    /// as long as the store lists them: [`MemoryStore`] keeps expired ones until revoked, Redis
    /// forgets them at expiry.
    fn create(
        &self,
        record: TokenRecord,
        limit: usize,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Finds the record whose secret has this digest.
    fn lookup(
        &self,
        digest: &TokenDigest,
    ) -> impl Future<Output = Result<Option<Arc<TokenRecord>>, StoreError>> + Send;

    /// The answer of [`TokenStore::lookup`] if it is at hand without waiting (in memory, a
    /// cache hit), so the layer can skip a boxed future; `None` (the default) means "ask
    /// `lookup`".
    fn lookup_now(
        &self,
        digest: &TokenDigest,
    ) -> Option<Result<Option<Arc<TokenRecord>>, StoreError>> {
        let _ = digest;
        None
    }

    /// Every token of an organization, oldest first.
    fn list(
        &self,
        organization: &str,
    ) -> impl Future<Output = Result<Vec<Arc<TokenRecord>>, StoreError>> + Send;

    /// Deletes the token `id` if it belongs to `organization`; `false` when there is no such token.
    fn revoke(
        &self,
        organization: &str,
        id: Uuid,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Notes that token `id` was used at `at`; callers throttle this, so it need not be cheap.
    fn record_use(
        &self,
        id: Uuid,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Whether a use noted on a record this store handed out (in its shared
    /// [`LastUsed`](crate::LastUsed)) still has to be written back with
    /// [`TokenStore::record_use`]. `false` suits a store whose records are the very ones it hands
    /// out, as [`MemoryStore`]'s are, and spares the layer a detour on a token's first use in
    /// each interval; the default, `true`, is always correct.
    fn writes_back_uses(&self) -> bool {
        true
    }

    /// Writes back what the store holds only in this process, such as the last uses noted on
    /// cached records since they were last written: an app calls it as it shuts down, so no
    /// `lastUsed` time is lost. The default has nothing to write.
    fn flush(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        std::future::ready(Ok(()))
    }

    /// Remembers a minted impersonation JWT (never the JWT itself) until it expires, so it can
    /// be listed and revoked.
    fn record_jwt(&self, jwt: MintedJwt) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The organization's JWTs live at `now`, neither expired nor revoked, oldest first.
    fn list_jwts(
        &self,
        organization: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<MintedJwt>, StoreError>> + Send;

    /// Revokes the live JWT `jti` of `organization`; `false` when there is none (unknown,
    /// another organization's, expired or revoked already).
    fn revoke_jwt(
        &self,
        organization: &str,
        jti: Uuid,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Revokes every JWT of a user in an organization issued before the revocation's cutoff.
    fn revoke_user_jwts(
        &self,
        revocation: UserRevocation,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every JWT revocation in force at `now`; what concerns only expired JWTs is left out.
    fn jwt_revocations(
        &self,
        now: Timestamp,
    ) -> impl Future<Output = Result<JwtRevocations, StoreError>> + Send;

    /// Whether the JWT is revoked, if the store can tell without waiting (in memory, a fresh
    /// cache); `None` (the default) means "ask `jwt_revocations`".
    fn jwt_revoked_now(&self, jwt: &JwtIdentity<'_>) -> Option<bool> {
        let _ = jwt;
        None
    }
}

impl<T: TokenStore> TokenStore for Arc<T> {
    fn create(
        &self,
        record: TokenRecord,
        limit: usize,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).create(record, limit)
    }

    fn lookup(
        &self,
        digest: &TokenDigest,
    ) -> impl Future<Output = Result<Option<Arc<TokenRecord>>, StoreError>> + Send {
        (**self).lookup(digest)
    }

    fn lookup_now(
        &self,
        digest: &TokenDigest,
    ) -> Option<Result<Option<Arc<TokenRecord>>, StoreError>> {
        (**self).lookup_now(digest)
    }

    fn list(
        &self,
        organization: &str,
    ) -> impl Future<Output = Result<Vec<Arc<TokenRecord>>, StoreError>> + Send {
        (**self).list(organization)
    }

    fn revoke(
        &self,
        organization: &str,
        id: Uuid,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).revoke(organization, id)
    }

    fn record_use(
        &self,
        id: Uuid,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).record_use(id, at)
    }

    fn writes_back_uses(&self) -> bool {
        (**self).writes_back_uses()
    }

    fn flush(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).flush()
    }

    fn record_jwt(&self, jwt: MintedJwt) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).record_jwt(jwt)
    }

    fn list_jwts(
        &self,
        organization: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<MintedJwt>, StoreError>> + Send {
        (**self).list_jwts(organization, now)
    }

    fn revoke_jwt(
        &self,
        organization: &str,
        jti: Uuid,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).revoke_jwt(organization, jti, now)
    }

    fn revoke_user_jwts(
        &self,
        revocation: UserRevocation,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).revoke_user_jwts(revocation)
    }

    fn jwt_revocations(
        &self,
        now: Timestamp,
    ) -> impl Future<Output = Result<JwtRevocations, StoreError>> + Send {
        (**self).jwt_revocations(now)
    }

    fn jwt_revoked_now(&self, jwt: &JwtIdentity<'_>) -> Option<bool> {
        (**self).jwt_revoked_now(jwt)
    }
}

/// Why a store could not answer. Messages never contain a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend could not be reached or failed; the request may be retried later. From an
    /// SQL store's write, it means nothing changed, unless the message says the change may have
    /// been made.
    Backend(String),
    /// A stored record could not be read back.
    Decode(String),
    /// A record could not be written in the backend's format.
    Encode(String),
    /// The organization already holds as many tokens as allowed.
    LimitReached {
        /// The configured limit.
        limit: usize,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Backend(why) => write!(f, "token store unavailable: {why}"),
            StoreError::Decode(why) => write!(f, "stored token record unreadable: {why}"),
            StoreError::Encode(why) => write!(f, "token record could not be encoded: {why}"),
            StoreError::LimitReached { limit } => {
                write!(
                    f,
                    "the organization already has {limit} tokens, the most allowed"
                )
            }
        }
    }
}

impl std::error::Error for StoreError {}
