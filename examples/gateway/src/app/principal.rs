//! [`Principal`]: the user a request acts as, impersonated or signed in with a plain key.

use axum::{
    Json,
    extract::FromRequestParts,
    response::{IntoResponse, Response},
};
use http::{StatusCode, header::WWW_AUTHENTICATE, request::Parts};
use serde_json::json;
use tower_impersonation::{Actor, ImpersonatedUser, User};
use uuid::Uuid;

use super::accounts::SignedIn;
use crate::audit_log::is_plain;

/// The effective user of a request on an authenticated route.
pub enum Principal {
    /// Acting as another member through an impersonation token or JWT.
    Impersonated(ImpersonatedUser),
    /// A member with their own plain key.
    Member(SignedIn),
}

impl Principal {
    pub fn user(&self) -> &User {
        match self {
            Principal::Impersonated(impersonated) => impersonated.user(),
            Principal::Member(member) => &member.user,
        }
    }

    /// The organization the request acts in.
    pub fn organization(&self) -> &str {
        match self {
            Principal::Impersonated(impersonated) => impersonated.organization().unwrap_or(""),
            Principal::Member(member) => &member.caller.organization,
        }
    }

    /// `GET /api/v1/whoami`'s answer: `{"id", "email", "name", "impersonated", "actor",
    /// "roles"}`. The actor is `{"kind": "token", "token_id", "token_name", "created_by"}`,
    /// `{"kind": "admin", "user_id"}`, `{"kind": "unattributed"}`, or `null` for a member with
    /// their own key, whose roles are `["*:*"]`.
    pub fn whoami(&self) -> Result<Vec<u8>, serde_json::Error> {
        let user = self.user();
        let mut json = JsonWriter(Vec::with_capacity(512));
        json.raw(r#"{"id":"#);
        json.string(&user.id)?;
        json.raw(r#","email":"#);
        json.string(&user.email)?;
        json.raw(r#","name":"#);
        json.string(&user.name)?;
        let Principal::Impersonated(impersonated) = self else {
            json.raw(r#","impersonated":false,"actor":null,"roles":["*:*"]}"#);
            return Ok(json.0);
        };
        json.raw(r#","impersonated":true,"actor":"#);
        match impersonated.actor() {
            Actor::Token(record) => {
                json.raw(r#"{"kind":"token","token_id":""#);
                json.raw(
                    record
                        .id
                        .hyphenated()
                        .encode_lower(&mut Uuid::encode_buffer()),
                );
                json.raw(r#"","token_name":"#);
                match &record.name {
                    Some(name) => json.string(name)?,
                    None => json.raw("null"),
                }
                json.raw(r#","created_by":"#);
                json.string(&record.created_by)?;
                json.raw("}");
            }
            Actor::Admin { user_id } => {
                json.raw(r#"{"kind":"admin","user_id":"#);
                json.string(user_id)?;
                json.raw("}");
            }
            _ => json.raw(r#"{"kind":"unattributed"}"#),
        }
        json.raw(r#","roles":"#);
        serde_json::to_writer(&mut json.0, impersonated.roles())?;
        json.raw("}");
        Ok(json.0)
    }
}

/// The whoami answer, written piece by piece rather than through a `Serialize` type: its strings
/// are ids and names that rarely need escaping, which serde_json checks a byte at a time. A
/// string with nothing to escape is copied whole, and any other is written by serde_json.
struct JsonWriter(Vec<u8>);

impl JsonWriter {
    /// JSON text as it is.
    fn raw(&mut self, json: &str) {
        self.0.extend_from_slice(json.as_bytes());
    }

    /// `text` as a JSON string.
    fn string(&mut self, text: &str) -> Result<(), serde_json::Error> {
        if !is_plain(text) {
            return serde_json::to_writer(&mut self.0, text);
        }
        self.0.reserve(text.len() + 2);
        self.0.push(b'"');
        self.0.extend_from_slice(text.as_bytes());
        self.0.push(b'"');
        Ok(())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = Response;

    /// Takes the impersonated user out of the request rather than cloning it: a clone bumps the
    /// counts of the token record and the user, shared by every request with that token, from
    /// whichever core runs it. So a handler takes one `Principal`, as each here does.
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if let Some(impersonated) = parts.extensions.remove::<ImpersonatedUser>() {
            return Ok(Principal::Impersonated(impersonated));
        }
        match parts.extensions.get::<SignedIn>() {
            Some(member) => Ok(Principal::Member(member.clone())),
            None => Err(unauthenticated()),
        }
    }
}

fn unauthenticated() -> Response {
    let body = json!({
        "error": "unauthenticated",
        "error_description": "send `Authorization: Bearer <api key>`, or an impersonation token or JWT",
    });
    (
        StatusCode::UNAUTHORIZED,
        [(WWW_AUTHENTICATE, "Bearer")],
        Json(body),
    )
        .into_response()
}
