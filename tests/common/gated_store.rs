//! [`GatedStore`]: a store whose reads can be held at a gate or made to fail, and are counted, to
//! watch what a cache in front of it asks of it.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::sync::{OwnedRwLockWriteGuard, RwLock};
use tower_impersonation::{
    MemoryStore, StoreError, Timestamp, TokenDigest, TokenRecord, TokenStore,
    jwt::{JwtRevocations, MintedJwt, UserRevocation},
};
use uuid::Uuid;

/// A [`MemoryStore`] whose token lookups and JWT-revocation reads (its reads) wait while the
/// gate is closed, fail while it is failing, and are counted as they arrive. Writes pass straight
/// through. Clones share everything.
#[derive(Clone, Default)]
pub struct GatedStore {
    inner: MemoryStore,
    gate: Arc<RwLock<()>>,
    reads: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
}

impl GatedStore {
    /// The store behind the gate, to change behind a cache's back.
    pub fn inner(&self) -> &MemoryStore {
        &self.inner
    }

    /// How many reads have arrived, held ones included.
    pub fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }

    /// Holds every read until the guard is dropped.
    pub async fn close(&self) -> OwnedRwLockWriteGuard<()> {
        Arc::clone(&self.gate).write_owned().await
    }

    /// Makes reads fail with a backend error, or succeed again.
    pub fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// Waits until `count` reads have arrived (a minute at most: then the test fails).
    pub async fn until_reads(&self, count: usize) {
        let arrived = async {
            while self.reads() < count {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(60), arrived)
            .await
            .unwrap_or_else(|_| panic!("{} reads arrived, not {count}", self.reads()));
    }

    /// Counts a read, waits at the gate, then fails or goes on.
    async fn pass(&self) -> Result<(), StoreError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        let _open = self.gate.read().await;
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Backend("the gate is failing".into()));
        }
        Ok(())
    }
}

impl TokenStore for GatedStore {
    fn create(
        &self,
        record: TokenRecord,
        limit: usize,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.inner.create(record, limit)
    }

    async fn lookup(&self, digest: &TokenDigest) -> Result<Option<Arc<TokenRecord>>, StoreError> {
        self.pass().await?;
        self.inner.lookup(digest).await
    }

    fn list(
        &self,
        organization: &str,
    ) -> impl Future<Output = Result<Vec<Arc<TokenRecord>>, StoreError>> + Send {
        self.inner.list(organization)
    }

    fn revoke(
        &self,
        organization: &str,
        id: Uuid,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.inner.revoke(organization, id)
    }

    fn record_use(
        &self,
        id: Uuid,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.inner.record_use(id, at)
    }

    fn record_jwt(&self, jwt: MintedJwt) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.inner.record_jwt(jwt)
    }

    fn list_jwts(
        &self,
        organization: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<MintedJwt>, StoreError>> + Send {
        self.inner.list_jwts(organization, now)
    }

    fn revoke_jwt(
        &self,
        organization: &str,
        jti: Uuid,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.inner.revoke_jwt(organization, jti, now)
    }

    fn revoke_user_jwts(
        &self,
        revocation: UserRevocation,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.inner.revoke_user_jwts(revocation)
    }

    async fn jwt_revocations(&self, now: Timestamp) -> Result<JwtRevocations, StoreError> {
        self.pass().await?;
        self.inner.jwt_revocations(now).await
    }
}
