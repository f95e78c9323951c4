//! The in-process store, the default.

use std::{future::Future, sync::Arc};

use dashmap::DashMap;
use uuid::Uuid;

use super::{StoreError, TokenStore};
use crate::{
    record::TokenRecord,
    time::Timestamp,
    token::{DigestHashBuilder, TokenDigest},
};

/// Keeps tokens in this process's memory, in concurrent maps: fast, and gone at restart.
///
/// Clones share the same tokens.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    by_digest: Arc<DashMap<TokenDigest, Arc<TokenRecord>, DigestHashBuilder>>,
    digest_by_id: Arc<DashMap<Uuid, TokenDigest>>,
}

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

    fn insert(&self, record: TokenRecord) {
        self.digest_by_id.insert(record.id, record.digest);
        self.by_digest.insert(record.digest, Arc::new(record));
    }

    fn get(&self, digest: &TokenDigest) -> Option<Arc<TokenRecord>> {
        self.by_digest
            .get(digest)
            .map(|entry| Arc::clone(entry.value()))
    }

    fn remove(&self, organization: &str, id: Uuid) -> bool {
        let Some(digest) = self.digest_by_id.get(&id).map(|entry| *entry.value()) else {
            return false;
        };
        let removed = self
            .by_digest
            .remove_if(&digest, |_, record| &*record.organization == organization);
        if removed.is_some() {
            self.digest_by_id.remove(&id);
        }
        removed.is_some()
    }

    fn collect(&self, organization: &str) -> Vec<Arc<TokenRecord>> {
        let mut records: Vec<_> = self
            .by_digest
            .iter()
            .filter(|entry| &*entry.organization == organization)
            .map(|entry| Arc::clone(entry.value()))
            .collect();
        records.sort_by_key(|record| (record.created_at, record.id));
        records
    }

    fn touch(&self, id: Uuid, at: Timestamp) {
        let Some(digest) = self.digest_by_id.get(&id).map(|entry| *entry.value()) else {
            return;
        };
        if let Some(entry) = self.by_digest.get(&digest) {
            entry.last_used.record(at);
        }
    }
}

impl TokenStore for MemoryStore {
    fn create(&self, record: TokenRecord) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.insert(record);
        std::future::ready(Ok(()))
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
}
