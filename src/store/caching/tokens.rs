//! The cached token records: answering a lookup from the cache, filling it from the store,
//! dropping and evicting entries.

use std::{
    cell::RefCell,
    sync::{Arc, atomic::Ordering},
};

use uuid::Uuid;

use super::{
    CachingStore, Shared,
    freshness::{Claim, Freshness, Lifetime},
};
use crate::{
    record::TokenRecord,
    store::{StoreError, TokenStore},
    thread_copies::{ThreadCopies, find_through, hash_of},
    time::monotonic_millis,
    token::TokenDigest,
};

/// A thread's hold on a cached record: the shared record itself (the layer notes each use on
/// it), until the entry is due for a refresh.
#[derive(Clone)]
struct Held {
    record: Arc<TokenRecord>,
    /// When the entry is due for a refresh ([`monotonic_millis`]): from then on the entry
    /// answers, or is refreshed.
    due_at: u64,
}

thread_local! {
    /// This thread's holds on the records it keeps finding, by digest.
    static HELD: RefCell<ThreadCopies<TokenDigest, Held>> =
        const { RefCell::new(ThreadCopies::new()) };
}

/// A cached token record and when it was read from the store.
pub(super) struct Entry {
    /// When the record was read from the store.
    pub(super) read: Freshness,
    pub(super) record: Arc<TokenRecord>,
}

impl<Cache: TokenStore, Store: TokenStore> CachingStore<Cache, Store> {
    /// The cached record, while it answers without anyone reading the store: through this
    /// thread's hold on it when the thread keeps finding it, which skips the shard's lock.
    pub(super) fn answer_now(&self, digest: &TokenDigest) -> Option<Arc<TokenRecord>> {
        let now = monotonic_millis();
        let shared = &self.shared;
        // Any invalidation since a hold was taken lets go of it.
        let source = shared.thread_source ^ shared.generation.load(Ordering::SeqCst);
        let held = find_through(
            &HELD,
            source,
            hash_of(digest),
            |kept, held: &Held| kept == digest && now < held.due_at,
            Held::clone,
            || self.held_from_entry(digest, now),
            || *digest,
        );
        held.map(|held| held.record)
    }

    /// The entry's record and when it is due for a refresh, if it answers at `now`.
    fn held_from_entry(&self, digest: &TokenDigest, now: u64) -> Option<Held> {
        let entry = self.shared.entries.get(digest)?;
        entry.read.answers(now, self.lifetime).then(|| Held {
            record: Arc::clone(&entry.record),
            due_at: entry.read.due_at(self.lifetime),
        })
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

    pub(super) async fn find(
        &self,
        digest: TokenDigest,
    ) -> Result<Option<Arc<TokenRecord>>, StoreError> {
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

    pub(super) async fn revoke_everywhere(
        &self,
        organization: &str,
        id: Uuid,
    ) -> Result<bool, StoreError> {
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
}

impl<Cache: TokenStore, Store: TokenStore> Shared<Cache, Store> {
    pub(super) async fn invalidate(&self, digest: &TokenDigest) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.forget(digest).await;
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::{
        record::TokenRecord,
        role::Roles,
        store::{CachingStore, MemoryStore, TokenStore},
        time::Timestamp,
        token::TokenPrefix,
    };

    #[tokio::test]
    async fn a_use_noted_on_the_lookup_that_filled_the_cache_is_the_one_later_hits_see() {
        let store = CachingStore::new(MemoryStore::new(), MemoryStore::new())
            .lifetime(Duration::from_secs(60));
        let (_, record) =
            TokenRecord::issue(&TokenPrefix::default(), "acme", "a-1", Roles::full_access());
        store.create(record.clone(), usize::MAX).await.unwrap();
        let at = Timestamp::now();
        // What the layer does: note the use, and write it back when `note` says it is due.
        let filled = store.lookup(&record.digest).await.unwrap().unwrap();
        assert!(filled.last_used.note(at), "a first use is due");
        let hit = store.lookup_now(&record.digest).unwrap().unwrap().unwrap();
        assert_eq!(hit.last_used.get(), Some(at));
        assert!(
            !hit.last_used.note(at.plus(Duration::from_secs(1))),
            "not due again within the interval: the store hears of it once"
        );
    }
}
