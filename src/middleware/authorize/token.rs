//! The checks of an opaque impersonation token: its record in the store, its admin, its scope,
//! the member it names, and the write-back of its use.

use std::sync::Arc;

use uuid::Uuid;

use super::{CheckedNow, Checks, INVALID_TOKEN, NOT_IN_TOKEN_USERS, USER_NOT_ALLOWED, unavailable};
use crate::{
    credential::Credential,
    directory::{DirectoryError, Member, UserDirectory},
    impersonated::{Actor, CredentialSource, ImpersonatedUser},
    policy::{AccessPolicy, ImpersonationPolicy, RequestHead},
    record::TokenRecord,
    rejection::Rejection,
    store::{StoreError, TokenStore},
    time::Timestamp,
    token::TokenDigest,
};

impl<St, D, A, P> Checks<St, D, A, P>
where
    St: TokenStore,
    D: UserDirectory,
    A: AccessPolicy,
    P: ImpersonationPolicy,
{
    /// The verdict on an opaque token naming `user`, if the store and the directory can tell at
    /// once; else `credential`, to wait on them.
    pub(super) fn token_now<'h>(
        &self,
        credential: Credential<'h>,
        secret: Uuid,
        user: &'h str,
        source: CredentialSource,
        head: &RequestHead<'_>,
    ) -> CheckedNow<'h> {
        let now = Timestamp::now_coarse();
        let Some(found) = self.store.lookup_now(&TokenDigest::of(&secret)) else {
            return CheckedNow::Wait(credential);
        };
        let record = match self.live(found, now) {
            Ok(record) => record,
            Err(rejection) => return CheckedNow::Decided(Err(rejection)),
        };
        let Some(actor) = self.actor_admin_now(&record.organization, &record.created_by) else {
            return CheckedNow::Wait(credential);
        };
        if let Err(rejection) = actor.and_then(|()| self.permits(&record.roles, head)) {
            return CheckedNow::Decided(Err(rejection));
        }
        let Some(member) = self.directory.resolve_now(&record.organization, user) else {
            return CheckedNow::Wait(credential);
        };
        // A use due to be written back takes the waiting path, which writes it.
        if self.store.writes_back_uses() && record.last_used.is_due(now) {
            return CheckedNow::Wait(credential);
        }
        record.last_used.record(now);
        CheckedNow::Decided(self.admit(record, member, source))
    }

    /// The verdict on an opaque token naming `user`, waiting on the store and the directory.
    pub(super) async fn token(
        &self,
        secret: Uuid,
        user: &str,
        source: CredentialSource,
        head: &RequestHead<'_>,
    ) -> Result<ImpersonatedUser, Rejection> {
        let now = Timestamp::now_coarse();
        let found = self.store.lookup(&TokenDigest::of(&secret)).await;
        let record = self.live(found, now)?;
        self.actor_admin(&record.organization, &record.created_by)
            .await?;
        self.permits(&record.roles, head)?;
        let member = self.directory.resolve(&record.organization, user).await;
        let impersonated = self.admit(Arc::clone(&record), member, source)?;
        if record.last_used.note(now) && self.store.writes_back_uses() {
            self.write_use(&record, now).await;
        }
        Ok(impersonated)
    }

    /// The token record, if it exists and has not expired.
    fn live(
        &self,
        found: Result<Option<Arc<TokenRecord>>, StoreError>,
        now: Timestamp,
    ) -> Result<Arc<TokenRecord>, Rejection> {
        found
            .map_err(|error| unavailable("token store", &error))?
            .filter(|record| !record.is_expired(now))
            .ok_or(INVALID_TOKEN)
    }

    /// The impersonated user, if the member exists and the policy lets the token act as them.
    fn admit(
        &self,
        record: Arc<TokenRecord>,
        found: Result<Option<Member>, DirectoryError>,
        source: CredentialSource,
    ) -> Result<ImpersonatedUser, Rejection> {
        let member = found
            .map_err(|error| unavailable("user directory", &error))?
            .ok_or(USER_NOT_ALLOWED)?;
        if !record.may_act_as(&member.user.id) {
            return Err(NOT_IN_TOKEN_USERS);
        }
        // The record moves into the actor and on into the user: its count, which every request
        // with this token bumps from whichever core it runs on, is not touched again.
        let actor = Actor::Token(record);
        if !self.policy.may_impersonate(&actor, &member) {
            return Err(USER_NOT_ALLOWED);
        }
        Ok(ImpersonatedUser::by_token(member.user, actor, source))
    }

    /// Tells the store of a use; [`LastUsed::note`](crate::LastUsed::note) makes that once a
    /// minute per token at most. A failure here does not fail the request, and leaves the use
    /// for the next flush.
    async fn write_use(&self, record: &TokenRecord, now: Timestamp) {
        if let Err(error) = self.store.record_use(record.id, now).await {
            record.last_used.release(now);
            tracing::warn!(target: "tower_impersonation", %error, "could not record token use");
        }
    }
}
