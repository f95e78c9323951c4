//! [`OrganizationImpersonationService`]: an organization admin asks for a JWT to act as a member
//! (seed 000).

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header::CONTENT_TYPE};
use http_body::Body;
use http_body_util::Full;
use serde_json::{Value, json};
use tower_service::Service;
use uuid::Uuid;

use super::{
    DEFAULT_BODY_LIMIT,
    caller::Caller,
    reply::{NOT_ADMIN, Refusal, ServiceFuture, caller, mount_path, read_body, reply},
};
use crate::{
    directory::{Member, UserDirectory},
    error::ConfigError,
    jwt::{ActorClaim, ImpersonationClaims, JwtKeys},
    time::Timestamp,
};

const JSON_API: &str = "application/vnd.api+json";
const JSON_API_UTF8: &str = "application/vnd.api+json; charset=utf-8";
/// Longest `reason` accepted, in characters.
const MAX_REASON_CHARS: usize = 1000;

/// `POST {base}/{org}/impersonation` with a JSON:API document naming a member (`attributes.user`:
/// name, id, or key/relay email) and a `reason`; answers the seed's document holding a JWT that
/// acts as that member, signed by the [`JwtKeys`]' signing key: HS256 (the seed's) by default,
/// EdDSA or ES256 with such keys, whose public keys [`JwksService`](super::JwksService) publishes.
///
/// `base` is `/api/v2/organizations` unless configured otherwise. Every error is a JSON:API error
/// document.
pub struct OrganizationImpersonationService<D> {
    directory: Arc<D>,
    keys: JwtKeys,
    config: Arc<Config>,
}

#[derive(Clone, Debug)]
struct Config {
    base_path: String,
    body_limit: usize,
    require_reason: bool,
}

impl<D> Clone for OrganizationImpersonationService<D> {
    fn clone(&self) -> Self {
        Self {
            directory: Arc::clone(&self.directory),
            keys: self.keys.clone(),
            config: Arc::clone(&self.config),
        }
    }
}

impl<D> std::fmt::Debug for OrganizationImpersonationService<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrganizationImpersonationService")
            .field("keys", &self.keys)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<D: UserDirectory> OrganizationImpersonationService<D> {
    /// The service, minting tokens signed with `keys` for users found in `directory`.
    pub fn new(directory: D, keys: JwtKeys) -> Self {
        Self {
            directory: Arc::new(directory),
            keys,
            config: Arc::new(Config {
                base_path: "/api/v2/organizations".to_owned(),
                body_limit: DEFAULT_BODY_LIMIT,
                require_reason: false,
            }),
        }
    }

    /// Where the organizations live (default `/api/v2/organizations`).
    pub fn base_path(mut self, path: &str) -> Result<Self, ConfigError> {
        Arc::make_mut(&mut self.config).base_path = mount_path(path)?;
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

impl<D, B> Service<Request<B>> for OrganizationImpersonationService<D>
where
    D: UserDirectory,
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
        Box::pin(async move {
            Ok(match service.handle(request).await {
                Ok(response) => response,
                Err(error) => error.into_response(),
            })
        })
    }
}

/// A JSON:API error: status, message, and the member of the document at fault.
struct ApiError {
    status: StatusCode,
    detail: String,
    pointer: Option<&'static str>,
}

impl ApiError {
    fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            pointer: None,
        }
    }

    fn at(mut self, pointer: &'static str) -> Self {
        self.pointer = Some(pointer);
        self
    }

    fn into_response(self) -> Response<Full<Bytes>> {
        let mut error = json!({
            "status": self.status.as_str(),
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "detail": self.detail,
        });
        if let Some(pointer) = self.pointer {
            error["source"] = json!({ "pointer": pointer });
        }
        let body = json!({ "errors": [error] }).to_string();
        let mut response = reply(self.status, JSON_API_UTF8, body.into());
        if self.status == StatusCode::METHOD_NOT_ALLOWED {
            response
                .headers_mut()
                .insert(http::header::ALLOW, http::HeaderValue::from_static("POST"));
        }
        response
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        ApiError::new(refusal.status, refusal.message)
    }
}

/// A checked request document.
struct Ask {
    user: String,
    reason: Option<String>,
}

impl<D: UserDirectory> OrganizationImpersonationService<D> {
    async fn handle<B>(&self, request: Request<B>) -> Result<Response<Full<Bytes>>, ApiError>
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let organization = self.organization_in(request.uri().path())?;
        if request.method() != Method::POST {
            return Err(ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "use POST"));
        }
        let caller = caller(&request)?;
        if !caller.administers(&organization) {
            return Err(NOT_ADMIN.into());
        }
        check_content_type(&request)?;
        let body = read_body(request.into_body(), self.config.body_limit).await?;
        let ask = self.parse(&body)?;
        let member = self.find(&organization, &ask.user).await?;
        self.mint(&caller, &organization, &member, ask.reason.as_deref())
    }

    fn organization_in(&self, path: &str) -> Result<String, ApiError> {
        let not_found = || ApiError::new(StatusCode::NOT_FOUND, "no such endpoint");
        let rest = path
            .strip_prefix(self.config.base_path.as_str())
            .and_then(|rest| rest.strip_prefix('/'))
            .ok_or_else(not_found)?;
        match rest.split_once('/') {
            Some((org, "impersonation")) if !org.is_empty() => Ok(org.to_owned()),
            _ => Err(not_found()),
        }
    }

    fn parse(&self, body: &[u8]) -> Result<Ask, ApiError> {
        let document: Value = super::json::from_slice(body).map_err(|error| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("the body is not valid JSON: {error}"),
            )
        })?;
        let data = document
            .get("data")
            .filter(|data| data.is_object())
            .ok_or_else(|| {
                ApiError::new(StatusCode::BAD_REQUEST, "the document needs a data object")
                    .at("/data")
            })?;
        match data.get("type").and_then(Value::as_str) {
            Some("impersonation") => {}
            _ => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "data.type must be \"impersonation\"",
                )
                .at("/data/type"));
            }
        }
        let attributes = data.get("attributes");
        let text = |name: &str| attributes.and_then(|a| a.get(name));
        let user = match text("user") {
            Some(Value::String(user)) if !user.is_empty() && user.len() <= crate::MAX_USER_LEN => {
                user.clone()
            }
            _ => {
                return Err(unprocessable(
                    "attributes.user must name a member of the organization",
                )
                .at("/data/attributes/user"));
            }
        };
        let reason = match text("reason") {
            None | Some(Value::Null) => None,
            Some(Value::String(reason)) if reason.chars().count() <= MAX_REASON_CHARS => {
                Some(reason.clone())
            }
            Some(_) => {
                return Err(unprocessable(
                    "attributes.reason must be a string of at most 1000 characters",
                )
                .at("/data/attributes/reason"));
            }
        };
        let blank = reason.as_deref().is_none_or(|r| r.trim().is_empty());
        if self.config.require_reason && blank {
            return Err(
                unprocessable("attributes.reason is required").at("/data/attributes/reason")
            );
        }
        Ok(Ask { user, reason })
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

    fn mint(
        &self,
        caller: &Caller,
        organization: &str,
        member: &Member,
        reason: Option<&str>,
    ) -> Result<Response<Full<Bytes>>, ApiError> {
        let created_at = Timestamp::from_secs(Timestamp::now().as_secs());
        let expires_at = created_at.plus(self.keys.lifetime());
        let jti = Uuid::new_v4().to_string();
        let claims = ImpersonationClaims {
            user_id: member.user.id.clone(),
            exp: expires_at.as_secs(),
            iat: Some(created_at.as_secs()),
            jti: Some(jti.clone()),
            org: Some(organization.to_owned()),
            act: Some(ActorClaim {
                sub: caller.user_id.to_string(),
            }),
            roles: None,
        };
        let token = self.keys.sign(&claims).map_err(|error| {
            tracing::error!(target: "tower_impersonation", %error, "could not sign a JWT");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the token could not be signed; retry shortly",
            )
        })?;
        tracing::info!(
            target: "tower_impersonation::audit",
            outcome = "jwt_issued", admin = &*caller.user_id, user = %member.user.id,
            organization, reason, jti,
        );
        let document = json!({
            "data": {
                "id": member.user.id,
                "type": "impersonation",
                "attributes": {
                    "created_at": created_at.to_rfc3339_seconds(),
                    "json_web_token": token,
                    "updated_at": null,
                    "updated_in_db_at": null,
                }
            }
        });
        Ok(reply(
            StatusCode::OK,
            JSON_API_UTF8,
            document.to_string().into(),
        ))
    }
}

fn unprocessable(detail: &str) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
}

fn check_content_type<B>(request: &Request<B>) -> Result<(), ApiError> {
    let essence = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.split(';').next().unwrap_or_default().trim());
    match essence {
        Some(essence) if essence.eq_ignore_ascii_case(JSON_API) => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the document as Content-Type: application/vnd.api+json",
        )),
    }
}
