//! The checks of an impersonation JWT: its signature and times, its admin, its scope, its
//! revocation, and the user it names.

use std::sync::Arc;

use super::{ACTOR_NOT_ADMIN, CheckedNow, Checks, INVALID_TOKEN, USER_NOT_ALLOWED, unavailable};
use crate::{
    credential::Credential,
    directory::{DirectoryError, Member, UserDirectory, UserWithMemberships},
    impersonated::{Actor, ImpersonatedUser},
    jwt::Verified,
    policy::{AccessPolicy, ImpersonationPolicy, RequestHead},
    rejection::Rejection,
    store::TokenStore,
    time::Timestamp,
};

impl<St, D, A, P> Checks<St, D, A, P>
where
    St: TokenStore,
    D: UserDirectory,
    A: AccessPolicy,
    P: ImpersonationPolicy,
{
    /// Whether the admin a JWT names still administers its organization, if the directory can
    /// tell at once. A JWT naming no admin has no one to check; one naming an admin but no
    /// organization cannot be checked, and is refused.
    fn jwt_actor_now(&self, claims: &Verified) -> Option<Result<(), Rejection>> {
        match (&claims.actor, &claims.organization) {
            (None, _) => Some(Ok(())),
            (Some(actor), Some(organization)) => self.actor_admin_now(organization, actor),
            (Some(_), None) if self.check_actors => Some(Err(ACTOR_NOT_ADMIN)),
            (Some(_), None) => Some(Ok(())),
        }
    }

    /// [`Self::jwt_actor_now`], waiting on the directory.
    async fn jwt_actor(&self, claims: &Verified) -> Result<(), Rejection> {
        match (&claims.actor, &claims.organization) {
            (Some(actor), Some(organization)) => self.actor_admin(organization, actor).await,
            _ => self.jwt_actor_now(claims).unwrap_or(Ok(())),
        }
    }

    /// The JWT's claims, if it verifies. Reading the credential found it not verified before.
    pub(super) fn verified(&self, token: &str, now: Timestamp) -> Result<Arc<Verified>, Rejection> {
        // JWTs are only recognised when keys are configured.
        let keys = self.jwt.as_ref().ok_or(INVALID_TOKEN)?;
        keys.verify_and_remember(token, now)
            .map_err(|_| INVALID_TOKEN)
    }

    /// The verdict on a JWT with these claims, if the store and the directory can tell at once.
    pub(super) fn jwt_now<'h>(
        &self,
        claims: Arc<Verified>,
        head: &RequestHead<'_>,
    ) -> CheckedNow<'h> {
        match self.jwt_actor_now(&claims) {
            Some(Ok(())) => {}
            Some(Err(rejection)) => return CheckedNow::Decided(Err(rejection)),
            None => return CheckedNow::Wait(Credential::KnownJwt(claims)),
        }
        let claims = match self.in_scope(claims, head) {
            Ok(claims) => claims,
            Err(rejection) => return CheckedNow::Decided(Err(rejection)),
        };
        // Revocations the store cannot tell at once take the waiting path.
        match self.store.jwt_revoked_now(&claims.identity()) {
            Some(true) => return CheckedNow::Decided(Err(INVALID_TOKEN)),
            Some(false) => {}
            None => return CheckedNow::Wait(Credential::KnownJwt(claims)),
        }
        match self.directory.user_by_id_now(&claims.user_id) {
            Some(found) => CheckedNow::Decided(self.admit_jwt(claims, found)),
            None => CheckedNow::Wait(Credential::KnownJwt(claims)),
        }
    }

    /// The verdict on a JWT with these claims, waiting on the store and the directory.
    pub(super) async fn jwt(
        &self,
        claims: Arc<Verified>,
        now: Timestamp,
        head: &RequestHead<'_>,
    ) -> Result<ImpersonatedUser, Rejection> {
        self.jwt_actor(&claims).await?;
        let claims = self.in_scope(claims, head)?;
        self.not_revoked(&claims, now).await?;
        let found = self.directory.user_by_id(&claims.user_id).await;
        self.admit_jwt(claims, found)
    }

    /// The claims, if their roles allow the request.
    fn in_scope(
        &self,
        claims: Arc<Verified>,
        head: &RequestHead<'_>,
    ) -> Result<Arc<Verified>, Rejection> {
        self.permits(&claims.roles, head)?;
        Ok(claims)
    }

    /// Refuses a JWT the store has revoked; fails closed when the store cannot tell. Asks for
    /// the whole set of revocations only when the store cannot answer at once.
    async fn not_revoked(&self, claims: &Verified, now: Timestamp) -> Result<(), Rejection> {
        let identity = claims.identity();
        let revoked = match self.store.jwt_revoked_now(&identity) {
            Some(revoked) => revoked,
            None => self
                .store
                .jwt_revocations(now)
                .await
                .map_err(|error| unavailable("token store", &error))?
                .is_revoked(&identity),
        };
        if revoked {
            return Err(INVALID_TOKEN);
        }
        Ok(())
    }

    /// The user a verified JWT names, if it exists, belongs to the JWT's organization, and the
    /// policy allows it.
    fn admit_jwt(
        &self,
        claims: Arc<Verified>,
        found: Result<Option<UserWithMemberships>, DirectoryError>,
    ) -> Result<ImpersonatedUser, Rejection> {
        let found = found
            .map_err(|error| unavailable("user directory", &error))?
            .ok_or(INVALID_TOKEN)?;
        let admin = match &claims.organization {
            Some(org) => found.membership(org).ok_or(INVALID_TOKEN)?.admin,
            None => found.memberships.iter().any(|m| m.admin),
        };
        let actor = match &claims.actor {
            Some(user_id) => Actor::Admin {
                user_id: Arc::clone(user_id),
            },
            None => Actor::Unattributed,
        };
        let member = Member {
            user: found.user,
            admin,
        };
        if !self.policy.may_impersonate(&actor, &member) {
            return Err(USER_NOT_ALLOWED);
        }
        Ok(ImpersonatedUser::by_jwt(member.user, actor, claims))
    }
}
