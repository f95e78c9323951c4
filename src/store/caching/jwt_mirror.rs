//! The JWT mirror: the store's JWT revocations as last read, answered from while young.
//!
//! Every JWT request reads the mirror, so it is swapped whole rather than locked: a read bumps
//! no count that other cores bump too, and a change makes a new mirror.

use std::sync::Arc;

use uuid::Uuid;

use super::{
    CachingStore, Shared,
    freshness::{Claim, Freshness, Lifetime},
};
use crate::{
    jwt::{JwtRevocations, UserRevocation},
    store::{StoreError, TokenStore},
    time::{Timestamp, monotonic_millis},
};

/// The store's JWT revocations as last read, answered from while younger than the lifetime.
#[derive(Default)]
pub(super) struct JwtMirror {
    revocations: Arc<JwtRevocations>,
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
        let mut revocations = JwtRevocations::clone(&self.revocations);
        revocations.forget_expired(now);
        revocations
    }

    /// The same revocations, to be read again before the next answer.
    fn forgotten(&self) -> Self {
        Self {
            revocations: Arc::clone(&self.revocations),
            read: None,
            version: self.version + 1,
        }
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

impl<Cache: TokenStore, Store: TokenStore> CachingStore<Cache, Store> {
    /// The store's JWT revocations, read again when older than the lifetime or stale.
    pub(super) async fn current_jwt_revocations(
        &self,
        now: Timestamp,
    ) -> Result<JwtRevocations, StoreError> {
        let shared = &self.shared;
        let (claim, version) = {
            let mirror = shared.jwt_mirror.load();
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
                    .jwt_mirror
                    .load()
                    .after_failed_refresh(now, self.lifetime, error);
            }
            Err(error) => return Err(error),
        };
        let read = Arc::new(revocations.clone());
        shared.jwt_mirror.rcu(|mirror| {
            if mirror.version != version {
                return Arc::clone(mirror);
            }
            Arc::new(JwtMirror {
                revocations: Arc::clone(&read),
                read: Some(Freshness::new(asked_at)),
                version,
            })
        });
        Ok(revocations)
    }

    pub(super) async fn revoke_jwt_everywhere(
        &self,
        organization: &str,
        jti: Uuid,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let revoked = self.shared.store.revoke_jwt(organization, jti, now).await;
        self.shared.forget_jwt_revocations();
        revoked
    }

    pub(super) async fn revoke_user_jwts_everywhere(
        &self,
        revocation: UserRevocation,
    ) -> Result<(), StoreError> {
        let revoked = self.shared.store.revoke_user_jwts(revocation).await;
        self.shared.forget_jwt_revocations();
        revoked
    }
}

impl<Cache: TokenStore, Store: TokenStore> Shared<Cache, Store> {
    /// Makes the next JWT check read the store's revocations again.
    pub(super) fn forget_jwt_revocations(&self) {
        self.jwt_mirror.rcu(|mirror| Arc::new(mirror.forgotten()));
    }

    /// `answer` from the revocations last read, while they answer without anyone reading the
    /// store.
    pub(super) fn answer_from_jwt_mirror<T>(
        &self,
        lifetime: Lifetime,
        answer: impl FnOnce(&JwtRevocations) -> T,
    ) -> Option<T> {
        let mirror = self.jwt_mirror.load();
        let answers = mirror
            .read
            .as_ref()
            .is_some_and(|read| read.answers(monotonic_millis(), lifetime));
        answers.then(|| answer(&mirror.revocations))
    }
}
