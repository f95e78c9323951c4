//! Requests that no impersonation credential may make, whatever its roles.

use std::{borrow::Cow, fmt, str::FromStr};

use http::Method;

use crate::error::ConfigError;

/// One request that is never made while impersonating: an HTTP method (or any) and a path
/// pattern, written `METHOD /path`.
///
/// - The method is an HTTP method (`POST`, matched exactly) or `*` for any. `GET` also covers
///   `HEAD`, which routers answer with the `GET` handler.
/// - The path is matched whole, or with a trailing `/*` as a subtree: `/account/mfa/*` covers
///   `/account/mfa` and everything below it. Paths are compared after percent-decoding, with
///   repeated and trailing slashes ignored, so another spelling of a path does not slip past.
/// - [`ProtectedRoute::grpc`] names a gRPC method, `package.Service/Method`.
///
/// ```
/// use tower_impersonation::policy::ProtectedRoute;
///
/// let password: ProtectedRoute = "POST /api/v1/account/password".parse().unwrap();
/// let mfa: ProtectedRoute = "* /api/v1/account/mfa/*".parse().unwrap();
/// let grpc = ProtectedRoute::grpc("acme.Accounts/ChangePassword").unwrap();
/// assert_eq!(mfa.to_string(), "* /api/v1/account/mfa/*");
/// # let _ = (password, grpc);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtectedRoute {
    method: Option<Method>,
    path: String,
    subtree: bool,
}

impl ProtectedRoute {
    /// The route `method` (`None` for any) on `pattern`, a path starting with `/`, with a
    /// trailing `/*` for a subtree.
    pub fn new(method: Option<Method>, pattern: &str) -> Result<Self, ConfigError> {
        let invalid = || ConfigError::InvalidProtectedRoute(pattern.to_owned());
        if !pattern.starts_with('/') || pattern.contains(['?', '#', ' ']) {
            return Err(invalid());
        }
        let (path, subtree) = match pattern.strip_suffix("/*") {
            Some(base) => (base, true),
            None => (pattern, false),
        };
        if path.contains('*') {
            return Err(invalid());
        }
        Ok(Self {
            method,
            path: normalized(path).into_owned(),
            subtree,
        })
    }

    /// The gRPC method `package.Service/Method` (a leading `/` is allowed), whatever the HTTP
    /// method it arrives with.
    pub fn grpc(method: &str) -> Result<Self, ConfigError> {
        let path = method.strip_prefix('/').unwrap_or(method);
        let well_formed = path
            .split_once('/')
            .is_some_and(|(service, name)| !service.is_empty() && !name.is_empty());
        if !well_formed || path.contains('*') {
            return Err(ConfigError::InvalidProtectedRoute(method.to_owned()));
        }
        Self::new(None, &format!("/{path}"))
    }

    /// Whether a request with this method and path is this route.
    pub fn matches(&self, method: &Method, path: &str) -> bool {
        self.covers_method(method) && self.covers_path(&normalized(path))
    }

    fn covers_method(&self, method: &Method) -> bool {
        match &self.method {
            None => true,
            Some(protected) => {
                protected == method || (*protected == Method::GET && *method == Method::HEAD)
            }
        }
    }

    fn covers_path(&self, path: &str) -> bool {
        match path.strip_prefix(self.path.as_str()) {
            Some("") => true,
            Some(rest) => self.subtree && rest.starts_with('/'),
            None => false,
        }
    }
}

/// `path` percent-decoded, with repeated slashes made one and a trailing slash dropped (`/`
/// becomes empty, the root's own form here).
fn normalized(path: &str) -> Cow<'_, str> {
    if is_normal(path.as_bytes()) {
        return Cow::Borrowed(path);
    }
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    let mut out = String::with_capacity(decoded.len());
    for segment in decoded.split('/').filter(|segment| !segment.is_empty()) {
        out.push('/');
        out.push_str(segment);
    }
    Cow::Owned(out)
}

/// Whether `path` is its own normal form: nothing percent-encoded, no repeated or trailing
/// slash. One pass over the bytes, as every impersonated request is checked.
fn is_normal(path: &[u8]) -> bool {
    let mut previous = 0;
    for &byte in path {
        if byte == b'%' || (byte == b'/' && previous == b'/') {
            return false;
        }
        previous = byte;
    }
    previous != b'/'
}

impl FromStr for ProtectedRoute {
    type Err = ConfigError;

    /// Reads `METHOD /path`, as in `POST /api/v1/account/password` or `* /admin/*`.
    fn from_str(route: &str) -> Result<Self, Self::Err> {
        let invalid = || ConfigError::InvalidProtectedRoute(route.to_owned());
        let (method, pattern) = route.trim().split_once(' ').ok_or_else(invalid)?;
        let method = match method {
            "*" => None,
            name => Some(Method::from_bytes(name.as_bytes()).map_err(|_| invalid())?),
        };
        Self::new(method, pattern.trim_start())
    }
}

impl fmt::Display for ProtectedRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let method = self.method.as_ref().map_or("*", Method::as_str);
        let path = if self.path.is_empty() && !self.subtree {
            "/"
        } else {
            &self.path
        };
        let subtree = if self.subtree { "/*" } else { "" };
        write!(f, "{method} {path}{subtree}")
    }
}

/// The routes a layer protects; empty unless configured.
#[derive(Clone, Debug, Default)]
pub(crate) struct ProtectedRoutes(Vec<ProtectedRoute>);

impl ProtectedRoutes {
    pub(crate) fn add(&mut self, route: ProtectedRoute) {
        self.0.push(route);
    }

    /// Whether a request with this method and path is one of the routes.
    pub(crate) fn contains(&self, method: &Method, path: &str) -> bool {
        if self.0.is_empty() {
            return false;
        }
        let path = normalized(path);
        self.0
            .iter()
            .any(|route| route.covers_method(method) && route.covers_path(&path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(text: &str) -> ProtectedRoute {
        text.parse().unwrap()
    }

    #[test]
    fn an_exact_route_matches_its_method_and_path_only() {
        let password = route("POST /account/password");
        assert!(password.matches(&Method::POST, "/account/password"));
        assert!(!password.matches(&Method::GET, "/account/password"));
        assert!(!password.matches(&Method::POST, "/account/password/reset"));
        assert!(!password.matches(&Method::POST, "/account/passwords"));
    }

    #[test]
    fn a_subtree_covers_its_base_and_everything_below() {
        let mfa = route("* /account/mfa/*");
        for path in ["/account/mfa", "/account/mfa/", "/account/mfa/totp/enrol"] {
            assert!(mfa.matches(&Method::DELETE, path), "{path}");
        }
        assert!(!mfa.matches(&Method::GET, "/account/mfa-help"));
        assert!(!mfa.matches(&Method::GET, "/account"));
    }

    #[test]
    fn other_spellings_of_a_path_are_still_matched() {
        let password = route("POST /account/password");
        for path in [
            "/account//password",
            "/account/password/",
            "/%61ccount/password",
            "//account/password",
        ] {
            assert!(password.matches(&Method::POST, path), "{path}");
        }
    }

    #[test]
    fn get_covers_head() {
        let export = route("GET /export");
        assert!(export.matches(&Method::HEAD, "/export"));
        assert!(!route("HEAD /export").matches(&Method::GET, "/export"));
    }

    #[test]
    fn grpc_methods_match_their_path_with_any_http_method() {
        let change = ProtectedRoute::grpc("acme.Accounts/ChangePassword").unwrap();
        assert!(change.matches(&Method::POST, "/acme.Accounts/ChangePassword"));
        assert!(!change.matches(&Method::POST, "/acme.Accounts/GetProfile"));
        assert_eq!(
            ProtectedRoute::grpc("/acme.Accounts/ChangePassword"),
            Ok(change)
        );
    }

    #[test]
    fn malformed_routes_are_refused() {
        for text in [
            "",
            "POST",
            "POST account",
            "POST /a/*/b",
            "POST /a?x=1",
            "BAD\tMETHOD /a",
        ] {
            assert!(text.parse::<ProtectedRoute>().is_err(), "{text:?}");
        }
        for grpc in ["Service", "/Method", "pkg.Service/", "pkg.*/M"] {
            assert!(ProtectedRoute::grpc(grpc).is_err(), "{grpc:?}");
        }
    }

    #[test]
    fn routes_read_back_as_written() {
        for text in ["POST /account/password", "* /admin/*", "GET /", "* /*"] {
            assert_eq!(route(text).to_string(), text);
        }
    }

    #[test]
    fn the_root_subtree_covers_every_path() {
        let everything = route("* /*");
        assert!(everything.matches(&Method::GET, "/"));
        assert!(everything.matches(&Method::GET, "/anything/at/all"));
    }
}
