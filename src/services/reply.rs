//! What both services share: reading a bounded body, deciding who may call, writing JSON replies.

use std::{convert::Infallible, future::Future, pin::Pin};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body::Body;
use http_body_util::{BodyExt, Full, Limited};

use super::caller::Caller;
use crate::impersonated::ImpersonatedUser;

/// The future of a service call.
pub type ServiceFuture =
    Pin<Box<dyn Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send>>;

/// A refusal before a service's own work starts, in terms both reply formats can express.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) status: StatusCode,
    pub(crate) message: &'static str,
}

impl Refusal {
    pub(crate) const fn new(status: StatusCode, message: &'static str) -> Self {
        Self { status, message }
    }
}

pub(crate) const NO_CALLER: Refusal = Refusal::new(
    StatusCode::UNAUTHORIZED,
    "authenticate as an organization admin first",
);
pub(crate) const NOT_ADMIN: Refusal = Refusal::new(
    StatusCode::FORBIDDEN,
    "only an admin of the organization may do this",
);
pub(crate) const IMPERSONATING: Refusal = Refusal::new(
    StatusCode::FORBIDDEN,
    "an impersonated request cannot manage impersonation",
);
pub(crate) const TOO_LARGE: Refusal = Refusal::new(
    StatusCode::PAYLOAD_TOO_LARGE,
    "the request body is too large",
);
pub(crate) const UNREADABLE: Refusal = Refusal::new(
    StatusCode::BAD_REQUEST,
    "the request body could not be read",
);
pub(crate) const UNAVAILABLE: Refusal = Refusal::new(
    StatusCode::SERVICE_UNAVAILABLE,
    "the token store is unavailable; retry shortly",
);

/// The caller, if it may act at all: impersonation never mints more impersonation.
pub(crate) fn caller<B>(request: &Request<B>) -> Result<Caller, Refusal> {
    if request.extensions().get::<ImpersonatedUser>().is_some() {
        return Err(IMPERSONATING);
    }
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or(NO_CALLER)
}

/// Reads the whole body, refusing past `limit` bytes.
pub(crate) async fn read_body<B>(body: B, limit: usize) -> Result<Bytes, Refusal>
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if body.size_hint().lower() > limit as u64 {
        return Err(TOO_LARGE);
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(TOO_LARGE),
        Err(_) => Err(UNREADABLE),
    }
}

/// A response with a body and content type.
pub(crate) fn reply(
    status: StatusCode,
    content_type: &'static str,
    body: Bytes,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// A JSON reply.
pub(crate) fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Full<Bytes>> {
    match serde_json::to_vec(value) {
        Ok(body) => reply(status, "application/json", body.into()),
        Err(_) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "application/json",
            Bytes::new(),
        ),
    }
}

/// An empty reply.
pub(crate) fn empty(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

/// 405 with the methods that would work.
pub(crate) fn method_not_allowed(allow: &'static str) -> Response<Full<Bytes>> {
    let mut response = error_json(Refusal::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "this method is not supported here",
    ));
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// `{"error": ..., "error_description": ...}`, the layer's error shape.
pub(crate) fn error_json(refusal: Refusal) -> Response<Full<Bytes>> {
    error_with_message(refusal.status, refusal.message)
}

/// The error shape with a message built at run time.
pub(crate) fn error_with_message(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let code = match status {
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::CONFLICT => "limit_reached",
        StatusCode::UNPROCESSABLE_ENTITY => "unknown_member",
        StatusCode::SERVICE_UNAVAILABLE => "temporarily_unavailable",
        _ => "invalid_request",
    };
    let body = serde_json::json!({"error": code, "error_description": message});
    json(status, &body)
}
