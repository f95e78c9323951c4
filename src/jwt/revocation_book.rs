//! What a store keeps to end impersonation JWTs before their `exp`: the [`MintedJwt`] registry
//! and the [`JwtRevocations`] in force, each kept only until the JWTs it concerns would have
//! expired anyway, so both stay bounded.

use std::{collections::HashMap, sync::Arc};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::time::Timestamp;

/// An impersonation JWT as a store remembers it once minted: who, by whom, why and until when.
/// Never the JWT itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MintedJwt {
    /// The JWT's `jti`.
    pub jti: Uuid,
    /// The organization it acts in.
    pub organization: Arc<str>,
    /// The impersonated user's id.
    pub user_id: Arc<str>,
    /// The admin who minted it.
    pub actor: Arc<str>,
    /// Why, as the admin said.
    pub reason: String,
    /// When it was minted.
    pub issued_at: Timestamp,
    /// Its `exp`.
    pub expires_at: Timestamp,
}

/// The identity of a JWT presented to the layer, as far as revocations are concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JwtIdentity<'a> {
    /// Its `jti`, when it has one that is a UUID.
    pub jti: Option<Uuid>,
    /// Its `org` claim; bare JWTs (`user_id` and `exp` only) have none.
    pub organization: Option<&'a str>,
    /// Its `user_id` claim.
    pub user_id: &'a str,
    /// Its `iat`, or for a JWT without one, its `exp` less the configured lifetime.
    pub issued_at: Timestamp,
}

/// Every JWT of `user_id` in `organization` issued before `cutoff` is revoked; the revocation is
/// kept until `forget_at`, when every such JWT has expired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRevocation {
    /// The organization the JWTs act in.
    pub organization: Arc<str>,
    /// The impersonated user's id.
    pub user_id: Arc<str>,
    /// JWTs issued before this are revoked.
    pub cutoff: Timestamp,
    /// When the revocation can be forgotten: the cutoff plus the JWT lifetime.
    pub forget_at: Timestamp,
}

/// The cutoff of a user's revocation made at `now`: the start of the next second. A JWT's issue
/// time is in whole seconds, so one issued in the same second as the revocation, before or after
/// it, cannot be told apart and is ended too, even when the revocation falls in the second's
/// first millisecond or the clock has stepped back.
pub(crate) fn revocation_cutoff(now: Timestamp) -> Timestamp {
    Timestamp::from_secs(now.as_secs() + 1)
}

/// The JWT revocations in force: single JWTs by `jti`, and all of a user's JWTs issued before a
/// time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JwtRevocations {
    /// Revoked `jti`s, each with the expiry of its JWT.
    jtis: HashMap<Uuid, Timestamp>,
    /// Per user id, the revocations of the user's JWTs, one per organization.
    users: HashMap<Arc<str>, Vec<UserRevocation>>,
}

impl JwtRevocations {
    /// No revocation.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether nothing is revoked.
    pub fn is_empty(&self) -> bool {
        self.jtis.is_empty() && self.users.is_empty()
    }

    /// Revokes the JWT `jti`, which expires at `expires_at`.
    pub fn revoke_jti(&mut self, jti: Uuid, expires_at: Timestamp) {
        self.jtis.insert(jti, expires_at);
    }

    /// Revokes a user's JWTs issued before the revocation's cutoff, replacing an earlier
    /// revocation of the same user in the same organization.
    pub fn revoke_user(&mut self, revocation: UserRevocation) {
        let of_user = self
            .users
            .entry(Arc::clone(&revocation.user_id))
            .or_default();
        // An earlier cutoff arriving late (another instance's clock, a delayed write) never
        // spares JWTs a later one ended.
        match of_user
            .iter_mut()
            .find(|known| known.organization == revocation.organization)
        {
            Some(known) => {
                known.cutoff = known.cutoff.max(revocation.cutoff);
                known.forget_at = known.forget_at.max(revocation.forget_at);
            }
            None => of_user.push(revocation),
        }
    }

    /// Whether the JWT is revoked: by its `jti`, or as one of its user's issued before a cutoff.
    /// A JWT without an `org` claim acts in any of its user's organizations, so a revocation in
    /// any of them ends it.
    pub fn is_revoked(&self, jwt: &JwtIdentity<'_>) -> bool {
        if jwt.jti.is_some_and(|jti| self.jtis.contains_key(&jti)) {
            return true;
        }
        let Some(of_user) = self.users.get(jwt.user_id) else {
            return false;
        };
        of_user.iter().any(|revocation| {
            let in_organization = jwt
                .organization
                .is_none_or(|organization| *revocation.organization == *organization);
            in_organization && jwt.issued_at < revocation.cutoff
        })
    }

    /// Drops what concerns only JWTs expired by `now`.
    pub fn forget_expired(&mut self, now: Timestamp) {
        self.jtis.retain(|_, expires_at| *expires_at > now);
        self.users.retain(|_, of_user| {
            of_user.retain(|revocation| revocation.forget_at > now);
            !of_user.is_empty()
        });
    }

    /// The revoked `jti`s with their JWTs' expiry, for stores that write them out.
    pub fn jtis(&self) -> impl Iterator<Item = (Uuid, Timestamp)> + '_ {
        self.jtis
            .iter()
            .map(|(jti, expires_at)| (*jti, *expires_at))
    }

    /// The users' revocations, for stores that write them out.
    pub fn users(&self) -> impl Iterator<Item = &UserRevocation> {
        self.users.values().flatten()
    }
}

/// The minted JWTs and revocations of a store that keeps them in memory.
#[derive(Debug, Default)]
pub(crate) struct JwtBook {
    minted: HashMap<Uuid, MintedJwt>,
    revocations: JwtRevocations,
}

impl JwtBook {
    /// Remembers a minted JWT, forgetting what has expired meanwhile.
    pub(crate) fn record(&mut self, jwt: MintedJwt, now: Timestamp) {
        self.forget_expired(now);
        self.minted.insert(jwt.jti, jwt);
    }

    /// The organization's JWTs live at `now`, oldest first.
    pub(crate) fn live(&self, organization: &str, now: Timestamp) -> Vec<MintedJwt> {
        let mut live: Vec<MintedJwt> = self
            .minted
            .values()
            .filter(|jwt| *jwt.organization == *organization && self.is_live(jwt, now))
            .cloned()
            .collect();
        live.sort_by_key(|jwt| (jwt.issued_at, jwt.jti));
        live
    }

    /// Revokes the live JWT `jti` of `organization`; `false` when there is none.
    pub(crate) fn revoke(&mut self, organization: &str, jti: Uuid, now: Timestamp) -> bool {
        let Some(jwt) = self.minted.get(&jti) else {
            return false;
        };
        if *jwt.organization != *organization || !self.is_live(jwt, now) {
            return false;
        }
        let expires_at = jwt.expires_at;
        self.revocations.revoke_jti(jti, expires_at);
        true
    }

    pub(crate) fn revoke_user(&mut self, revocation: UserRevocation, now: Timestamp) {
        self.forget_expired(now);
        self.revocations.revoke_user(revocation);
    }

    pub(crate) fn revocations(&self) -> &JwtRevocations {
        &self.revocations
    }

    fn is_live(&self, jwt: &MintedJwt, now: Timestamp) -> bool {
        jwt.expires_at > now && !self.revocations.is_revoked(&jwt.identity())
    }

    fn forget_expired(&mut self, now: Timestamp) {
        self.minted.retain(|_, jwt| jwt.expires_at > now);
        self.revocations.forget_expired(now);
    }
}

impl MintedJwt {
    /// The minted JWT as the layer sees it when presented.
    pub fn identity(&self) -> JwtIdentity<'_> {
        JwtIdentity {
            jti: Some(self.jti),
            organization: Some(&self.organization),
            user_id: &self.user_id,
            issued_at: self.issued_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(jti: Option<Uuid>, organization: Option<&str>, issued_at: u64) -> JwtIdentity<'_> {
        JwtIdentity {
            jti,
            organization,
            user_id: "bob",
            issued_at: Timestamp::from_secs(issued_at),
        }
    }

    #[test]
    fn a_user_revocation_ends_earlier_jwts_of_its_organization_and_bare_ones() {
        let mut revocations = JwtRevocations::new();
        revocations.revoke_user(UserRevocation {
            organization: "acme".into(),
            user_id: "bob".into(),
            cutoff: Timestamp::from_secs(100),
            forget_at: Timestamp::from_secs(3700),
        });
        assert!(revocations.is_revoked(&identity(None, Some("acme"), 99)));
        assert!(
            revocations.is_revoked(&identity(None, None, 99)),
            "the bare form"
        );
        assert!(
            !revocations.is_revoked(&identity(None, Some("acme"), 100)),
            "minted after"
        );
        assert!(!revocations.is_revoked(&identity(None, Some("globex"), 99)));
        revocations.forget_expired(Timestamp::from_secs(3700));
        assert!(revocations.is_empty());
    }

    #[test]
    fn a_jti_revocation_ends_that_jwt_alone_until_it_expires() {
        let (jti, other) = (Uuid::new_v4(), Uuid::new_v4());
        let mut revocations = JwtRevocations::new();
        revocations.revoke_jti(jti, Timestamp::from_secs(50));
        assert!(revocations.is_revoked(&identity(Some(jti), Some("acme"), 10)));
        assert!(!revocations.is_revoked(&identity(Some(other), Some("acme"), 10)));
        revocations.forget_expired(Timestamp::from_secs(49));
        assert!(!revocations.is_empty());
        revocations.forget_expired(Timestamp::from_secs(50));
        assert!(revocations.is_empty());
    }

    /// Whether a JWT of Bob's issued at `issued_at` (whole seconds) is ended by a revocation of
    /// his JWTs made at `now`.
    fn ends(now: Timestamp, issued_at: u64) -> bool {
        let cutoff = revocation_cutoff(now);
        let mut revocations = JwtRevocations::new();
        revocations.revoke_user(UserRevocation {
            organization: "org".into(),
            user_id: "bob".into(),
            cutoff,
            forget_at: cutoff.plus(std::time::Duration::from_secs(3600)),
        });
        revocations.is_revoked(&JwtIdentity {
            jti: None,
            organization: Some("org"),
            user_id: "bob",
            issued_at: Timestamp::from_secs(issued_at),
        })
    }

    #[test]
    fn a_users_revocation_ends_the_jwts_of_its_second_and_spares_the_next() {
        for now in [13_000, 13_001, 13_999] {
            let now = Timestamp::from_millis(now);
            assert!(ends(now, 12), "{now:?}");
            assert!(ends(now, 13), "the same second, at {now:?}");
            assert!(!ends(now, 14), "the next second, at {now:?}");
        }
    }
}
