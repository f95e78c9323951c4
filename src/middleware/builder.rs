//! Configuring an [`ImpersonationLayer`].

use std::sync::Arc;

use http::HeaderName;

use super::{authorize::Checks, layer::ImpersonationLayer};
use crate::{
    audit::{Audit, AuditSink},
    credential::CredentialFormat,
    directory::UserDirectory,
    error::ConfigError,
    jwt::JwtKeys,
    policy::{
        AccessPolicy, AnyMember, ImpersonationPolicy, PathPolicy, ProtectedRoute, ProtectedRoutes,
    },
    store::TokenStore,
    token::TokenPrefix,
};

/// The user header unless configured otherwise.
pub const DEFAULT_USER_HEADER: &str = "x-guru-userid";

/// Builds an [`ImpersonationLayer`]; start from [`ImpersonationLayer::builder`].
#[derive(Debug)]
#[must_use]
pub struct ImpersonationBuilder<St, D, A = PathPolicy, P = AnyMember> {
    store: St,
    directory: D,
    access: A,
    policy: P,
    prefix: TokenPrefix,
    user_header: HeaderName,
    require: bool,
    strip_authorization: bool,
    jwt: Option<JwtKeys>,
    protected: ProtectedRoutes,
    check_actors: bool,
    audit: AuditSink,
}

impl<St: TokenStore, D: UserDirectory> ImpersonationBuilder<St, D> {
    pub(super) fn new(store: St, directory: D) -> Self {
        Self {
            store,
            directory,
            access: PathPolicy::default(),
            policy: AnyMember,
            prefix: TokenPrefix::default(),
            user_header: HeaderName::from_static(DEFAULT_USER_HEADER),
            require: false,
            strip_authorization: false,
            jwt: None,
            protected: ProtectedRoutes::default(),
            check_actors: true,
            audit: AuditSink::default(),
        }
    }
}

impl<St, D, A, P> ImpersonationBuilder<St, D, A, P>
where
    St: TokenStore,
    D: UserDirectory,
    A: AccessPolicy,
    P: ImpersonationPolicy,
{
    /// The prefix that marks impersonation tokens (default `GINT:IMP:`).
    pub fn token_prefix(mut self, prefix: &str) -> Result<Self, ConfigError> {
        self.prefix = TokenPrefix::new(prefix)?;
        Ok(self)
    }

    /// The header naming the user to act as (default `X-Guru-UserID`, matched in any case).
    pub fn user_header(mut self, name: &str) -> Result<Self, ConfigError> {
        self.user_header = HeaderName::try_from(name)
            .map_err(|_| ConfigError::InvalidHeaderName(name.to_owned()))?;
        Ok(self)
    }

    /// Refuse (401) requests that carry no impersonation credential, instead of passing them on.
    pub fn require_impersonation(mut self, require: bool) -> Self {
        self.require = require;
        self
    }

    /// Remove the `Authorization` header from accepted requests, for gateways that forward them.
    pub fn strip_authorization(mut self, strip: bool) -> Self {
        self.strip_authorization = strip;
        self
    }

    /// Also accept impersonation JWTs (`Authorization: Bearer <jwt>`) verified with these keys.
    ///
    /// Every bearer credential shaped like a JWT is then taken as an impersonation JWT: an app whose
    /// own credentials are JWTs should mount the layer only where those are not used.
    pub fn jwt(mut self, keys: JwtKeys) -> Self {
        self.jwt = Some(keys);
        self
    }

    /// Never let an impersonation credential make `route`, whatever its roles: such a request is
    /// refused with 403 `access_denied`, saying it cannot be made while impersonating, and the
    /// audit event's reason is `protected_route`. The same request without impersonation is
    /// untouched. Typical routes are a password change, MFA enrolment and the token services.
    ///
    /// ```
    /// use tower_impersonation::{ImpersonationLayer, MemoryStore, StaticDirectory, policy::ProtectedRoute};
    ///
    /// let layer = ImpersonationLayer::builder(MemoryStore::new(), StaticDirectory::default())
    ///     .protect("POST /api/v1/account/password".parse()?)
    ///     .protect("* /api/v1/api-tokens/impersonation/*".parse()?)
    ///     .protect(ProtectedRoute::grpc("acme.Accounts/EnrolMfa")?)
    ///     .build();
    /// # let _ = layer;
    /// # Ok::<(), tower_impersonation::ConfigError>(())
    /// ```
    pub fn protect(mut self, route: ProtectedRoute) -> Self {
        self.protected.add(route);
        self
    }

    /// Credentials belong to their organization, not to the admin who made them: the layer does
    /// not check, on every request, that the admin behind a token (its creator) or a JWT (its
    /// `act` claim) still administers the credential's organization.
    ///
    /// This gives up the guarantee that a credential dies with its admin's role: a token made
    /// by an admin who has since been demoted or removed keeps acting as any member until it
    /// expires or is revoked. Without this setting such a request is refused with 401
    /// `invalid_token`, and the audit event's reason is `actor_not_admin`.
    pub fn organization_owned_credentials(mut self) -> Self {
        self.check_actors = false;
        self
    }

    /// Where each accepted or refused credential is reported (default
    /// [`TracingAudit`](crate::TracingAudit): a `tracing` event of target
    /// `tower_impersonation::audit`).
    pub fn audit(mut self, audit: impl Audit) -> Self {
        self.audit = AuditSink::new(audit);
        self
    }

    /// Which scope a request needs (default [`PathPolicy`] under `/api/v1`).
    pub fn access_policy<A2: AccessPolicy>(self, access: A2) -> ImpersonationBuilder<St, D, A2, P> {
        ImpersonationBuilder {
            access,
            store: self.store,
            directory: self.directory,
            policy: self.policy,
            prefix: self.prefix,
            user_header: self.user_header,
            require: self.require,
            strip_authorization: self.strip_authorization,
            jwt: self.jwt,
            protected: self.protected,
            check_actors: self.check_actors,
            audit: self.audit,
        }
    }

    /// Who may act as whom (default [`AnyMember`]).
    pub fn impersonation_policy<P2: ImpersonationPolicy>(
        self,
        policy: P2,
    ) -> ImpersonationBuilder<St, D, A, P2> {
        ImpersonationBuilder {
            policy,
            store: self.store,
            directory: self.directory,
            access: self.access,
            prefix: self.prefix,
            user_header: self.user_header,
            require: self.require,
            strip_authorization: self.strip_authorization,
            jwt: self.jwt,
            protected: self.protected,
            check_actors: self.check_actors,
            audit: self.audit,
        }
    }

    /// The finished layer.
    pub fn build(self) -> ImpersonationLayer {
        let format = CredentialFormat {
            prefix: self.prefix,
            user_header: self.user_header.clone(),
            jwt: self.jwt.clone(),
        };
        let checks = Checks {
            store: self.store,
            directory: self.directory,
            access: self.access,
            policy: self.policy,
            jwt: self.jwt,
            protected: self.protected,
            check_actors: self.check_actors,
            user_header: self.user_header,
            strip_authorization: self.strip_authorization,
            audit: self.audit,
        };
        ImpersonationLayer::from_parts(format, self.require, Arc::new(checks))
    }
}
