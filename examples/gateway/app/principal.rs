//! [`Principal`]: the user a request acts as, impersonated or signed in with a plain key.

use axum::{
    Json,
    extract::FromRequestParts,
    response::{IntoResponse, Response},
};
use http::{StatusCode, header::WWW_AUTHENTICATE, request::Parts};
use serde::{Serialize, Serializer, ser::SerializeStruct};
use serde_json::json;
use tower_impersonation::{Actor, ImpersonatedUser, Roles, User};
use uuid::Uuid;

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

    /// `GET /api/v1/whoami`'s answer, serialized straight from the principal's fields.
    pub fn describe(&self) -> Description<'_> {
        let user = self.user();
        let (actor, roles) = match self {
            Principal::Impersonated(impersonated) => (
                Some(ActorDescription::of(impersonated.actor())),
                Some(impersonated.roles()),
            ),
            Principal::Member(_) => (None, None),
        };
        Description {
            id: &user.id,
            email: &user.email,
            name: &user.name,
            impersonated: matches!(self, Principal::Impersonated(_)),
            actor,
            roles: RolesDescription(roles),
        }
    }
}

/// What `GET /api/v1/whoami` answers.
#[derive(Serialize)]
pub struct Description<'a> {
    id: &'a str,
    email: &'a str,
    name: &'a str,
    impersonated: bool,
    actor: Option<ActorDescription<'a>>,
    roles: RolesDescription<'a>,
}

/// Who acts through an impersonation: `{"kind": "token", "token_id", "token_name",
/// "created_by"}`, `{"kind": "admin", "user_id"}` or `{"kind": "unattributed"}`.
enum ActorDescription<'a> {
    Token {
        token_id: Uuid,
        token_name: Option<&'a str>,
        created_by: &'a str,
    },
    Admin {
        user_id: &'a str,
    },
    Unattributed,
}

// Written out rather than derived with `#[serde(tag = "kind")]`, which turns each variant into
// a map behind serde's tag-adding wrapper: 300 instructions more on every impersonated `whoami`.
impl Serialize for ActorDescription<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ActorDescription::Token {
                token_id,
                token_name,
                created_by,
            } => {
                let mut actor = serializer.serialize_struct("Actor", 4)?;
                actor.serialize_field("kind", "token")?;
                actor.serialize_field("token_id", token_id)?;
                actor.serialize_field("token_name", token_name)?;
                actor.serialize_field("created_by", created_by)?;
                actor.end()
            }
            ActorDescription::Admin { user_id } => {
                let mut actor = serializer.serialize_struct("Actor", 2)?;
                actor.serialize_field("kind", "admin")?;
                actor.serialize_field("user_id", user_id)?;
                actor.end()
            }
            ActorDescription::Unattributed => {
                let mut actor = serializer.serialize_struct("Actor", 1)?;
                actor.serialize_field("kind", "unattributed")?;
                actor.end()
            }
        }
    }
}

impl<'a> ActorDescription<'a> {
    fn of(actor: &'a Actor) -> Self {
        match actor {
            Actor::Token(record) => ActorDescription::Token {
                token_id: record.id,
                token_name: record.name.as_deref(),
                created_by: &record.created_by,
            },
            Actor::Admin { user_id } => ActorDescription::Admin { user_id },
            _ => ActorDescription::Unattributed,
        }
    }
}

/// An impersonation's roles; a member acting with their own key may do anything (`*:*`).
struct RolesDescription<'a>(Option<&'a Roles>);

impl Serialize for RolesDescription<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(roles) => roles.serialize(serializer),
            None => serializer.collect_seq(["*:*"]),
        }
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
