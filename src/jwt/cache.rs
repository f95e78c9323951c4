//! A bounded cache of verified JWTs, so a client sending the same token again and again pays for
//! one signature check.

use std::{
    cell::RefCell,
    hash::{Hash, Hasher},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering::Relaxed},
    },
    time::Duration,
};

use dashmap::DashMap;

use uuid::Uuid;

use super::{JwtIdentity, claims::ImpersonationClaims, error::JwtError, validity::Validity};
use crate::{
    role::Roles,
    thread_copies::{ThreadCopies, find_through, hash_of, new_source},
    time::Timestamp,
    token::DigestHashBuilder,
};

/// Most verified tokens remembered; past it the cache starts over, so memory stays bounded.
pub(crate) const MAX_CACHED_TOKENS: usize = 10_000;

/// What a verified token grants, in the shared form the layer hands out per request.
#[derive(Debug)]
pub(crate) struct Verified {
    pub(crate) user_id: String,
    pub(crate) organization: Option<Arc<str>>,
    pub(crate) actor: Option<Arc<str>>,
    pub(crate) roles: Roles,
    /// When the token is accepted, by its time claims and the keys' rules.
    pub(super) validity: Validity,
    /// Its `jti`, when that is a UUID (as every JWT this crate mints has): revocable by it.
    pub(crate) jti: Option<Uuid>,
    /// Its `iat`, or for the bare form `exp` less the configured lifetime.
    pub(crate) issued_at: Timestamp,
}

impl Verified {
    /// The shared form of verified claims, valid during `validity`; unknown roles make the
    /// token invalid.
    pub(super) fn new(
        claims: ImpersonationClaims,
        validity: Validity,
        lifetime: Duration,
    ) -> Result<Self, JwtError> {
        let roles = match &claims.roles {
            Some(roles) => Roles::parse(roles).map_err(|_| JwtError::Malformed)?,
            None => Roles::full_access(),
        };
        let issued_at = match claims.iat {
            Some(iat) => Timestamp::from_secs(iat),
            None => Timestamp::from_secs(claims.exp.saturating_sub(lifetime.as_secs())),
        };
        Ok(Self {
            validity,
            jti: claims
                .jti
                .as_deref()
                .and_then(|jti| Uuid::try_parse(jti).ok()),
            issued_at,
            organization: claims.org.map(Arc::from),
            actor: claims.act.map(|act| Arc::from(act.sub)),
            user_id: claims.user_id,
            roles,
        })
    }

    /// The same claims in memory of their own, shared with no one: the layer clones the actor
    /// on every request.
    fn own_copy(&self) -> Self {
        Self {
            user_id: self.user_id.clone(),
            organization: self.organization.as_deref().map(Arc::from),
            actor: self.actor.as_deref().map(Arc::from),
            roles: self.roles.clone(),
            validity: self.validity,
            jti: self.jti,
            issued_at: self.issued_at,
        }
    }

    /// The token as revocations see it.
    pub(crate) fn identity(&self) -> JwtIdentity<'_> {
        JwtIdentity {
            jti: self.jti,
            organization: self.organization.as_deref(),
            user_id: &self.user_id,
            issued_at: self.issued_at,
        }
    }
}

/// The cache: keyed by the token's last 32 characters (its signature), holding the whole token,
/// which a hit must equal in full. Past [`MAX_CACHED_TOKENS`] each new token evicts one entry, in
/// the map's (hash) order: no request ever pays for emptying the whole cache. A thread that
/// meets a token again is served its own copy of the claims ([`ThreadCopies`]).
#[derive(Debug)]
pub(crate) struct VerifiedCache {
    entries: DashMap<Tail, (Box<str>, Arc<Verified>), DigestHashBuilder>,
    /// How many entries there are, kept beside the map because `DashMap::len` locks every shard.
    /// Each change follows what an insert or remove reported, so it never drifts.
    count: AtomicUsize,
    /// Tells this cache's tokens from another's (verified by other keys) in [`ThreadCopies`].
    source: u64,
}

thread_local! {
    /// This thread's copies of the verified tokens it met, by the whole token.
    static VERIFIED: RefCell<ThreadCopies<Box<str>, Arc<Verified>>> =
        const { RefCell::new(ThreadCopies::new()) };
}

impl Default for VerifiedCache {
    fn default() -> Self {
        Self {
            entries: DashMap::default(),
            count: AtomicUsize::new(0),
            source: new_source(),
        }
    }
}

impl VerifiedCache {
    /// The verified token, if it is cached and valid at `now` (seconds since the epoch) by every
    /// time rule: the cache never answers for a token the rules refuse now.
    pub(crate) fn get(&self, token: &[u8], now: u64) -> Option<Arc<Verified>> {
        let tail = Tail::of(token)?;
        let hit = self.thread_copy(token, &tail, now)?;
        if hit.validity.contains(now) {
            return Some(hit);
        }
        self.remove(&tail);
        None
    }

    /// This thread's copy of the token's claims while they are valid at `now`, or the shared
    /// claims. A copy past its validity is not answered, so the shared entry is removed once
    /// and later requests with the token only miss.
    fn thread_copy(&self, token: &[u8], tail: &Tail, now: u64) -> Option<Arc<Verified>> {
        find_through(
            &VERIFIED,
            self.source,
            hash_of(tail),
            |kept, copy| kept.as_bytes() == token && copy.validity.contains(now),
            |shared| Arc::new(shared.own_copy()),
            || {
                self.entries
                    .get(tail)
                    .filter(|entry| entry.0.as_bytes() == token)
                    .map(|entry| Arc::clone(&entry.1))
            },
            // It equals a token the cache holds, so it is UTF-8 and kept as it is.
            || String::from_utf8_lossy(token).into(),
        )
    }

    /// Remembers a token that just passed verification.
    pub(crate) fn insert(&self, token: &str, verified: Arc<Verified>) {
        let Some(tail) = Tail::of(token.as_bytes()) else {
            return;
        };
        if self.count.load(Relaxed) >= MAX_CACHED_TOKENS {
            self.evict_one();
        }
        if self
            .entries
            .insert(tail, (token.into(), verified))
            .is_none()
        {
            self.count.fetch_add(1, Relaxed);
        }
    }

    fn evict_one(&self) {
        // The iterator's shard lock is released before `remove` takes it again.
        let victim = self.entries.iter().next().map(|entry| *entry.key());
        if let Some(victim) = victim {
            self.remove(&victim);
        }
    }

    fn remove(&self, tail: &Tail) {
        if self.entries.remove(tail).is_some() {
            self.count.fetch_sub(1, Relaxed);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// The last 32 bytes of a token: its signature, which no two tokens share in practice. Only
/// tokens that verified are stored under it, so clients cannot aim collisions at the map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tail([u8; 32]);

impl Tail {
    fn of(token: &[u8]) -> Option<Self> {
        let start = token.len().checked_sub(32)?;
        token[start..].try_into().ok().map(Tail)
    }
}

impl Hash for Tail {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let word = |i: usize| {
            let mut bytes = [0; 8];
            bytes.copy_from_slice(&self.0[i..i + 8]);
            u64::from_le_bytes(bytes)
        };
        // Base64 characters carry six bits a byte: fold all four words and spread the bits.
        let folded =
            word(0) ^ word(8).rotate_left(16) ^ word(16).rotate_left(32) ^ word(24).rotate_left(48);
        state.write_u64(folded.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verified(user_id: &str, valid_until: u64) -> Arc<Verified> {
        verified_during(user_id, Validity::between(0, valid_until))
    }

    fn verified_during(user_id: &str, validity: Validity) -> Arc<Verified> {
        Arc::new(Verified {
            user_id: user_id.to_owned(),
            organization: None,
            actor: None,
            roles: Roles::full_access(),
            validity,
            jti: None,
            issued_at: Timestamp::from_secs(0),
        })
    }

    #[test]
    fn the_cache_stays_within_its_bound_and_keeps_serving_new_tokens() {
        let cache = VerifiedCache::default();
        let tokens: Vec<String> = (0..MAX_CACHED_TOKENS + 500)
            .map(|i| format!("token-{i:040}"))
            .collect();
        for token in &tokens {
            cache.insert(token, verified(token, 100));
            assert_eq!(cache.count.load(Relaxed), cache.len());
        }
        assert_eq!(cache.len(), MAX_CACHED_TOKENS);
        let newest = tokens.last().unwrap();
        assert_eq!(cache.get(newest.as_bytes(), 50).unwrap().user_id, *newest);
    }

    #[test]
    fn an_expired_entry_leaves_the_cache_and_its_count() {
        let cache = VerifiedCache::default();
        let token = format!("token-{:040}", 1);
        cache.insert(&token, verified("u1", 100));
        assert!(cache.get(token.as_bytes(), 100).is_some());
        assert!(cache.get(token.as_bytes(), 101).is_none());
        assert_eq!((cache.len(), cache.count.load(Relaxed)), (0, 0));
    }

    #[test]
    fn a_thread_met_token_is_served_only_by_its_own_cache_and_within_its_interval() {
        let cache = VerifiedCache::default();
        let other = VerifiedCache::default();
        let token = format!("token-{:040}", 3);
        cache.insert(&token, verified("u1", 100));
        // Four times: kept at the third, copied at the fourth.
        for _ in 0..4 {
            assert_eq!(cache.get(token.as_bytes(), 50).unwrap().user_id, "u1");
        }
        assert!(
            other.get(token.as_bytes(), 50).is_none(),
            "another cache's keys never verified it"
        );
        let same_tail = format!("other-{}", &token[6..]);
        assert!(cache.get(same_tail.as_bytes(), 50).is_none());
        assert!(cache.get(token.as_bytes(), 101).is_none());
    }

    #[test]
    fn an_entry_is_served_only_within_its_interval() {
        let cache = VerifiedCache::default();
        let token = format!("token-{:040}", 2);
        cache.insert(&token, verified_during("u1", Validity::between(50, 100)));
        assert!(cache.get(token.as_bytes(), 50).is_some());
        // A clock set back: the token is verified again, not taken from the cache.
        assert!(cache.get(token.as_bytes(), 49).is_none());
        assert_eq!((cache.len(), cache.count.load(Relaxed)), (0, 0));
    }
}
