//! The checks behind an impersonation credential: token lookup, user resolution, policy, scope.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use http::{HeaderName, header::AUTHORIZATION, request::Parts};
use uuid::Uuid;

use crate::{
    credential::Credential,
    directory::{Member, UserDirectory},
    impersonated::{Actor, CredentialSource, ImpersonatedUser},
    jwt::JwtKeys,
    policy::{AccessPolicy, ImpersonationPolicy, RequestHead},
    rejection::{Rejection, RejectionKind},
    role::Roles,
    store::TokenStore,
    time::Timestamp,
    token::TokenDigest,
};

/// What an authorization hands back: the request head (user header removed) and the verdict.
pub(crate) type Authorized = (Parts, Result<ImpersonatedUser, Rejection>);

/// The boxed check; boxing happens only for requests that carry an impersonation credential.
pub(crate) type AuthorizeFuture = Pin<Box<dyn Future<Output = Authorized> + Send>>;

/// The checks, with their configuration types erased so the service stays `Impersonation<S>`.
pub(crate) trait Authorize: Send + Sync + 'static {
    fn authorize(self: Arc<Self>, credential: Credential, parts: Parts) -> AuthorizeFuture;
}

/// How often a token's last use is written back to the store, at most.
const USE_RECORDING_INTERVAL: Duration = Duration::from_secs(60);

pub(crate) const INVALID_TOKEN: Rejection = Rejection::new(
    RejectionKind::InvalidToken,
    "the impersonation token is malformed, unknown, expired or revoked",
);
pub(crate) const USER_NOT_ALLOWED: Rejection = Rejection::new(
    RejectionKind::AccessDenied,
    "this credential cannot act as the named user",
);
const INSUFFICIENT_SCOPE: Rejection = Rejection::new(
    RejectionKind::InsufficientScope,
    "the token's roles do not allow this request",
);
pub(crate) const UNAVAILABLE: Rejection = Rejection::new(
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
    pub(crate) user_header: HeaderName,
    pub(crate) strip_authorization: bool,
}

impl<St, D, A, P> Authorize for Checks<St, D, A, P>
where
    St: TokenStore,
    D: UserDirectory,
    A: AccessPolicy,
    P: ImpersonationPolicy,
{
    fn authorize(self: Arc<Self>, credential: Credential, mut parts: Parts) -> AuthorizeFuture {
        Box::pin(async move {
            let verdict = self.check(credential, &parts).await;
            match &verdict {
                Ok(user) => {
                    audit_accepted(user, &parts);
                    self.clean(&mut parts);
                }
                Err(rejection) => audit_refused(rejection, &parts),
            }
            (parts, verdict)
        })
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
        credential: Credential,
        parts: &Parts,
    ) -> Result<ImpersonatedUser, Rejection> {
        match credential {
            Credential::Opaque {
                secret,
                user,
                source,
            } => self.check_opaque(secret, &user, source, parts).await,
            Credential::Jwt(token) => self.check_jwt(&token, parts).await,
            Credential::Absent => Err(INVALID_TOKEN),
        }
    }

    async fn check_jwt(&self, token: &str, parts: &Parts) -> Result<ImpersonatedUser, Rejection> {
        // JWTs are only recognised when keys are configured.
        let keys = self.jwt.as_ref().ok_or(INVALID_TOKEN)?;
        let claims = keys.verify(token).map_err(|_| INVALID_TOKEN)?;
        let roles = match &claims.roles {
            Some(roles) => Roles::parse(roles).map_err(|_| INVALID_TOKEN)?,
            None => Roles::full_access(),
        };
        self.check_scope(&roles, parts)?;
        let found = self
            .directory
            .user_by_id(&claims.user_id)
            .await
            .map_err(|error| unavailable("user directory", &error))?
            .ok_or(INVALID_TOKEN)?;
        let admin = match &claims.org {
            Some(org) => found.membership(org).ok_or(INVALID_TOKEN)?.admin,
            None => found.memberships.iter().any(|m| m.admin),
        };
        let actor = match claims.act {
            Some(act) => Actor::Admin {
                user_id: act.sub.into(),
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
        let organization = claims.org.map(Arc::from);
        let source = CredentialSource::Jwt;
        Ok(ImpersonatedUser::new(
            member.user,
            organization,
            actor,
            roles,
            source,
        ))
    }

    fn check_scope(&self, roles: &Roles, parts: &Parts) -> Result<(), Rejection> {
        let head = RequestHead {
            method: &parts.method,
            uri: &parts.uri,
            headers: &parts.headers,
        };
        let required = self.access.required(&head);
        if roles.allow(required.access, required.resource) {
            Ok(())
        } else {
            Err(INSUFFICIENT_SCOPE)
        }
    }

    async fn check_opaque(
        &self,
        secret: Uuid,
        who: &str,
        source: CredentialSource,
        parts: &Parts,
    ) -> Result<ImpersonatedUser, Rejection> {
        let now = Timestamp::now();
        let record = self
            .store
            .lookup(&TokenDigest::of(&secret))
            .await
            .map_err(|error| unavailable("token store", &error))?
            .filter(|record| !record.is_expired(now))
            .ok_or(INVALID_TOKEN)?;
        self.check_scope(&record.roles, parts)?;
        let member = self
            .directory
            .resolve(&record.organization, who)
            .await
            .map_err(|error| unavailable("user directory", &error))?
            .ok_or(USER_NOT_ALLOWED)?;
        let actor = Actor::Token(Arc::clone(&record));
        if !self.policy.may_impersonate(&actor, &member) {
            return Err(USER_NOT_ALLOWED);
        }
        self.note_use(record.id, record.last_used, now).await;
        let organization = Some(Arc::clone(&record.organization));
        let roles = record.roles.clone();
        Ok(ImpersonatedUser::new(
            member.user,
            organization,
            actor,
            roles,
            source,
        ))
    }

    /// Writes the last use back at most once a minute, so listing stays current without a store
    /// write per request. A failure here does not fail the request.
    async fn note_use(&self, id: Uuid, last_used: Option<Timestamp>, now: Timestamp) {
        let stale = last_used.is_none_or(|at| at.plus(USE_RECORDING_INTERVAL) <= now);
        if stale && let Err(error) = self.store.record_use(id, now).await {
            tracing::warn!(target: "tower_impersonation", %error, "could not record token use");
        }
    }

    fn clean(&self, parts: &mut Parts) {
        parts.headers.remove(&self.user_header);
        if self.strip_authorization {
            parts.headers.remove(AUTHORIZATION);
        }
    }
}

pub(crate) fn unavailable(what: &str, error: &dyn std::error::Error) -> Rejection {
    tracing::error!(target: "tower_impersonation", %error, "{what} failed; refusing impersonation");
    UNAVAILABLE
}

fn audit_accepted(user: &ImpersonatedUser, parts: &Parts) {
    tracing::info!(
        target: "tower_impersonation::audit",
        outcome = "accepted",
        actor = user.actor().user_id(),
        user = %user.user().id,
        organization = user.organization(),
        token_id = user.actor().token_id().map(tracing::field::display),
        source = ?user.source(),
        method = %parts.method,
        path = parts.uri.path(),
    );
}

fn audit_refused(rejection: &Rejection, parts: &Parts) {
    tracing::warn!(
        target: "tower_impersonation::audit",
        outcome = "refused",
        reason = rejection.error_code(),
        status = rejection.status().as_u16(),
        method = %parts.method,
        path = parts.uri.path(),
    );
}
