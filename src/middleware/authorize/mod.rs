//! The checks behind an impersonation credential: token lookup, user resolution, policy, scope.
//!
//! Each check runs at once when the store and directory can answer without waiting (memory, a
//! cache hit): no allocation beyond the extension, no boxed future. Otherwise it runs as one boxed
//! future.

use std::{future::Future, pin::Pin, sync::Arc};

use http::{HeaderMap, HeaderName, header::AUTHORIZATION, request::Parts};

use crate::{
    audit::{AuditEvent, AuditOutcome, AuditSink},
    credential::{Credential, OwnedCredential},
    directory::{DirectoryError, Member, UserDirectory, UserWithMemberships},
    impersonated::{Actor, CredentialSource, ImpersonatedUser},
    jwt::{JwtKeys, Verified},
    policy::{AccessPolicy, ImpersonationPolicy, ProtectedRoutes, RequestHead},
    record::TokenRecord,
    rejection::{Rejection, RejectionKind},
    role::Roles,
    store::{StoreError, TokenStore},
    time::Timestamp,
    token::TokenDigest,
};

/// What an authorization hands back: the request head (cleaned when accepted) and the verdict.
pub(crate) type Authorized = (Parts, Result<ImpersonatedUser, Rejection>);

/// The boxed check, for backends that have to wait.
pub(crate) type AuthorizeFuture = Pin<Box<dyn Future<Output = Authorized> + Send>>;

/// What the checks tell without waiting.
pub(crate) enum CheckedNow<'h> {
    /// Every backend answered at once: the verdict.
    Decided(Result<ImpersonatedUser, Rejection>),
    /// A backend has to be waited on: the credential for `authorize`, a JWT's as its verified
    /// claims once they are known, so the wait does not verify it again.
    Wait(Credential<'h>),
}

/// The checks, with their configuration types erased so the service stays `Impersonation<S>`.
pub(crate) trait Authorize: Send + Sync + 'static {
    /// The verdict, if every backend can answer without waiting; else the credential to
    /// `authorize`.
    fn check_now<'h>(&self, credential: Credential<'h>, head: &RequestHead<'_>) -> CheckedNow<'h>;

    /// The verdict, waiting on the backends.
    fn authorize(self: Arc<Self>, credential: OwnedCredential, parts: Parts) -> AuthorizeFuture;

    /// Removes what must not reach the inner service of an accepted request.
    fn clean(&self, headers: &mut HeaderMap);

    /// Tells the configured [`Audit`](crate::Audit) of a decision.
    fn audit(&self, event: &AuditEvent<'_>);
}

pub(crate) const INVALID_TOKEN: Rejection = Rejection::new(
    RejectionKind::InvalidToken,
    "the impersonation token is malformed, unknown, expired or revoked",
);
const USER_NOT_ALLOWED: Rejection = Rejection::new(
    RejectionKind::AccessDenied,
    "this credential cannot act as the named user",
);
/// A member outside a narrowed token's users: the same answer as an unknown member.
const NOT_IN_TOKEN_USERS: Rejection = USER_NOT_ALLOWED.because("user_not_allowed");
const INSUFFICIENT_SCOPE: Rejection = Rejection::new(
    RejectionKind::InsufficientScope,
    "the token's roles do not allow this request",
);
/// The answer to a credential whose admin no longer administers its organization: the same as
/// to any invalid credential, with a reason of its own for the audit trail.
const ACTOR_NOT_ADMIN: Rejection = INVALID_TOKEN.because("actor_not_admin");
const PROTECTED_ROUTE: Rejection = Rejection::new(
    RejectionKind::AccessDenied,
    "this request cannot be made while impersonating",
)
.because("protected_route");
const UNAVAILABLE: Rejection = Rejection::new(
    RejectionKind::Unavailable,
    "impersonation cannot be checked right now; retry shortly",
);

/// The configured checks.
pub(crate) struct Checks<St, D, A, P> {
    pub(crate) store: St,
    pub(crate) directory: D,
    pub(crate) access: A,
    pub(crate) policy: P,
    pub(crate) jwt: Option<JwtKeys>,
    pub(crate) protected: ProtectedRoutes,
    /// Whether the admin behind each credential must still administer its organization.
    pub(crate) check_actors: bool,
    pub(crate) user_header: HeaderName,
    pub(crate) strip_authorization: bool,
    pub(crate) audit: AuditSink,
}

impl<St, D, A, P> Authorize for Checks<St, D, A, P>
where
    St: TokenStore,
    D: UserDirectory,
    A: AccessPolicy,
    P: ImpersonationPolicy,
{
    fn check_now<'h>(&self, credential: Credential<'h>, head: &RequestHead<'_>) -> CheckedNow<'h> {
        let now = Timestamp::now_coarse();
        match credential {
            Credential::Opaque {
                secret,
                user,
                source,
            } => {
                let Some(found) = self.store.lookup_now(&TokenDigest::of(&secret)) else {
                    return CheckedNow::Wait(credential);
                };
                let record = match self.live(found, now) {
                    Ok(record) => record,
                    Err(rejection) => return CheckedNow::Decided(Err(rejection)),
                };
                let Some(actor) = self.actor_admin_now(&record.organization, &record.created_by)
                else {
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
            Credential::Jwt(token) => match self.verified(token, now) {
                Ok(claims) => self.jwt_now(claims, head),
                Err(rejection) => CheckedNow::Decided(Err(rejection)),
            },
            Credential::KnownJwt(claims) => self.jwt_now(claims, head),
            Credential::Absent => CheckedNow::Decided(Err(INVALID_TOKEN)),
        }
    }

    fn authorize(
        self: Arc<Self>,
        credential: OwnedCredential,
        mut parts: Parts,
    ) -> AuthorizeFuture {
        Box::pin(async move {
            let verdict = self.check(credential, &parts).await;
            let outcome = match &verdict {
                Ok(user) => AuditOutcome::Accepted(user),
                Err(rejection) => AuditOutcome::Refused(rejection),
            };
            self.audit(&AuditEvent::of(outcome, &parts));
            if verdict.is_ok() {
                self.clean(&mut parts.headers);
            }
            (parts, verdict)
        })
    }

    fn clean(&self, headers: &mut HeaderMap) {
        headers.remove(&self.user_header);
        if self.strip_authorization {
            headers.remove(AUTHORIZATION);
        }
    }

    fn audit(&self, event: &AuditEvent<'_>) {
        self.audit.record(event);
    }
}

impl<St, D, A, P> Checks<St, D, A, P>
where
    St: TokenStore,
    D: UserDirectory,
    A: AccessPolicy,
    P: ImpersonationPolicy,
{
    async fn check(
        &self,
        credential: OwnedCredential,
        parts: &Parts,
    ) -> Result<ImpersonatedUser, Rejection> {
        let head = RequestHead {
            method: &parts.method,
            uri: &parts.uri,
            headers: &parts.headers,
        };
        match credential {
            OwnedCredential::Opaque {
                secret,
                user,
                source,
            } => {
                let now = Timestamp::now_coarse();
                let found = self.store.lookup(&TokenDigest::of(&secret)).await;
                let record = self.live(found, now)?;
                self.actor_admin(&record.organization, &record.created_by)
                    .await?;
                self.permits(&record.roles, &head)?;
                let member = self.directory.resolve(&record.organization, &user).await;
                let impersonated = self.admit(Arc::clone(&record), member, source)?;
                if record.last_used.note(now) && self.store.writes_back_uses() {
                    self.write_use(&record, now).await;
                }
                Ok(impersonated)
            }
            OwnedCredential::Jwt(token) => {
                let now = Timestamp::now_coarse();
                let claims = self.verified(&token, now)?;
                self.jwt(claims, now, &head).await
            }
            OwnedCredential::KnownJwt(claims) => {
                self.jwt(claims, Timestamp::now_coarse(), &head).await
            }
        }
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

    /// Whether `actor` still administers `organization`, if the directory can tell at once.
    fn actor_admin_now(&self, organization: &str, actor: &str) -> Option<Result<(), Rejection>> {
        if !self.check_actors {
            return Some(Ok(()));
        }
        self.directory
            .is_admin_now(organization, actor)
            .map(still_admin)
    }

    /// Whether `actor` still administers `organization`, waiting on the directory.
    async fn actor_admin(&self, organization: &str, actor: &str) -> Result<(), Rejection> {
        if !self.check_actors {
            return Ok(());
        }
        still_admin(self.directory.is_admin(organization, actor).await)
    }

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

    /// The JWT's claims, if it verifies. Reading the credential found it not verified before.
    fn verified(&self, token: &str, now: Timestamp) -> Result<Arc<Verified>, Rejection> {
        // JWTs are only recognised when keys are configured.
        let keys = self.jwt.as_ref().ok_or(INVALID_TOKEN)?;
        keys.verify_and_remember(token, now)
            .map_err(|_| INVALID_TOKEN)
    }

    /// The verdict on a JWT with these claims, if the store and the directory can tell at once.
    fn jwt_now<'h>(&self, claims: Arc<Verified>, head: &RequestHead<'_>) -> CheckedNow<'h> {
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
    async fn jwt(
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

    /// Whether a credential with `roles` may make this request: it is not a protected route,
    /// and the roles allow it.
    fn permits(&self, roles: &Roles, head: &RequestHead<'_>) -> Result<(), Rejection> {
        if self.protected.contains(head.method, head.uri.path()) {
            return Err(PROTECTED_ROUTE);
        }
        let required = self.access.required(head);
        if roles.allow(required.access, required.resource) {
            Ok(())
        } else {
            Err(INSUFFICIENT_SCOPE)
        }
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

/// The directory's answer on an admin, as the layer's verdict.
fn still_admin(answer: Result<bool, DirectoryError>) -> Result<(), Rejection> {
    match answer {
        Ok(true) => Ok(()),
        Ok(false) => Err(ACTOR_NOT_ADMIN),
        Err(error) => Err(unavailable("user directory", &error)),
    }
}

fn unavailable(what: &str, error: &dyn std::error::Error) -> Rejection {
    tracing::error!(target: "tower_impersonation", %error, "{what} failed; refusing impersonation");
    UNAVAILABLE
}
