//! [`Principal`]: the user a request acts as, impersonated or signed in with a plain key.

use axum::{
    Json,
    extract::FromRequestParts,
    response::{IntoResponse, Response},
};
use http::{StatusCode, header::WWW_AUTHENTICATE, request::Parts};
use serde_json::{Value, json};
use tower_impersonation::{Actor, ImpersonatedUser, User};

use super::accounts::SignedIn;

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

    /// `GET /api/v1/whoami`'s answer.
    pub fn describe(&self) -> Value {
        let user = self.user();
        let (actor, roles) = match self {
            Principal::Impersonated(impersonated) => (
                describe_actor(impersonated.actor()),
                impersonated
                    .roles()
                    .iter()
                    .map(|role| role.to_string())
                    .collect(),
            ),
            Principal::Member(_) => (Value::Null, vec!["*:*".to_owned()]),
        };
        json!({
            "id": user.id,
            "email": user.email,
            "name": user.name,
            "impersonated": matches!(self, Principal::Impersonated(_)),
            "actor": actor,
            "roles": roles,
        })
    }
}

fn describe_actor(actor: &Actor) -> Value {
    match actor {
        Actor::Token(record) => json!({
            "kind": "token",
            "token_id": record.id,
            "token_name": record.name,
            "created_by": record.created_by,
        }),
        Actor::Admin { user_id } => json!({"kind": "admin", "user_id": user_id}),
        _ => json!({"kind": "unattributed"}),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if let Some(impersonated) = parts.extensions.get::<ImpersonatedUser>() {
            return Ok(Principal::Impersonated(impersonated.clone()));
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
