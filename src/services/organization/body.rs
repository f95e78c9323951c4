//! The requests of the impersonation endpoint: a create request's JSON:API document, and the
//! user a revocation names in its query.

use http::StatusCode;
use serde_json::Value;

use super::jsonapi::{ApiError, unprocessable};

/// Longest `reason` accepted, in characters.
const MAX_REASON_CHARS: usize = 1000;

/// A checked request document.
pub(super) struct Ask {
    /// The member to act as: a name, id, or key or relay email.
    pub(super) user: String,
    /// Why, as the admin wrote it.
    pub(super) reason: Option<String>,
}

impl Ask {
    /// Reads a create request's JSON:API document; `require_reason` refuses one without a
    /// `reason`.
    pub(super) fn parse(body: &[u8], require_reason: bool) -> Result<Self, ApiError> {
        let document: Value = crate::services::json::from_slice(body).map_err(|error| {
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
        if require_reason && blank {
            return Err(
                unprocessable("attributes.reason is required").at("/data/attributes/reason")
            );
        }
        Ok(Ask { user, reason })
    }
}

/// The `user` of a `?user=` query, percent-decoded.
pub(super) fn user_in_query(query: Option<&str>) -> Result<String, ApiError> {
    let mut users = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(name, _)| name == "user")
        .map(|(_, user)| user.into_owned());
    match (users.next(), users.next()) {
        (Some(user), None) if !user.is_empty() && user.len() <= crate::MAX_USER_LEN => Ok(user),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "name one user whose JWTs to end: ?user={name, id or email}, or DELETE \
             .../impersonation/{jti} for one JWT",
        )),
    }
}
