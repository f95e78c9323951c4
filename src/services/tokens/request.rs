//! A create request's body, checked field by field.

use serde_json::{Map, Value};

use crate::{role::Roles, services::members, time::Timestamp};

/// Longest token name accepted, in characters.
const MAX_NAME_CHARS: usize = 200;
/// Most roles one token may carry.
const MAX_ROLES: usize = 64;

/// A checked create request.
pub(super) struct CreateRequest {
    pub(super) name: Option<String>,
    pub(super) roles: Roles,
    pub(super) expires_at: Option<Timestamp>,
    /// The members named, as written; resolved once the request is checked.
    pub(super) users: Option<Vec<String>>,
}

impl CreateRequest {
    /// Parses the optional body; every refusal says what to fix.
    pub(super) fn parse(body: &[u8]) -> Result<Self, String> {
        let mut request = CreateRequest {
            name: None,
            roles: Roles::full_access(),
            expires_at: None,
            users: None,
        };
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(request);
        }
        let value: Value = crate::services::json::from_slice(body)
            .map_err(|error| format!("the body is not valid JSON: {error}"))?;
        let Value::Object(fields) = value else {
            return Err("the body must be a JSON object".to_owned());
        };
        request.read_fields(fields)?;
        Ok(request)
    }

    fn read_fields(&mut self, fields: Map<String, Value>) -> Result<(), String> {
        for (key, value) in fields {
            match (key.as_str(), value) {
                ("name" | "roles" | "expiresAt" | "users", Value::Null) => {}
                ("name", Value::String(name)) => self.name = Some(parse_name(name)?),
                ("name", _) => return Err("name must be a string".to_owned()),
                ("roles", Value::Array(roles)) => self.roles = parse_roles(&roles)?,
                ("roles", _) => return Err("roles must be a list of role strings".to_owned()),
                ("expiresAt", Value::String(at)) => self.expires_at = Some(parse_expiry(&at)?),
                ("expiresAt", _) => return Err("expiresAt must be a date string".to_owned()),
                ("users", Value::Array(users)) => self.users = Some(members::parse(&users)?),
                ("users", _) => return Err("users must be a list of members".to_owned()),
                (other, _) => {
                    return Err(format!(
                        "unknown field {:?}: accepted fields are name, roles, expiresAt and users",
                        other.chars().take(40).collect::<String>()
                    ));
                }
            }
        }
        Ok(())
    }
}

fn parse_name(name: String) -> Result<String, String> {
    let valid = name.chars().count() <= MAX_NAME_CHARS && !name.chars().any(char::is_control);
    if valid {
        Ok(name)
    } else {
        Err(format!(
            "name must be at most {MAX_NAME_CHARS} characters, without control characters"
        ))
    }
}

fn parse_roles(roles: &[Value]) -> Result<Roles, String> {
    if roles.is_empty() || roles.len() > MAX_ROLES {
        return Err(format!("roles must hold 1 to {MAX_ROLES} roles"));
    }
    let texts = roles
        .iter()
        .map(|role| role.as_str().ok_or("roles must be a list of role strings"))
        .collect::<Result<Vec<&str>, _>>()?;
    Roles::parse(&texts).map_err(|error| error.to_string())
}

fn parse_expiry(at: &str) -> Result<Timestamp, String> {
    let expires_at = Timestamp::parse_utc(at).ok_or(
        "expiresAt must be a UTC date such as 2030-01-31T12:00:00Z or 2030-01-31T12:00:00.000+0000",
    )?;
    if expires_at <= Timestamp::now() {
        return Err("expiresAt must be in the future".to_owned());
    }
    Ok(expires_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_body_asks_for_a_full_access_token() {
        let request = CreateRequest::parse(b"").unwrap();
        assert_eq!(request.roles, Roles::full_access());
        assert!(request.name.is_none() && request.expires_at.is_none() && request.users.is_none());
    }

    #[test]
    fn create_bodies_are_checked_field_by_field() {
        let refused = |body: &str| CreateRequest::parse(body.as_bytes()).err().unwrap();
        assert!(refused("{").contains("not valid JSON"));
        assert!(refused("[]").contains("JSON object"));
        assert!(refused(r#"{"roles": "read:*"}"#).contains("list"));
        assert!(refused(r#"{"roles": ["admin"]}"#).contains("unknown role"));
        assert!(refused(r#"{"roles": []}"#).contains("1 to"));
        assert!(refused(r#"{"role": ["read:*"]}"#).contains("unknown field"));
        assert!(refused(r#"{"name": 7}"#).contains("name"));
        assert!(refused(r#"{"expiresAt": "2000-01-01T00:00:00Z"}"#).contains("future"));
        assert!(refused(r#"{"expiresAt": "tomorrow"}"#).contains("UTC date"));
        assert!(refused(r#"{"users": "u1"}"#).contains("list of members"));
        assert!(refused(r#"{"users": []}"#).contains("1 to"));
    }

    #[test]
    fn a_read_only_named_request_parses() {
        let body = br#"{"name": "XYZ Integration Token", "roles": ["read:*"]}"#;
        let request = CreateRequest::parse(body).unwrap();
        assert_eq!(request.name.as_deref(), Some("XYZ Integration Token"));
        assert_eq!(request.roles.to_strings(), ["read:*"]);
    }
}
