//! The JSON:API side of the impersonation endpoint: its media type, its error documents and
//! the documents it answers with.

use bytes::Bytes;
use http::StatusCode;
use http_body_util::Full;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    jwt::MintedJwt,
    services::reply::{Refusal, reply},
    time::Timestamp,
};

/// The JSON:API media type, which requests must be sent as.
pub(super) const JSON_API: &str = "application/vnd.api+json";
/// The media type of every document the endpoint answers with.
const JSON_API_UTF8: &str = "application/vnd.api+json; charset=utf-8";

/// A JSON:API error: status, message, and the member of the document at fault.
pub(super) struct ApiError {
    status: StatusCode,
    detail: String,
    pointer: Option<&'static str>,
    /// The methods the path takes, for a 405.
    allow: &'static str,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            pointer: None,
            allow: "",
        }
    }

    pub(super) fn not_allowed(allow: &'static str) -> Self {
        Self {
            allow,
            ..Self::new(StatusCode::METHOD_NOT_ALLOWED, format!("use {allow}"))
        }
    }

    pub(super) fn at(mut self, pointer: &'static str) -> Self {
        self.pointer = Some(pointer);
        self
    }

    pub(super) fn into_response(self) -> http::Response<Full<Bytes>> {
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
        if !self.allow.is_empty() {
            response.headers_mut().insert(
                http::header::ALLOW,
                http::HeaderValue::from_static(self.allow),
            );
        }
        response
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        ApiError::new(refusal.status, refusal.message)
    }
}

pub(super) fn unprocessable(detail: &str) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
}

/// The answer to a mint: the JWT that acts as `user`, shown this once, with its id and lifetime.
pub(super) fn minted_document(
    user: &str,
    jti: Uuid,
    token: &str,
    created_at: Timestamp,
    expires_at: Timestamp,
) -> http::Response<Full<Bytes>> {
    let document = json!({
        "data": {
            "id": user,
            "type": "impersonation",
            "attributes": {
                "created_at": created_at.to_rfc3339_seconds(),
                "expires_at": expires_at.to_rfc3339_seconds(),
                "jti": jti.to_string(),
                "json_web_token": token,
                "updated_at": null,
                "updated_in_db_at": null,
            }
        }
    });
    reply(StatusCode::OK, JSON_API_UTF8, document.to_string().into())
}

/// The listing of an organization's live JWTs: a JSON:API collection, never a JWT.
pub(super) fn listing(live: &[MintedJwt]) -> http::Response<Full<Bytes>> {
    let data: Vec<Value> = live
        .iter()
        .map(|jwt| {
            json!({
                "id": jwt.jti.to_string(),
                "type": "impersonation",
                "attributes": {
                    "jti": jwt.jti.to_string(),
                    "user": &*jwt.user_id,
                    "actor": &*jwt.actor,
                    "reason": jwt.reason,
                    "created_at": jwt.issued_at.to_rfc3339_seconds(),
                    "expires_at": jwt.expires_at.to_rfc3339_seconds(),
                }
            })
        })
        .collect();
    let document = json!({ "data": data }).to_string();
    reply(StatusCode::OK, JSON_API_UTF8, document.into())
}
