//! The in-process store, the default.

use std::{
    borrow::Borrow,
    future::Future,
    hash::{Hash, Hasher},
    sync::{Arc, PoisonError, RwLock},
};

use dashmap::{DashMap, DashSet};
use uuid::Uuid;

use super::{StoreError, TokenStore};
use crate::{
    jwt::{JwtBook, JwtIdentity, JwtRevocations, MintedJwt, UserRevocation},
    record::TokenRecord,
    time::Timestamp,
    token::{DigestHashBuilder, TokenDigest},
};

/// Keeps tokens in this process's memory, in concurrent sets: fast, and gone at restart.
///
/// Each record is kept once and indexed twice, by digest and by id, each index entry one pointer
/// (`cargo bench --bench token_memory` measures a token's footprint).
/// Clones share the same tokens.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    by_digest: Arc<DashSet<ByDigest, DigestHashBuilder>>,
    /// Ids are random and clients only look them up, so the cheap hasher serves here too.
    by_id: Arc<DashSet<ById, DigestHashBuilder>>,
    /// One shared copy of each organization and creator id: a million tokens of a few
    /// organizations then hold a few strings, and a lookup reads a string that is likely in cache.
    /// It grows by one entry per organization or admin that ever created a token here, names
    /// that come from the app's own authentication, never from a client.
    names: Arc<DashSet<Arc<str>>>,
    /// How many tokens each organization holds; a creation counts and stores under its entry's
    /// lock, so racing creations cannot pass a limit.
    held: Arc<DashMap<Arc<str>, usize>>,
    /// Minted JWTs and their revocations: written rarely, read on every JWT request.
    jwts: Arc<RwLock<JwtBook>>,
}

/// A record in the digest index: hashed, compared and looked up by its digest.
#[derive(Clone, Debug)]
struct ByDigest(Arc<TokenRecord>);

/// A record in the id index: hashed, compared and looked up by its id.
#[derive(Clone, Debug)]
struct ById(Arc<TokenRecord>);

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many tokens are stored, across organizations.
    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    /// Whether no token is stored.
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    /// Stores `record` unless its organization holds `limit` tokens already.
    fn insert_within(&self, mut record: TokenRecord, limit: usize) -> Result<(), StoreError> {
        record.organization = self.intern(&record.organization);
        record.created_by = self.intern(&record.created_by);
        let mut held = self
            .held
            .entry(Arc::clone(&record.organization))
            .or_insert(0);
        if *held >= limit {
            return Err(StoreError::LimitReached { limit });
        }
        *held += 1;
        let record = Arc::new(record);
        self.by_id.insert(ById(Arc::clone(&record)));
        self.by_digest.insert(ByDigest(record));
        Ok(())
    }

    fn intern(&self, name: &Arc<str>) -> Arc<str> {
        if let Some(known) = self.names.get(&**name) {
            return Arc::clone(&known);
        }
        self.names.insert(Arc::clone(name));
        Arc::clone(name)
    }

    fn get(&self, digest: &TokenDigest) -> Option<Arc<TokenRecord>> {
        self.by_digest.get(digest).map(|entry| Arc::clone(&entry.0))
    }

    fn remove(&self, organization: &str, id: Uuid) -> bool {
        let removed = self
            .by_id
            .remove_if(&id, |entry| &*entry.0.organization == organization);
        if let Some(ById(record)) = &removed {
            self.by_digest.remove(&record.digest);
            if let Some(mut held) = self.held.get_mut(organization) {
                *held = held.saturating_sub(1);
            }
        }
        removed.is_some()
    }

    fn collect(&self, organization: &str) -> Vec<Arc<TokenRecord>> {
        let mut records: Vec<_> = self
            .by_id
            .iter()
            .filter(|entry| &*entry.0.organization == organization)
            .map(|entry| Arc::clone(&entry.0))
            .collect();
        records.sort_by_key(|record| (record.created_at, record.id));
        records
    }

    fn read_jwts<T>(&self, read: impl FnOnce(&JwtBook) -> T) -> T {
        read(&self.jwts.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn write_jwts<T>(&self, write: impl FnOnce(&mut JwtBook) -> T) -> T {
        write(&mut self.jwts.write().unwrap_or_else(PoisonError::into_inner))
    }

    fn touch(&self, id: Uuid, at: Timestamp) {
        if let Some(entry) = self.by_id.get(&id) {
            entry.0.last_used.record(at);
        }
    }
}

impl Hash for ByDigest {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.digest.hash(state);
    }
}

impl PartialEq for ByDigest {
    fn eq(&self, other: &Self) -> bool {
        self.0.digest == other.0.digest
    }
}

impl Eq for ByDigest {}

impl Borrow<TokenDigest> for ByDigest {
    fn borrow(&self) -> &TokenDigest {
        &self.0.digest
    }
}

impl Hash for ById {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.id.hash(state);
    }
}

impl PartialEq for ById {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for ById {}

impl Borrow<Uuid> for ById {
    fn borrow(&self) -> &Uuid {
        &self.0.id
    }
}

impl TokenStore for MemoryStore {
    fn create(
        &self,
        record: TokenRecord,
        limit: usize,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        std::future::ready(self.insert_within(record, limit))
    }

    fn lookup(
        &self,
        digest: &TokenDigest,
    ) -> impl Future<Output = Result<Option<Arc<TokenRecord>>, StoreError>> + Send {
        std::future::ready(Ok(self.get(digest)))
    }

    fn lookup_now(
        &self,
        digest: &TokenDigest,
    ) -> Option<Result<Option<Arc<TokenRecord>>, StoreError>> {
        Some(Ok(self.get(digest)))
    }

    fn list(
        &self,
        organization: &str,
    ) -> impl Future<Output = Result<Vec<Arc<TokenRecord>>, StoreError>> + Send {
        std::future::ready(Ok(self.collect(organization)))
    }

    fn revoke(
        &self,
        organization: &str,
        id: Uuid,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        std::future::ready(Ok(self.remove(organization, id)))
    }

    fn record_use(
        &self,
        id: Uuid,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.touch(id, at);
        std::future::ready(Ok(()))
    }

    /// The records a `MemoryStore` hands out are the ones it keeps: a use noted on them is stored.
    fn writes_back_uses(&self) -> bool {
        false
    }

    fn record_jwt(&self, jwt: MintedJwt) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.write_jwts(|book| book.record(jwt, Timestamp::now()));
        std::future::ready(Ok(()))
    }

    fn list_jwts(
        &self,
        organization: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<MintedJwt>, StoreError>> + Send {
        std::future::ready(Ok(self.read_jwts(|book| book.live(organization, now))))
    }

    fn revoke_jwt(
        &self,
        organization: &str,
        jti: Uuid,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let revoked = self.write_jwts(|book| book.revoke(organization, jti, now));
        std::future::ready(Ok(revoked))
    }

    fn revoke_user_jwts(
        &self,
        revocation: UserRevocation,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.write_jwts(|book| book.revoke_user(revocation, Timestamp::now()));
        std::future::ready(Ok(()))
    }

    fn jwt_revocations(
        &self,
        now: Timestamp,
    ) -> impl Future<Output = Result<JwtRevocations, StoreError>> + Send {
        let mut revocations = self.read_jwts(|book| book.revocations().clone());
        revocations.forget_expired(now);
        std::future::ready(Ok(revocations))
    }

    fn jwt_revoked_now(&self, jwt: &JwtIdentity<'_>) -> Option<bool> {
        Some(self.read_jwts(|book| book.revocations().is_revoked(jwt)))
    }
}
