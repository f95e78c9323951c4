//! [`TokenService`]: create, list and delete Guru-style workspace impersonation tokens.

mod request;
mod response;

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, request::Parts};
use http_body::Body;
use http_body_util::Full;
use tower_service::Service;
use uuid::Uuid;

use self::{
    request::CreateRequest,
    response::{Created, Listed},
};
use super::{
    DEFAULT_BODY_LIMIT,
    caller::Caller,
    detached::run_to_end,
    members::{Members, Unresolved},
    reply::{
        NOT_ADMIN, Refusal, ServiceFuture, UNAVAILABLE, caller, empty, error_json,
        error_with_message, json, method_not_allowed, read_body,
    },
    router::{MountPath, Resource, resource},
};
use crate::{
    audit::{Audit, AuditEvent, AuditOutcome, AuditSink},
    directory::UserDirectory,
    error::ConfigError,
    record::TokenRecord,
    store::{StoreError, TokenStore},
    time::Timestamp,
    token::TokenPrefix,
};

/// Most tokens one organization may hold unless configured otherwise.
pub const DEFAULT_MAX_TOKENS_PER_ORGANIZATION: usize = 1000;

/// Issues, lists and revokes Guru-style workspace impersonation tokens for organization admins:
///
/// - `POST {base}`: `{"name"?, "roles"?, "expiresAt"?, "users"?}` → 200 `{"id", "name", "token",
///   "roles", "users"?}`, the only time the whole token is shown. `users` narrows the token to
///   some members, named by id, email or name and resolved through the directory when the token
///   is created (answered as their ids); a name that is not a member of the caller's organization
///   answers 422 with its position, and nothing is stored. Without it the token may act as any
///   member.
/// - `GET {base}`: the caller's organization's tokens, masked.
/// - `DELETE {base}/{id}`: 204, and the token stops working at once.
///
/// Mounted with a router that strips its path (axum's `nest_service`), the service answers
/// `POST /`, `GET /` and `DELETE /{id}` below that path, wherever it is. Handed whole paths
/// (axum's `route_service`, a gateway's own routing), it answers below `base`:
/// `/api/v1/api-tokens/impersonation` unless [`base_path`](Self::base_path) says otherwise. See
/// [the module](super) for an example.
///
/// Each token created or revoked is told to the service's [`Audit`] (by default
/// [`TracingAudit`](crate::TracingAudit)).
///
/// Once started, a request runs to its end even if the client goes away and the server drops
/// the response future: on a tokio runtime it is a task of its own, so every change the store
/// confirms is audited. Elsewhere dropping the future drops the request's work.
#[derive(Debug)]
pub struct TokenService<St> {
    store: Arc<St>,
    members: Members,
    config: Arc<Config>,
    audit: AuditSink,
}

#[derive(Clone, Debug)]
struct Config {
    prefix: TokenPrefix,
    base_path: MountPath,
    body_limit: usize,
    max_tokens: usize,
}

impl<St> Clone for TokenService<St> {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
            members: self.members.clone(),
            config: Arc::clone(&self.config),
            audit: self.audit.clone(),
        }
    }
}

impl<St: TokenStore> TokenService<St> {
    /// The service over `store`, resolving the members a token is narrowed to through
    /// `directory` (give it the layer's), with the defaults.
    pub fn new(store: St, directory: impl UserDirectory) -> Self {
        Self {
            store: Arc::new(store),
            members: Members::new(directory),
            config: Arc::new(Config {
                prefix: TokenPrefix::default(),
                base_path: MountPath::default_for("/api/v1/api-tokens/impersonation"),
                body_limit: DEFAULT_BODY_LIMIT,
                max_tokens: DEFAULT_MAX_TOKENS_PER_ORGANIZATION,
            }),
            audit: AuditSink::default(),
        }
    }

    /// Where each token created or revoked is told (default
    /// [`TracingAudit`](crate::TracingAudit)); give the layer's [`Audit`] here too, shared as an
    /// `Arc<dyn Audit>`, for one audit trail.
    #[must_use]
    pub fn audit(mut self, audit: impl Audit) -> Self {
        self.audit = AuditSink::new(audit);
        self
    }

    /// The prefix of new tokens (default `GINT:IMP:`); keep it equal to the layer's.
    pub fn token_prefix(mut self, prefix: &str) -> Result<Self, ConfigError> {
        Arc::make_mut(&mut self.config).prefix = TokenPrefix::new(prefix)?;
        Ok(self)
    }

    /// Where the service is mounted, for routers that hand it whole paths (default
    /// `/api/v1/api-tokens/impersonation`); a router that strips the path needs none.
    pub fn base_path(mut self, path: &str) -> Result<Self, ConfigError> {
        Arc::make_mut(&mut self.config).base_path = MountPath::new(path)?;
        Ok(self)
    }

    /// Largest request body read (default 16 KiB); larger ones answer 413.
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        Arc::make_mut(&mut self.config).body_limit = bytes;
        self
    }

    /// Most tokens one organization may hold (default 1000); past it, creation answers 409. The
    /// store counts and stores in one atomic step, so creates racing each other never pass it.
    #[must_use]
    pub fn max_tokens_per_organization(mut self, max: usize) -> Self {
        Arc::make_mut(&mut self.config).max_tokens = max;
        self
    }
}

/// Which operation a request asks for.
enum Route {
    Create,
    List,
    Delete(String),
    WrongMethod(&'static str),
    NotFound,
}

impl Config {
    /// The operation `path` asks for, whether it is the full path under the mount path or the
    /// path a router nesting the service leaves (`/` or `/{id}`, where only a UUID is an id).
    fn route(&self, method: &Method, path: &str) -> Route {
        let below = self.base_path.below(path);
        match resource(below.rest, "") {
            Some(Resource::Collection) => match *method {
                Method::POST => Route::Create,
                Method::GET => Route::List,
                _ => Route::WrongMethod("GET, POST"),
            },
            Some(Resource::Item(id)) if names_a_token(id, below.nested) => match *method {
                Method::DELETE => Route::Delete(id.to_owned()),
                _ => Route::WrongMethod("DELETE"),
            },
            _ => Route::NotFound,
        }
    }
}

impl<St, B> Service<Request<B>> for TokenService<St>
where
    St: TokenStore,
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
        let work = async move { service.handle(request).await };
        Box::pin(async move { Ok(run_to_end(work, || error_json(UNAVAILABLE)).await) })
    }
}

impl<St: TokenStore> TokenService<St> {
    async fn handle<B>(&self, request: Request<B>) -> Response<Full<Bytes>>
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let route = self.config.route(request.method(), request.uri().path());
        let caller = match caller(&request) {
            Ok(caller) if caller.admin => caller,
            Ok(_) => return error_json(NOT_ADMIN),
            Err(refusal) => return error_json(refusal),
        };
        let (parts, body) = request.into_parts();
        match route {
            Route::Create => match read_body(body, self.config.body_limit).await {
                Ok(body) => self.create(&caller, &body, &parts).await,
                Err(refusal) => error_json(refusal),
            },
            Route::List => self.list(&caller).await,
            Route::Delete(id) => self.delete(&caller, &id, &parts).await,
            Route::WrongMethod(allow) => method_not_allowed(allow),
            Route::NotFound => error_json(Refusal::new(StatusCode::NOT_FOUND, "no such endpoint")),
        }
    }

    async fn create(&self, caller: &Caller, body: &[u8], parts: &Parts) -> Response<Full<Bytes>> {
        let request = match CreateRequest::parse(body) {
            Ok(request) => request,
            Err(message) => return error_with_message(StatusCode::BAD_REQUEST, &message),
        };
        let (secret, mut record) = TokenRecord::issue(
            &self.config.prefix,
            Arc::clone(&caller.organization),
            Arc::clone(&caller.user_id),
            request.roles,
        );
        record.name = request.name;
        record.expires_at = request.expires_at;
        if let Some(names) = &request.users {
            match self.members.resolve(&caller.organization, names).await {
                Ok(ids) => record.users = Some(ids),
                Err(unresolved) => return unresolved_users(unresolved),
            }
        }
        let created = Created::of(&record, secret.expose());
        let (id, organization) = (record.id, Arc::clone(&record.organization));
        match self.store.create(record, self.config.max_tokens).await {
            Ok(()) => {}
            Err(error @ StoreError::LimitReached { .. }) => {
                return error_with_message(StatusCode::CONFLICT, &error.to_string());
            }
            Err(error) => return store_failure(&error),
        }
        let outcome = AuditOutcome::TokenCreated {
            admin: &caller.user_id,
            organization: &organization,
            token_id: id,
        };
        self.audit.record(&AuditEvent::of(outcome, parts));
        json(StatusCode::OK, &created)
    }

    async fn list(&self, caller: &Caller) -> Response<Full<Bytes>> {
        let records = match self.store.list(&caller.organization).await {
            Ok(records) => records,
            Err(error) => return store_failure(&error),
        };
        let now = Timestamp::now();
        let prefix = self.config.prefix.as_str();
        let listed: Vec<Listed> = records
            .iter()
            .map(|record| Listed::of(record, prefix, now))
            .collect();
        json(StatusCode::OK, &listed)
    }

    async fn delete(&self, caller: &Caller, id: &str, parts: &Parts) -> Response<Full<Bytes>> {
        let Ok(id) = Uuid::try_parse(id) else {
            return error_with_message(StatusCode::BAD_REQUEST, "the token id must be a UUID");
        };
        match self.store.revoke(&caller.organization, id).await {
            Ok(true) => {
                let outcome = AuditOutcome::TokenRevoked {
                    admin: &caller.user_id,
                    organization: &caller.organization,
                    token_id: id,
                };
                self.audit.record(&AuditEvent::of(outcome, parts));
                empty(StatusCode::NO_CONTENT)
            }
            Ok(false) => error_with_message(StatusCode::NOT_FOUND, "no such token"),
            Err(error) => store_failure(&error),
        }
    }
}

/// Whether the segment after the collection names a token. Under the mount path any segment
/// does (a malformed id is then told 400); in a path a router left, only a UUID does, so that a
/// path the service was never meant for stays 404.
fn names_a_token(id: &str, nested: bool) -> bool {
    !nested || Uuid::try_parse(id).is_ok()
}

/// The answer to `users` that could not all be resolved.
fn unresolved_users(unresolved: Unresolved) -> Response<Full<Bytes>> {
    match unresolved {
        Unresolved::NotAMember(position) => error_with_message(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("users[{position}] is not a member of this organization"),
        ),
        Unresolved::Unavailable(error) => {
            tracing::error!(target: "tower_impersonation", %error, "user directory failed");
            error_json(UNAVAILABLE)
        }
    }
}

fn store_failure(error: &StoreError) -> Response<Full<Bytes>> {
    tracing::error!(target: "tower_impersonation", %error, "token store failed");
    error_json(UNAVAILABLE)
}
