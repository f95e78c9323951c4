//! Access policies: which resource a request touches and whether it reads or writes it.

use std::collections::HashMap;

use http::{HeaderMap, Method, Uri, header::CONTENT_TYPE};

use crate::{error::ConfigError, role::Access};

/// The parts of a request an [`AccessPolicy`] looks at.
#[derive(Clone, Copy, Debug)]
pub struct RequestHead<'a> {
    /// The request method.
    pub method: &'a Method,
    /// The request URI.
    pub uri: &'a Uri,
    /// The request headers.
    pub headers: &'a HeaderMap,
}

/// What a request needs from a token's roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequiredAccess<'a> {
    /// Read or write.
    pub access: Access,
    /// The resource touched; `None` when the request names none, which only `<action>:*` roles allow.
    pub resource: Option<&'a str>,
}

/// Decides which access a request needs, so roles such as `read:cards` can be checked against it.
pub trait AccessPolicy: Send + Sync + 'static {
    /// The access `request` needs.
    fn required<'a>(&self, request: &RequestHead<'a>) -> RequiredAccess<'a>;
}

/// The default policy for HTTP APIs: the method gives the access, the first path segment after a
/// prefix gives the resource (`/api/v1/cards/7` -> `cards`).
///
/// ```
/// use http::{HeaderMap, Method, Uri};
/// use tower_impersonation::{Access, policy::{AccessPolicy, PathPolicy, RequestHead}};
///
/// let uri: Uri = "/api/v1/cards/7".parse().unwrap();
/// let head = RequestHead { method: &Method::DELETE, uri: &uri, headers: &HeaderMap::new() };
/// let required = PathPolicy::default().required(&head);
/// assert_eq!((required.access, required.resource), (Access::Write, Some("cards")));
/// ```
#[derive(Clone, Debug)]
pub struct PathPolicy {
    prefix: String,
}

impl PathPolicy {
    /// A path policy under `prefix` (default `/api/v1`).
    pub fn new(prefix: &str) -> Result<Self, ConfigError> {
        if !prefix.starts_with('/') {
            return Err(ConfigError::InvalidPathPrefix(prefix.to_owned()));
        }
        Ok(Self {
            prefix: prefix.trim_end_matches('/').to_owned(),
        })
    }

    fn resource<'a>(&self, path: &'a str) -> Option<&'a str> {
        let rest = path.strip_prefix(self.prefix.as_str())?.strip_prefix('/')?;
        // A byte search: this runs on every impersonated request.
        let segment = memchr::memchr(b'/', rest.as_bytes()).map_or(rest, |end| &rest[..end]);
        (!segment.is_empty()).then_some(segment)
    }
}

impl Default for PathPolicy {
    fn default() -> Self {
        Self {
            prefix: "/api/v1".to_owned(),
        }
    }
}

impl AccessPolicy for PathPolicy {
    fn required<'a>(&self, request: &RequestHead<'a>) -> RequiredAccess<'a> {
        RequiredAccess {
            access: Access::of_method(request.method),
            resource: self.resource(request.uri.path()),
        }
    }
}

/// The policy for gRPC, where every call is a POST: the resource is the service of
/// `/pkg.Service/Method`, and methods named `Get*`, `List*`, `Search*`, `Watch*`, `Describe*` or
/// `Read*` read; every other method writes unless overridden.
#[derive(Clone, Debug, Default)]
pub struct GrpcPolicy {
    overrides: HashMap<String, Access>,
}

const READ_METHOD_PREFIXES: [&str; 6] = ["Get", "List", "Search", "Watch", "Describe", "Read"];

impl GrpcPolicy {
    /// The policy with no overrides.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the access of one method, named by its path (`/grpc.health.v1.Health/Check`).
    #[must_use]
    pub fn method(mut self, path: &str, access: Access) -> Self {
        self.overrides.insert(path.to_owned(), access);
        self
    }
}

impl AccessPolicy for GrpcPolicy {
    fn required<'a>(&self, request: &RequestHead<'a>) -> RequiredAccess<'a> {
        let path = request.uri.path();
        let Some((service, method)) = path.strip_prefix('/').and_then(|p| p.split_once('/')) else {
            return RequiredAccess {
                access: Access::Write,
                resource: None,
            };
        };
        let by_name = if READ_METHOD_PREFIXES.iter().any(|p| method.starts_with(p)) {
            Access::Read
        } else {
            Access::Write
        };
        RequiredAccess {
            access: self.overrides.get(path).copied().unwrap_or(by_name),
            resource: (!service.is_empty()).then_some(service),
        }
    }
}

/// For gateways that serve both: [`GrpcPolicy`] for requests whose content type is
/// `application/grpc…`, [`PathPolicy`] for the rest.
#[derive(Clone, Debug, Default)]
pub struct MixedPolicy {
    grpc: GrpcPolicy,
    http: PathPolicy,
}

impl MixedPolicy {
    /// Combines the two policies.
    pub fn new(grpc: GrpcPolicy, http: PathPolicy) -> Self {
        Self { grpc, http }
    }
}

impl AccessPolicy for MixedPolicy {
    fn required<'a>(&self, request: &RequestHead<'a>) -> RequiredAccess<'a> {
        if is_grpc(request.headers) {
            self.grpc.required(request)
        } else {
            self.http.required(request)
        }
    }
}

/// Whether a request speaks gRPC, by its content type.
pub(crate) fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn required<P: AccessPolicy>(
        policy: &P,
        method: Method,
        path: &str,
        grpc: bool,
    ) -> (Access, Option<String>) {
        let uri: Uri = path.parse().unwrap();
        let mut headers = HeaderMap::new();
        if grpc {
            headers.insert(CONTENT_TYPE, "application/grpc+proto".parse().unwrap());
        }
        let head = RequestHead {
            method: &method,
            uri: &uri,
            headers: &headers,
        };
        let r = policy.required(&head);
        (r.access, r.resource.map(str::to_owned))
    }

    #[test]
    fn path_policy_takes_the_segment_after_the_prefix() {
        let p = PathPolicy::default();
        let cards = Some("cards".to_owned());
        assert_eq!(
            required(&p, Method::GET, "/api/v1/cards/7", false),
            (Access::Read, cards.clone())
        );
        assert_eq!(
            required(&p, Method::POST, "/api/v1/cards", false),
            (Access::Write, cards)
        );
        assert_eq!(required(&p, Method::GET, "/api/v10/cards", false).1, None);
        assert_eq!(required(&p, Method::GET, "/api/v1//cards", false).1, None);
        assert_eq!(required(&p, Method::GET, "/healthz", false).1, None);
    }

    #[test]
    fn path_prefix_is_configurable() {
        let p = PathPolicy::new("/v2/").unwrap();
        assert_eq!(
            required(&p, Method::GET, "/v2/boards?x=1", false)
                .1
                .as_deref(),
            Some("boards")
        );
        assert!(PathPolicy::new("v2").is_err());
    }

    #[test]
    fn grpc_policy_reads_by_method_name_and_overrides() {
        let p = GrpcPolicy::new().method("/grpc.health.v1.Health/Check", Access::Read);
        let health = Some("grpc.health.v1.Health".to_owned());
        assert_eq!(
            required(&p, Method::POST, "/grpc.health.v1.Health/Check", true),
            (Access::Read, health.clone())
        );
        assert_eq!(
            required(&p, Method::POST, "/grpc.health.v1.Health/Watch", true),
            (Access::Read, health)
        );
        assert_eq!(
            required(&p, Method::POST, "/shop.Cards/ListCards", true).0,
            Access::Read
        );
        assert_eq!(
            required(&p, Method::POST, "/shop.Cards/DeleteCard", true).0,
            Access::Write
        );
        assert_eq!(
            required(&p, Method::POST, "/nonsense", true),
            (Access::Write, None)
        );
    }

    #[test]
    fn mixed_policy_picks_by_content_type() {
        let p = MixedPolicy::default();
        assert_eq!(
            required(&p, Method::POST, "/shop.Cards/GetCard", true).0,
            Access::Read
        );
        assert_eq!(
            required(&p, Method::POST, "/shop.Cards/GetCard", false).0,
            Access::Write
        );
    }
}
