//! Why the layer refused a request, and how that is told to HTTP and gRPC clients.

use std::fmt;

use http::{
    HeaderValue, Response, StatusCode,
    header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE},
};

use crate::body::ResponseBody;

/// A refused request. The layer puts it in the response's extensions, so outer layers can see why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejection {
    kind: RejectionKind,
    description: &'static str,
    reason: Option<&'static str>,
}

/// The classes of refusal, each with its own status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectionKind {
    /// 400 `invalid_request`: the credential is ambiguous or incomplete.
    InvalidRequest,
    /// 401 `invalid_token`: unknown, malformed, expired or revoked credential.
    InvalidToken,
    /// 401: an impersonation credential is required and none was given.
    CredentialRequired,
    /// 403 `access_denied`: the user cannot be acted as, or a user header came without a credential.
    AccessDenied,
    /// 403 `insufficient_scope`: the token's roles do not allow this request.
    InsufficientScope,
    /// 503 `temporarily_unavailable`: the token store or directory could not answer.
    Unavailable,
}

impl Rejection {
    pub(crate) const fn new(kind: RejectionKind, description: &'static str) -> Self {
        Self {
            kind,
            description,
            reason: None,
        }
    }

    /// The same answer to the client, with a reason of its own for the audit trail.
    pub(crate) const fn because(self, reason: &'static str) -> Self {
        Self {
            reason: Some(reason),
            ..self
        }
    }

    /// The class of refusal.
    pub fn kind(&self) -> RejectionKind {
        self.kind
    }

    /// The sentence sent to the client.
    pub fn description(&self) -> &'static str {
        self.description
    }

    /// Why the request was refused, for the audit trail: the [error code](Self::error_code),
    /// or a finer reason that the client is not told, such as `actor_not_admin` (the admin
    /// behind the credential no longer administers its organization), `user_not_allowed` (a
    /// member outside a narrowed token's users) or `protected_route` (a request never made
    /// while impersonating).
    pub fn reason(&self) -> &'static str {
        match self.reason {
            Some(reason) => reason,
            None => self.error_code(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self.kind {
            RejectionKind::InvalidRequest => StatusCode::BAD_REQUEST,
            RejectionKind::InvalidToken | RejectionKind::CredentialRequired => {
                StatusCode::UNAUTHORIZED
            }
            RejectionKind::AccessDenied | RejectionKind::InsufficientScope => StatusCode::FORBIDDEN,
            RejectionKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The OAuth-style error code of the JSON body.
    pub fn error_code(&self) -> &'static str {
        match self.kind {
            RejectionKind::InvalidRequest => "invalid_request",
            RejectionKind::InvalidToken => "invalid_token",
            RejectionKind::CredentialRequired => "unauthorized",
            RejectionKind::AccessDenied => "access_denied",
            RejectionKind::InsufficientScope => "insufficient_scope",
            RejectionKind::Unavailable => "temporarily_unavailable",
        }
    }

    /// The gRPC status code: 3 `INVALID_ARGUMENT`, 16 `UNAUTHENTICATED`, 7 `PERMISSION_DENIED` or
    /// 14 `UNAVAILABLE`.
    pub fn grpc_code(&self) -> u8 {
        match self.status() {
            StatusCode::BAD_REQUEST => 3,
            StatusCode::UNAUTHORIZED => 16,
            StatusCode::FORBIDDEN => 7,
            _ => 14,
        }
    }

    fn www_authenticate(&self) -> Option<&'static str> {
        match self.kind {
            RejectionKind::InvalidToken => Some(r#"Bearer error="invalid_token""#),
            RejectionKind::InsufficientScope => Some(r#"Bearer error="insufficient_scope""#),
            RejectionKind::CredentialRequired => Some("Bearer"),
            _ => None,
        }
    }

    /// The response for an HTTP client: a short JSON body.
    pub(crate) fn into_http_response<B>(self) -> Response<ResponseBody<B>> {
        let body = ErrorBody {
            error: self.error_code(),
            error_description: self.description,
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = Response::new(ResponseBody::rejection(json.into_boxed_slice()));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(challenge) = self.www_authenticate() {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        if self.kind == RejectionKind::Unavailable {
            headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response.extensions_mut().insert(self);
        response
    }

    /// The response for a gRPC client: HTTP 200, trailers-only, with `grpc-status` and
    /// `grpc-message`.
    pub(crate) fn into_grpc_response<B>(self) -> Response<ResponseBody<B>> {
        let mut response = Response::new(ResponseBody::rejection(Box::default()));
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert(
            "grpc-status",
            HeaderValue::from(u16::from(self.grpc_code())),
        );
        // Descriptions are plain ASCII without '%', which gRPC sends as they are.
        headers.insert("grpc-message", HeaderValue::from_static(self.description));
        response.extensions_mut().insert(self);
        response
    }
}

/// The JSON body of a rejection; a struct rather than a `json!` map, as rejections of guessed
/// tokens should stay cheap.
#[derive(serde::Serialize)]
struct ErrorBody {
    error: &'static str,
    error_description: &'static str,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_code(), self.description)
    }
}

impl std::error::Error for Rejection {}
