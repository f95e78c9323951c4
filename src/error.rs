//! Configuration errors: a setting that cannot work is refused when it is made, never at request time.

use std::fmt;

/// A setting was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The token prefix is empty, longer than 32 bytes, or not visible ASCII.
    InvalidTokenPrefix,
    /// The user header name is not a valid HTTP header name.
    InvalidHeaderName(String),
    /// A JWT secret is shorter than 32 bytes.
    WeakJwtSecret {
        /// The secret's length in bytes.
        len: usize,
    },
    /// No JWT key was given, or a key id was given twice.
    InvalidJwtKeys(&'static str),
    /// A JWT key (a PEM private key, a JWK Set) could not be read or used; says why.
    InvalidJwtKey(String),
    /// jsonwebtoken's crypto backend could not be selected.
    CryptoBackend(&'static str),
    /// A path prefix does not start with `/`.
    InvalidPathPrefix(String),
    /// A table prefix is not 1 to 32 lowercase ASCII letters, digits and underscores starting
    /// with a letter or underscore.
    InvalidTablePrefix(String),
    /// A protected route is not `METHOD /path` (a trailing `/*` for a subtree, `*` for any
    /// method), or a gRPC method is not `package.Service/Method`.
    InvalidProtectedRoute(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::InvalidTokenPrefix => {
                f.write_str("token prefix must be 1 to 32 visible ASCII characters")
            }
            ConfigError::InvalidHeaderName(name) => {
                write!(f, "{name:?} is not a valid HTTP header name")
            }
            ConfigError::WeakJwtSecret { len } => write!(
                f,
                "JWT secret is {len} bytes long; HS256 needs at least 32 random bytes"
            ),
            ConfigError::InvalidJwtKeys(why) => write!(f, "invalid JWT keys: {why}"),
            ConfigError::InvalidJwtKey(why) => write!(f, "invalid JWT key: {why}"),
            ConfigError::CryptoBackend(why) => write!(f, "JWT crypto backend: {why}"),
            ConfigError::InvalidPathPrefix(prefix) => {
                write!(f, "path prefix {prefix:?} must start with '/'")
            }
            ConfigError::InvalidTablePrefix(prefix) => write!(
                f,
                "table prefix {prefix:?} must be 1 to 32 lowercase ASCII letters, digits and \
                 underscores, not starting with a digit"
            ),
            ConfigError::InvalidProtectedRoute(route) => write!(
                f,
                "protected route {route:?} must be `METHOD /path`, with `*` for any method and \
                 a trailing `/*` for a subtree, or a gRPC method `package.Service/Method`"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}
