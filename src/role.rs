//! Role scopes (`read:*`, `write:cards`, `*:*`, `default`) and the access they grant.

use std::{fmt, str::FromStr, sync::Arc};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a request does to a resource: read it, or change it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// Reading only (GET, HEAD, OPTIONS; gRPC `Get*`, `List*`, ... methods).
    Read,
    /// Anything that may change state.
    Write,
}

impl Access {
    /// The access an HTTP method needs: `Read` for GET, HEAD and OPTIONS, `Write` for the rest.
    pub fn of_method(method: &http::Method) -> Self {
        match *method {
            http::Method::GET | http::Method::HEAD | http::Method::OPTIONS => Access::Read,
            _ => Access::Write,
        }
    }
}

/// The action part of a role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// `read`: reading only.
    Read,
    /// `write`: reading and writing.
    Write,
    /// `*`: everything.
    Any,
}

impl Action {
    fn allows(self, access: Access) -> bool {
        !matches!((self, access), (Action::Read, Access::Write))
    }
}

/// The resource part of a role: one resource by name, or `*` for all.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Resource {
    /// `*`: every resource.
    Any,
    /// One resource, such as `cards` or `grpc.health.v1.Health`.
    Named(Box<str>),
}

/// One role scope, `<action>:<resource>`; `default` is `*:*`.
///
/// ```
/// use tower_impersonation::{Access, Role};
///
/// let role: Role = "read:cards".parse().unwrap();
/// assert!(role.allows(Access::Read, Some("cards")));
/// assert!(!role.allows(Access::Write, Some("cards")));
/// assert!(!role.allows(Access::Read, Some("users")));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Role {
    action: Action,
    resource: Resource,
}

impl Role {
    /// `*:*`: full read and write access, the default of a new token.
    pub fn full_access() -> Self {
        Role {
            action: Action::Any,
            resource: Resource::Any,
        }
    }

    /// `read:*`: read-only access to everything.
    pub fn read_only() -> Self {
        Role {
            action: Action::Read,
            resource: Resource::Any,
        }
    }

    /// The role's action.
    pub fn action(&self) -> Action {
        self.action
    }

    /// The role's resource.
    pub fn resource(&self) -> &Resource {
        &self.resource
    }

    /// Whether this role allows `access` to `resource` (`None`: a request outside any named resource).
    pub fn allows(&self, access: Access, resource: Option<&str>) -> bool {
        let resource_matches = match (&self.resource, resource) {
            (Resource::Any, _) => true,
            (Resource::Named(name), Some(wanted)) => **name == *wanted,
            (Resource::Named(_), None) => false,
        };
        resource_matches && self.action.allows(access)
    }
}

/// Why a role string was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleParseError {
    role: String,
}

impl fmt::Display for RoleParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown role {:?}: expected `default` or `<read|write|*>:<resource|*>`",
            self.role
        )
    }
}

impl std::error::Error for RoleParseError {}

/// Longest role string accepted, so a role list cannot carry unbounded text.
const MAX_ROLE_LEN: usize = 128;

impl FromStr for Role {
    type Err = RoleParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || RoleParseError {
            role: text.chars().take(MAX_ROLE_LEN).collect(),
        };
        if text == "default" {
            return Ok(Role::full_access());
        }
        let (action, resource) = text.split_once(':').ok_or_else(error)?;
        let action = match action {
            "read" => Action::Read,
            "write" => Action::Write,
            "*" => Action::Any,
            _ => return Err(error()),
        };
        let resource = match resource {
            "*" => Resource::Any,
            name if text.len() <= MAX_ROLE_LEN && is_resource_name(name) => {
                Resource::Named(name.into())
            }
            _ => return Err(error()),
        };
        Ok(Role { action, resource })
    }
}

fn is_resource_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

impl Role {
    /// The role's text when it names no resource (`read:*`, `write:*`, `*:*`): every token's
    /// roles but a named resource's, written out on every answer that shows them.
    fn any_resource_text(&self) -> Option<&'static str> {
        match (&self.action, &self.resource) {
            (Action::Read, Resource::Any) => Some("read:*"),
            (Action::Write, Resource::Any) => Some("write:*"),
            (Action::Any, Resource::Any) => Some("*:*"),
            (_, Resource::Named(_)) => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Resource::Named(name) = &self.resource else {
            return f.write_str(self.any_resource_text().unwrap_or_default());
        };
        let action = match self.action {
            Action::Read => "read",
            Action::Write => "write",
            Action::Any => "*",
        };
        write!(f, "{action}:{name}")
    }
}

impl Serialize for Role {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.any_resource_text() {
            Some(text) => serializer.serialize_str(text),
            None => serializer.collect_str(self),
        }
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The roles a credential carries; a request is allowed when any one of them allows it.
///
/// Cheap to clone: the list is shared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Roles(Arc<[Role]>);

impl Roles {
    /// Wraps a list of roles.
    pub fn new(roles: impl Into<Arc<[Role]>>) -> Self {
        Roles(roles.into())
    }

    /// `["*:*"]`: full access.
    pub fn full_access() -> Self {
        Roles::new([Role::full_access()])
    }

    /// No roles at all: allows nothing.
    pub fn none() -> &'static Roles {
        static NONE: std::sync::OnceLock<Roles> = std::sync::OnceLock::new();
        NONE.get_or_init(|| Roles::new([]))
    }

    /// Parses role strings; the first unknown one is the error.
    pub fn parse<S: AsRef<str>>(roles: &[S]) -> Result<Self, RoleParseError> {
        roles
            .iter()
            .map(|role| role.as_ref().parse())
            .collect::<Result<Vec<Role>, _>>()
            .map(Roles::new)
    }

    /// Whether any role allows `access` to `resource`.
    pub fn allow(&self, access: Access, resource: Option<&str>) -> bool {
        self.0.iter().any(|role| role.allows(access, resource))
    }

    /// The roles, in the order given.
    pub fn iter(&self) -> impl Iterator<Item = &Role> {
        self.0.iter()
    }

    /// The roles as strings, as listings show them.
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(Role::to_string).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    fn role(text: &str) -> Role {
        text.parse().unwrap()
    }

    #[test]
    fn default_means_full_access() {
        assert_eq!(role("default"), role("*:*"));
        assert_eq!(role("default").to_string(), "*:*");
    }

    #[test]
    fn read_role_allows_only_safe_methods() {
        let read = Roles::new([role("read:*")]);
        for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
            assert!(
                read.allow(Access::of_method(&method), Some("cards")),
                "{method}"
            );
        }
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert!(
                !read.allow(Access::of_method(&method), Some("cards")),
                "{method}"
            );
        }
    }

    #[test]
    fn write_and_star_allow_every_method() {
        for text in ["write:*", "*:*"] {
            let roles = Roles::new([role(text)]);
            assert!(roles.allow(Access::Write, Some("cards")));
            assert!(roles.allow(Access::Read, None));
        }
    }

    #[test]
    fn named_resource_matches_only_that_resource() {
        let roles = Roles::new([role("read:cards"), role("write:boards")]);
        assert!(roles.allow(Access::Read, Some("cards")));
        assert!(!roles.allow(Access::Write, Some("cards")));
        assert!(roles.allow(Access::Write, Some("boards")));
        assert!(!roles.allow(Access::Read, Some("users")));
        assert!(!roles.allow(Access::Read, None));
    }

    #[test]
    fn unknown_roles_are_errors() {
        for bad in [
            "",
            "admin",
            "read",
            "read:",
            "delete:*",
            "READ:*",
            "read:a b",
            ":*",
            "default:*",
        ] {
            assert!(bad.parse::<Role>().is_err(), "{bad:?} should not parse");
        }
        let long = format!("read:{}", "a".repeat(200));
        assert!(long.parse::<Role>().is_err());
    }

    #[test]
    fn roles_round_trip_through_serde() {
        let roles: Roles =
            serde_json::from_str(r#"["read:*","write:*","write:cards","*:cards","default"]"#)
                .unwrap();
        assert_eq!(
            serde_json::to_string(&roles).unwrap(),
            r#"["read:*","write:*","write:cards","*:cards","*:*"]"#
        );
        for role in ["read:*", "write:*", "*:*", "read:cards", "*:cards"] {
            assert_eq!(role.parse::<Role>().unwrap().to_string(), role);
        }
        assert!(serde_json::from_str::<Roles>(r#"["root"]"#).is_err());
    }
}
