//! [`CachingStore`]: a fast local store in front of a shared one.

mod freshness;
mod jwt_mirror;
#[cfg(any(feature = "redis", feature = "postgres"))]
mod listener;
mod tokens;
mod write_back;

use std::{
    fmt,
    future::Future,
    sync::{Arc, atomic::AtomicU64},
    time::Duration,
};

use arc_swap::ArcSwap;
use dashmap::DashMap;
use uuid::Uuid;

#[cfg(any(feature = "redis", feature = "postgres"))]
pub use self::listener::RevocationListener;
use self::{freshness::Lifetime, jwt_mirror::JwtMirror, tokens::Entry};
use super::{StoreError, TokenStore};
use crate::{
    jwt::{JwtIdentity, JwtRevocations, MintedJwt, UserRevocation},
    record::TokenRecord,
    thread_copies::new_source,
    time::Timestamp,
    token::{DigestHashBuilder, TokenDigest},
};

/// How long a looked-up token is answered from the cache unless configured otherwise: 5 seconds.
pub const DEFAULT_CACHE_LIFETIME: Duration = Duration::from_secs(5);

/// How many tokens the cache holds at most unless configured otherwise.
pub const DEFAULT_MAX_CACHED_TOKENS: usize = 100_000;

/// Answers lookups from a fast `Cache` store (a [`MemoryStore`](super::MemoryStore) in practice)
/// in front of a slower or shared `Store` (an SQLite file, Postgres or Redis), so most requests
/// wait on neither a disk nor the network.
///
/// - A lookup is answered from the cache, in one hash-table read, while the entry is younger than
///   the [lifetime](CachingStore::lifetime) (default 5 seconds; ages are read on the kernel's
///   coarse monotonic clock, so up to a tick more); otherwise it goes to the store and, if
///   the store knows the token, fills the cache. Unknown tokens are not cached: a token created on
///   another instance works at once.
/// - A thread that keeps finding the same token holds on to its cached record and answers from
///   that hold without the hash table's lock, until the entry is due for a refresh or anything in
///   the cache is revoked or invalidated.
/// - In the last tenth of an entry's lifetime, one lookup reads the store again while the others
///   are still answered from the cache, so a token in steady use never has every request wait on
///   the store at once. If that read fails, the entry answers until its lifetime ends. The JWT
///   revocations are read again the same way.
/// - `create`, `list`, `revoke` and `record_use` go to the store; `revoke` also drops the token
///   from this cache, and `record_use` is written through to the cache too.
/// - The cache holds at most [`max_entries`](CachingStore::max_entries) tokens (default 100 000):
///   when full, expired entries are dropped first, then arbitrary ones.
///
/// # Worst-case revocation delay
///
/// A token revoked **through this store** stops working here at once. A token revoked on
/// **another instance** stops working here when this instance hears of it — with
/// `listen_for_revocations` (a store with a `RevocationFeed`: Redis with feature `redis`,
/// Postgres with feature `postgres`), within the time the announcement takes — and in any case,
/// even if that announcement is lost or nothing listens, **within the cache lifetime** (5 seconds
/// by default) of the revocation. While the store is unreachable, cached tokens keep working for
/// at most that lifetime; every other lookup fails, and the layer answers 503.
///
/// Clones share the cache and the stores.
pub struct CachingStore<Cache, Store> {
    shared: Arc<Shared<Cache, Store>>,
    lifetime: Lifetime,
    max_entries: usize,
}

/// What clones and the revocation listener share.
struct Shared<Cache, Store> {
    cache: Cache,
    store: Store,
    /// Each cached token's record, as the cache holds it, and when it was cached: one hash-table
    /// read answers a lookup. Digests are uniformly random, so the cheap hasher serves.
    entries: DashMap<TokenDigest, Entry, DigestHashBuilder>,
    /// Bumped by every invalidation, so a lookup that raced one does not cache what it read.
    generation: AtomicU64,
    /// Tells this cache's records apart from another's in the threads' holds on them; with the
    /// generation, a thread's hold on a record (`tokens::HELD`) from before an invalidation.
    thread_source: u64,
    /// The store's JWT revocations as last read.
    jwt_mirror: ArcSwap<JwtMirror>,
}

impl<Cache, Store> Clone for CachingStore<Cache, Store> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            lifetime: self.lifetime,
            max_entries: self.max_entries,
        }
    }
}

impl<Cache, Store: fmt::Debug> fmt::Debug for CachingStore<Cache, Store> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachingStore")
            .field("store", &self.shared.store)
            .field("cached", &self.shared.entries.len())
            .field("lifetime", &self.lifetime.duration())
            .field("max_entries", &self.max_entries)
            .finish_non_exhaustive()
    }
}

impl<Cache: TokenStore, Store: TokenStore> CachingStore<Cache, Store> {
    /// `cache` in front of `store`, with the defaults. `cache` should start empty and be used by
    /// nothing else.
    pub fn new(cache: Cache, store: Store) -> Self {
        Self {
            shared: Arc::new(Shared {
                cache,
                store,
                entries: DashMap::default(),
                generation: AtomicU64::new(0),
                thread_source: new_source() << 32,
                jwt_mirror: ArcSwap::default(),
            }),
            lifetime: Lifetime::new(DEFAULT_CACHE_LIFETIME),
            max_entries: DEFAULT_MAX_CACHED_TOKENS,
        }
    }

    /// How long a token is answered from the cache once looked up (default 5 seconds): the longest
    /// a revocation elsewhere can go unnoticed here.
    #[must_use]
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = Lifetime::new(lifetime);
        self
    }

    /// How many tokens the cache holds at most (default 100 000, at least 1).
    #[must_use]
    pub fn max_entries(mut self, max: usize) -> Self {
        self.max_entries = max.max(1);
        self
    }

    /// The store behind the cache.
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// How many tokens are cached now, fresh or not yet dropped.
    pub fn cached_len(&self) -> usize {
        self.shared.entries.len()
    }

    /// Drops one token from the cache, for an app that hears of revocations its own way.
    pub async fn invalidate(&self, digest: &TokenDigest) {
        self.shared.invalidate(digest).await;
    }

    /// Empties the cache.
    pub async fn invalidate_all(&self) {
        self.shared.invalidate_all().await;
    }
}

impl<Cache: TokenStore, Store: TokenStore> TokenStore for CachingStore<Cache, Store> {
    fn create(
        &self,
        record: TokenRecord,
        limit: usize,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.shared.store.create(record, limit)
    }

    fn lookup(
        &self,
        digest: &TokenDigest,
    ) -> impl Future<Output = Result<Option<Arc<TokenRecord>>, StoreError>> + Send {
        self.find(*digest)
    }

    /// A cache hit that needs no store read; anything else asks `lookup`.
    fn lookup_now(
        &self,
        digest: &TokenDigest,
    ) -> Option<Result<Option<Arc<TokenRecord>>, StoreError>> {
        self.answer_now(digest).map(|record| Ok(Some(record)))
    }

    fn list(
        &self,
        organization: &str,
    ) -> impl Future<Output = Result<Vec<Arc<TokenRecord>>, StoreError>> + Send {
        self.shared.store.list(organization)
    }

    fn revoke(
        &self,
        organization: &str,
        id: Uuid,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.revoke_everywhere(organization, id)
    }

    fn record_use(
        &self,
        id: Uuid,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.touch(id, at)
    }

    /// Writes back the last uses noted on cached records since the store last heard of them.
    fn flush(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.flush_uses()
    }

    fn record_jwt(&self, jwt: MintedJwt) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.shared.store.record_jwt(jwt)
    }

    fn list_jwts(
        &self,
        organization: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<MintedJwt>, StoreError>> + Send {
        self.shared.store.list_jwts(organization, now)
    }

    /// Revokes in the store, and reads its revocations again before the next answer here.
    fn revoke_jwt(
        &self,
        organization: &str,
        jti: Uuid,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.revoke_jwt_everywhere(organization, jti, now)
    }

    /// Revokes in the store, and reads its revocations again before the next answer here.
    fn revoke_user_jwts(
        &self,
        revocation: UserRevocation,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.revoke_user_jwts_everywhere(revocation)
    }

    /// The revocations as last read from the store, read again once older than the lifetime.
    fn jwt_revocations(
        &self,
        now: Timestamp,
    ) -> impl Future<Output = Result<JwtRevocations, StoreError>> + Send {
        self.current_jwt_revocations(now)
    }

    /// Answered from the revocations last read, while they need no store read.
    fn jwt_revoked_now(&self, jwt: &JwtIdentity<'_>) -> Option<bool> {
        self.shared
            .answer_from_jwt_mirror(self.lifetime, |revocations| revocations.is_revoked(jwt))
    }
}
