//! The checks behind an impersonation credential: token lookup, user resolution, policy, scope.
//!
//! Each check runs at once when the store and directory can answer without waiting (memory, a
//! cache hit): no allocation beyond the extension, no boxed future. Otherwise it runs as one boxed
//! future. An opaque token's checks are in `token.rs`, a JWT's in `jwt.rs`; what both share, the
//! admin and scope checks, is here.

mod jwt;
mod token;

use std::{future::Future, pin::Pin, sync::Arc};

use http::{HeaderMap, HeaderName, header::AUTHORIZATION, request::Parts};

use crate::{
    audit::{AuditEvent, AuditOutcome, AuditSink},
    credential::{Credential, OwnedCredential},
    directory::{DirectoryError, UserDirectory},
    impersonated::ImpersonatedUser,
    jwt::JwtKeys,
    policy::{AccessPolicy, ImpersonationPolicy, ProtectedRoutes, RequestHead},
    rejection::{Rejection, RejectionKind},
    role::Roles,
    store::TokenStore,
    time::Timestamp,
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

    /// Removes what must not reach the inner service of a request accepted as `user`.
    fn clean(&self, headers: &mut HeaderMap, user: &ImpersonatedUser);

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
        match credential {
            Credential::Opaque {
                secret,
                user,
                source,
            } => self.token_now(credential, secret, user, source, head),
            Credential::Jwt(token) => match self.verified(token, Timestamp::now_coarse()) {
                Ok(claims) => self.jwt_now(claims, head),
                Err(rejection) => CheckedNow::Decided(Err(rejection)),
            },
            // Reading the credential checked the claims' times: no clock to read again.
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
            if let Ok(user) = &verdict {
                self.clean(&mut parts.headers, user);
            }
            (parts, verdict)
        })
    }

    fn clean(&self, headers: &mut HeaderMap, user: &ImpersonatedUser) {
        // Reading the credential refused a user header anywhere else, and more than one.
        if user.source().has_user_header() {
            headers.remove(&self.user_header);
        }
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
            } => self.token(secret, &user, source, &head).await,
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
