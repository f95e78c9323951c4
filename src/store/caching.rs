//! [`CachingStore`]: a fast local store in front of a shared one.

mod freshness;

use std::{
    fmt,
    future::Future,
    sync::{
        Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use dashmap::DashMap;
use uuid::Uuid;

use self::freshness::{Claim, Freshness, Lifetime};
use super::{StoreError, TokenStore};
use crate::{
    jwt::{JwtIdentity, JwtRevocations, MintedJwt, UserRevocation},
    record::TokenRecord,
    time::{Timestamp, monotonic_millis},
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
    pub(super) shared: Arc<Shared<Cache, Store>>,
    lifetime: Lifetime,
    max_entries: usize,
}

/// What clones and the revocation listener share.
pub(super) struct Shared<Cache, Store> {
    cache: Cache,
    pub(super) store: Store,
    /// Each cached token's record, as the cache holds it, and when it was cached: one hash-table
    /// read answers a lookup. Digests are uniformly random, so the cheap hasher serves.
    entries: DashMap<TokenDigest, Entry, DigestHashBuilder>,
    /// Bumped by every invalidation, so a lookup that raced one does not cache what it read.
    generation: AtomicU64,
    /// The store's JWT revocations as last read.
    jwt_revocations: RwLock<JwtMirror>,
}

/// The store's JWT revocations as last read, answered from while younger than the lifetime.
#[derive(Default)]
struct JwtMirror {
    revocations: JwtRevocations,
    /// When they were read; `None` when they must be read again.
    read: Option<Freshness>,
    /// Bumped by every revocation heard of, so a read that raced one is not kept.
    version: u64,
}

impl JwtMirror {
    /// What the caller does with the revocations last read.
    fn claim(&self, lifetime: Lifetime) -> Claim {
        self.read.as_ref().map_or(Claim::Expired, |read| {
            read.claim(monotonic_millis(), lifetime)
        })
    }

    /// The revocations last read, without what concerns only JWTs expired at `now`.
    fn revocations_at(&self, now: Timestamp) -> JwtRevocations {
        let mut revocations = self.revocations.clone();
        revocations.forget_expired(now);
        revocations
    }

    /// The revocations last read while they are still young enough to answer, when the store
    /// failed to refresh them; the store's error once they are not. The next check tries again.
    fn after_failed_refresh(
        &self,
        now: Timestamp,
        lifetime: Lifetime,
        error: StoreError,
    ) -> Result<JwtRevocations, StoreError> {
        let Some(read) = &self.read else {
            return Err(error);
        };
        read.release();
        if !read.is_fresh(monotonic_millis(), lifetime) {
            return Err(error);
        }
        tracing::warn!(
            target: "tower_impersonation",
            %error,
            "token store failed; the cached JWT revocations answer until their cache lifetime ends"
        );
        Ok(self.revocations_at(now))
    }
}

struct Entry {
    /// When the record was read from the store.
    read: Freshness,
    record: Arc<TokenRecord>,
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
                jwt_revocations: RwLock::default(),
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

    /// The cached record, while it answers without anyone reading the store.
    fn answer_now(&self, digest: &TokenDigest) -> Option<Arc<TokenRecord>> {
        let entry = self.shared.entries.get(digest)?;
        let answers = entry.read.answers(monotonic_millis(), self.lifetime);
        answers.then(|| Arc::clone(&entry.record))
    }

    /// What this caller does with the cached record, and the record when it is to answer.
    fn claim(&self, digest: &TokenDigest) -> (Claim, Option<Arc<TokenRecord>>) {
        let Some(entry) = self.shared.entries.get(digest) else {
            return (Claim::Expired, None);
        };
        let claim = entry.read.claim(monotonic_millis(), self.lifetime);
        let answer = (claim == Claim::Answer).then(|| Arc::clone(&entry.record));
        (claim, answer)
    }

    async fn find(&self, digest: TokenDigest) -> Result<Option<Arc<TokenRecord>>, StoreError> {
        let (claim, cached) = self.claim(&digest);
        if claim == Claim::Answer {
            return Ok(cached);
        }
        let shared = &self.shared;
        // The entry's age counts from before the store was asked, so a token revoked after the
        // store answered is cached for less than the lifetime after its revocation.
        let asked_at = monotonic_millis();
        let generation = shared.generation.load(Ordering::SeqCst);
        let found = match shared.store.lookup(&digest).await {
            Ok(found) => found,
            Err(error) if claim == Claim::Refresh => {
                return self.after_failed_refresh(&digest, error);
            }
            Err(error) => return Err(error),
        };
        let Some(found) = found else {
            shared.forget(&digest).await;
            return Ok(None);
        };
        // The cache's copy when there is one, so a use noted on it now is the one later hits
        // see, and the store hears of it once.
        let cached = self.fill(digest, &found, asked_at, generation).await;
        Ok(Some(cached.unwrap_or(found)))
    }

    async fn fill(
        &self,
        digest: TokenDigest,
        record: &Arc<TokenRecord>,
        asked_at: u64,
        generation: u64,
    ) -> Option<Arc<TokenRecord>> {
        let shared = &self.shared;
        if shared.entries.len() >= self.max_entries {
            shared.evict(self.max_entries, self.lifetime).await;
        }
        // Replace whatever the cache held for this token.
        shared.forget(&digest).await;
        let cached = match shared
            .cache
            .create(TokenRecord::clone(record), usize::MAX)
            .await
        {
            Ok(()) => shared.cache.lookup(&digest).await,
            Err(error) => Err(error),
        };
        let record = match cached {
            Ok(Some(record)) => record,
            Ok(None) => return None,
            Err(error) => {
                tracing::warn!(target: "tower_impersonation", %error, "token cache failed");
                return None;
            }
        };
        let entry = Entry {
            read: Freshness::new(asked_at),
            record: Arc::clone(&record),
        };
        shared.entries.insert(digest, entry);
        if shared.generation.load(Ordering::SeqCst) != generation {
            // Something was revoked while the record was read: it may be what was revoked.
            shared.forget(&digest).await;
            return None;
        }
        Some(record)
    }

    /// The cached record while it is still young enough to answer, when the store failed to
    /// refresh it; the store's error once it is not. The next lookup tries the store again.
    fn after_failed_refresh(
        &self,
        digest: &TokenDigest,
        error: StoreError,
    ) -> Result<Option<Arc<TokenRecord>>, StoreError> {
        let Some(entry) = self.shared.entries.get(digest) else {
            return Err(error);
        };
        entry.read.release();
        if !entry.read.is_fresh(monotonic_millis(), self.lifetime) {
            return Err(error);
        }
        tracing::warn!(
            target: "tower_impersonation",
            %error,
            "token store failed; a cached token answers until its cache lifetime ends"
        );
        Ok(Some(Arc::clone(&entry.record)))
    }

    async fn revoke_everywhere(&self, organization: &str, id: Uuid) -> Result<bool, StoreError> {
        let revoked = self.shared.store.revoke(organization, id).await;
        // Even when the store failed: the token may be revoked there, and a miss costs little.
        self.shared.generation.fetch_add(1, Ordering::SeqCst);
        // Revocations are rare; the cache is read by digest on every request.
        self.shared.entries.retain(|_, entry| entry.record.id != id);
        if let Err(error) = self.shared.cache.revoke(organization, id).await {
            tracing::warn!(target: "tower_impersonation", %error, "token cache failed");
        }
        revoked
    }

    /// Writes the uses noted on cached records since their last write to the store. A use the
    /// store did not take stays unwritten, for the next flush.
    async fn flush_uses(&self) -> Result<(), StoreError> {
        let shared = &self.shared;
        let records: Vec<Arc<TokenRecord>> = shared
            .entries
            .iter()
            .map(|entry| Arc::clone(&entry.record))
            .collect();
        for record in records {
            if let Some(at) = record.last_used.unwritten() {
                shared.store.record_use(record.id, at).await?;
                record.last_used.mark_written(at);
            }
        }
        shared.store.flush().await
    }

    /// The store's JWT revocations, read again when older than the lifetime or stale.
    async fn current_jwt_revocations(&self, now: Timestamp) -> Result<JwtRevocations, StoreError> {
        let shared = &self.shared;
        let (claim, version) = {
            let mirror = shared.jwt_mirror();
            let claim = mirror.claim(self.lifetime);
            if claim == Claim::Answer {
                return Ok(mirror.revocations_at(now));
            }
            (claim, mirror.version)
        };
        let asked_at = monotonic_millis();
        let revocations = match shared.store.jwt_revocations(now).await {
            Ok(revocations) => revocations,
            Err(error) if claim == Claim::Refresh => {
                return shared
                    .jwt_mirror()
                    .after_failed_refresh(now, self.lifetime, error);
            }
            Err(error) => return Err(error),
        };
        let mut mirror = shared.jwt_mirror_mut();
        if mirror.version == version {
            mirror.revocations = revocations.clone();
            mirror.read = Some(Freshness::new(asked_at));
        }
        Ok(revocations)
    }

    async fn revoke_jwt_everywhere(
        &self,
        organization: &str,
        jti: Uuid,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let revoked = self.shared.store.revoke_jwt(organization, jti, now).await;
        self.shared.forget_jwt_revocations();
        revoked
    }

    async fn revoke_user_jwts_everywhere(
        &self,
        revocation: UserRevocation,
    ) -> Result<(), StoreError> {
        let revoked = self.shared.store.revoke_user_jwts(revocation).await;
        self.shared.forget_jwt_revocations();
        revoked
    }

    async fn touch(&self, id: Uuid, at: Timestamp) -> Result<(), StoreError> {
        self.shared.store.record_use(id, at).await?;
        if let Err(error) = self.shared.cache.record_use(id, at).await {
            tracing::warn!(target: "tower_impersonation", %error, "token cache failed");
        }
        Ok(())
    }
}

impl<Cache: TokenStore, Store: TokenStore> Shared<Cache, Store> {
    pub(super) async fn invalidate(&self, digest: &TokenDigest) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.forget(digest).await;
    }

    /// Makes the next JWT check read the store's revocations again.
    pub(super) fn forget_jwt_revocations(&self) {
        let mut mirror = self.jwt_mirror_mut();
        mirror.read = None;
        mirror.version += 1;
    }

    /// `answer` from the revocations last read, while they answer without anyone reading the
    /// store.
    fn answer_from_jwt_mirror<T>(
        &self,
        lifetime: Lifetime,
        answer: impl FnOnce(&JwtRevocations) -> T,
    ) -> Option<T> {
        let mirror = self.jwt_mirror();
        let answers = mirror
            .read
            .as_ref()
            .is_some_and(|read| read.answers(monotonic_millis(), lifetime));
        answers.then(|| answer(&mirror.revocations))
    }

    fn jwt_mirror(&self) -> RwLockReadGuard<'_, JwtMirror> {
        self.jwt_revocations
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn jwt_mirror_mut(&self) -> RwLockWriteGuard<'_, JwtMirror> {
        self.jwt_revocations
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) async fn invalidate_all(&self) {
        self.forget_jwt_revocations();
        self.generation.fetch_add(1, Ordering::SeqCst);
        let digests: Vec<TokenDigest> = self.entries.iter().map(|entry| *entry.key()).collect();
        for digest in digests {
            self.forget(&digest).await;
        }
    }

    /// Drops a token from the cache, if it is there.
    async fn forget(&self, digest: &TokenDigest) {
        let Some((_, entry)) = self.entries.remove(digest) else {
            return;
        };
        let record = &entry.record;
        if let Err(error) = self.cache.revoke(&record.organization, record.id).await {
            tracing::warn!(target: "tower_impersonation", %error, "token cache failed");
        }
    }

    /// Makes room: drops expired entries, then arbitrary ones, down to nine tenths of `max`.
    async fn evict(&self, max: usize, lifetime: Lifetime) {
        let target = max - max.div_ceil(10);
        let (mut victims, mut live) = (Vec::new(), Vec::new());
        let now = monotonic_millis();
        for entry in &self.entries {
            if !entry.read.is_fresh(now, lifetime) {
                victims.push(*entry.key());
            } else {
                live.push(*entry.key());
            }
        }
        let keep = self.entries.len().saturating_sub(victims.len());
        victims.extend(live.into_iter().take(keep.saturating_sub(target)));
        for digest in victims {
            self.forget(&digest).await;
        }
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
