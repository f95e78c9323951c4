//! [`OrganizationImpersonationService`]: an organization admin asks for a JWT to act as a member
//! (the JSON:API impersonation endpoint).

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
};

mod body;
mod end;
mod jsonapi;
mod mint;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::Full;
use tower_service::Service;

use self::{
    body::{Ask, user_in_query},
    jsonapi::{ApiError, listing},
    mint::check_content_type,
};
use super::{
    DEFAULT_BODY_LIMIT,
    detached::run_to_end,
    reply::{NOT_ADMIN, ServiceFuture, UNAVAILABLE, caller, read_body},
    router::{MountPath, Resource, resource},
};
use crate::{
    audit::{Audit, AuditSink},
    directory::{Member, UserDirectory},
    error::ConfigError,
    jwt::JwtKeys,
    store::{StoreError, TokenStore},
    time::Timestamp,
};

/// Impersonation JWTs of an organization, minted, listed and ended by its admins through the
/// JSON:API impersonation endpoint:
///
/// - `POST {base}/{org}/impersonation` with a JSON:API document naming a member
///   (`attributes.user`: name, id, or key/relay email) and a `reason` answers a JSON:API
///   document holding a JWT that acts as that member (plus its `jti` and `expires_at`), signed
///   by the [`JwtKeys`]' signing key: HS256 by default, EdDSA or ES256 with such
///   keys, whose public keys [`JwksService`](super::JwksService) publishes. The store remembers
///   the JWT (never the JWT itself) until it expires.
/// - `GET {base}/{org}/impersonation`: the organization's live JWTs, a JSON:API collection with
///   each one's `jti`, user, actor, reason, `created_at` and `expires_at`; never a JWT.
/// - `DELETE {base}/{org}/impersonation/{jti}`: 204, and that JWT answers 401 from then on
///   (within the cache lifetime on other instances sharing the store); 404 for an unknown jti
///   or another organization's, 400 for one that is not a UUID.
/// - `DELETE {base}/{org}/impersonation?user={user}`: 204, and every JWT issued for that user
///   in `{org}` until now answers 401, those minted in the same second included. A bare JWT
///   (claims `user_id` and `exp` only) counts as issued at `exp` less the lifetime. JWTs minted
///   afterwards work.
///
/// Only an admin of `{org}`, never an impersonated caller, may call. Nested with a router that
/// strips its path (axum's `nest_service("/api/v2/organizations", ...)`), the service answers
/// `/{org}/impersonation[/{jti}]` below it. Handed whole paths, it answers below `base`:
/// `/api/v2/organizations` unless [`base_path`](Self::base_path) says otherwise.
///
/// Each JWT issued or ended is told to the service's [`Audit`] (by default
/// [`TracingAudit`](crate::TracingAudit)). Every error is a JSON:API error document; a store
/// that cannot answer is 503 with `Retry-After`.
///
/// Once started, a request runs to its end even if the client goes away and the server drops
/// the response future: on a tokio runtime it is a task of its own, so every change the store
/// confirms is audited. Elsewhere dropping the future drops the request's work.
pub struct OrganizationImpersonationService<D, St> {
    directory: Arc<D>,
    store: St,
    keys: JwtKeys,
    config: Arc<Config>,
    audit: AuditSink,
}

#[derive(Clone, Debug)]
struct Config {
    base_path: MountPath,
    body_limit: usize,
    require_reason: bool,
}

impl<D, St: Clone> Clone for OrganizationImpersonationService<D, St> {
    fn clone(&self) -> Self {
        Self {
            directory: Arc::clone(&self.directory),
            store: self.store.clone(),
            keys: self.keys.clone(),
            config: Arc::clone(&self.config),
            audit: self.audit.clone(),
        }
    }
}

impl<D, St> std::fmt::Debug for OrganizationImpersonationService<D, St> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrganizationImpersonationService")
            .field("keys", &self.keys)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<D: UserDirectory, St: TokenStore + Clone> OrganizationImpersonationService<D, St> {
    /// The service, minting tokens signed with `keys` for users found in `directory`, and
    /// keeping what it minted and revoked in `store` (the layer's store, so the layer sees the
    /// revocations).
    pub fn new(directory: D, keys: JwtKeys, store: St) -> Self {
        Self {
            directory: Arc::new(directory),
            store,
            keys,
            config: Arc::new(Config {
                base_path: MountPath::default_for("/api/v2/organizations"),
                body_limit: DEFAULT_BODY_LIMIT,
                require_reason: false,
            }),
            audit: AuditSink::default(),
        }
    }

    /// Where each JWT issued or ended is told (default [`TracingAudit`](crate::TracingAudit));
    /// give the layer's [`Audit`] here too, shared as an `Arc<dyn Audit>`, for one audit trail.
    #[must_use]
    pub fn audit(mut self, audit: impl Audit) -> Self {
        self.audit = AuditSink::new(audit);
        self
    }

    /// Where the organizations live, for routers that hand the service whole paths (default
    /// `/api/v2/organizations`); a router that strips the path needs none.
    pub fn base_path(mut self, path: &str) -> Result<Self, ConfigError> {
        Arc::make_mut(&mut self.config).base_path = MountPath::new(path)?;
        Ok(self)
    }

    /// Refuse (422) requests without a `reason`.
    #[must_use]
    pub fn require_reason(mut self, required: bool) -> Self {
        Arc::make_mut(&mut self.config).require_reason = required;
        self
    }

    /// Largest request body read (default 16 KiB); larger ones answer 413.
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        Arc::make_mut(&mut self.config).body_limit = bytes;
        self
    }
}

impl<D, St, B> Service<Request<B>> for OrganizationImpersonationService<D, St>
where
    D: UserDirectory,
    St: TokenStore + Clone,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = ServiceFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let service = self.clone();
        let work = async move {
            match service.handle(request).await {
                Ok(response) => response,
                Err(error) => error.into_response(),
            }
        };
        let failed = || ApiError::from(UNAVAILABLE).into_response();
        Box::pin(async move { Ok(run_to_end(work, failed).await) })
    }
}

impl<D: UserDirectory, St: TokenStore + Clone> OrganizationImpersonationService<D, St> {
    async fn handle<B>(&self, request: Request<B>) -> Result<Response<Full<Bytes>>, ApiError>
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (organization, jti) = self.route(request.uri().path())?;
        let method = request.method().clone();
        match (&method, &jti) {
            (&Method::POST | &Method::GET | &Method::DELETE, None) | (&Method::DELETE, Some(_)) => {
            }
            (_, None) => return Err(ApiError::not_allowed("GET, POST, DELETE")),
            (_, Some(_)) => return Err(ApiError::not_allowed("DELETE")),
        }
        let caller = caller(&request)?;
        if !caller.administers(&organization) {
            return Err(NOT_ADMIN.into());
        }
        let (parts, body) = request.into_parts();
        match (method, jti) {
            (Method::POST, _) => {
                check_content_type(&parts.headers)?;
                let body = read_body(body, self.config.body_limit).await?;
                let ask = Ask::parse(&body, self.config.require_reason)?;
                let member = self.find(&organization, &ask.user).await?;
                self.mint(
                    &caller,
                    &organization,
                    &member,
                    ask.reason.as_deref(),
                    &parts,
                )
                .await
            }
            (Method::GET, _) => self.list(&organization).await,
            (_, Some(jti)) => self.revoke(&caller, &organization, &jti, &parts).await,
            (_, None) => {
                let user = user_in_query(parts.uri.query())?;
                let member = self.find(&organization, &user).await?;
                self.revoke_user(&caller, &organization, &member, &parts)
                    .await
            }
        }
    }

    /// The organization and JWT id `path` names: `/{org}/impersonation[/{jti}]` below the mount
    /// path.
    fn route(&self, path: &str) -> Result<(String, Option<String>), ApiError> {
        let not_found = || ApiError::new(StatusCode::NOT_FOUND, "no such endpoint");
        let rest = self.config.base_path.below(path).rest;
        let (organization, rest) = rest
            .strip_prefix('/')
            .and_then(|rest| rest.split_once('/'))
            .filter(|(organization, _)| !organization.is_empty())
            .ok_or_else(not_found)?;
        match resource(rest, "impersonation") {
            Some(Resource::Collection) => Ok((organization.to_owned(), None)),
            Some(Resource::Item(jti)) => Ok((organization.to_owned(), Some(jti.to_owned()))),
            None => Err(not_found()),
        }
    }

    async fn list(&self, organization: &str) -> Result<Response<Full<Bytes>>, ApiError> {
        let live = self
            .store
            .list_jwts(organization, Timestamp::now())
            .await
            .map_err(store_failure)?;
        Ok(listing(&live))
    }

    async fn find(&self, organization: &str, who: &str) -> Result<Member, ApiError> {
        match self.directory.resolve(organization, who).await {
            Ok(Some(member)) => Ok(member),
            Ok(None) => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "no user by that name, id or email in this organization",
            )),
            Err(error) => {
                tracing::error!(target: "tower_impersonation", %error, "user directory failed");
                Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the user directory is unavailable; retry shortly",
                ))
            }
        }
    }
}

fn store_failure(error: StoreError) -> ApiError {
    tracing::error!(target: "tower_impersonation", %error, "token store failed");
    UNAVAILABLE.into()
}
