//! The signature algorithms impersonation JWTs are signed with.

use std::{fmt, str::FromStr};

use jsonwebtoken::Algorithm;

/// A JWT signature algorithm `JwtKeys` signs and verifies with: HS256 (a shared
/// secret), or EdDSA (Ed25519) and ES256 (ECDSA on P-256), whose public keys verify without being
/// able to sign.
///
/// Parses from and displays as the JOSE names (`HS256`, `EdDSA`, `ES256`, RFC 7518 and 8037).
///
/// ```
/// use tower_impersonation::jwt::JwtAlgorithm;
///
/// assert_eq!("EdDSA".parse::<JwtAlgorithm>()?, JwtAlgorithm::EdDsa);
/// assert_eq!(JwtAlgorithm::Es256.to_string(), "ES256");
/// assert!("RS256".parse::<JwtAlgorithm>().is_err());
/// # Ok::<_, String>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JwtAlgorithm {
    /// HMAC with SHA-256: one secret signs and verifies.
    #[default]
    Hs256,
    /// EdDSA with Ed25519 (RFC 8037).
    EdDsa,
    /// ECDSA on P-256 with SHA-256.
    Es256,
}

impl JwtAlgorithm {
    /// The JOSE name, as in a JWT header's `alg`.
    pub fn name(self) -> &'static str {
        match self {
            JwtAlgorithm::Hs256 => "HS256",
            JwtAlgorithm::EdDsa => "EdDSA",
            JwtAlgorithm::Es256 => "ES256",
        }
    }

    /// jsonwebtoken's name for it.
    pub(super) fn jsonwebtoken(self) -> Algorithm {
        match self {
            JwtAlgorithm::Hs256 => Algorithm::HS256,
            JwtAlgorithm::EdDsa => Algorithm::EdDSA,
            JwtAlgorithm::Es256 => Algorithm::ES256,
        }
    }

    /// Ours of jsonwebtoken's, if it is one of ours.
    pub(super) fn from_jsonwebtoken(algorithm: Algorithm) -> Option<Self> {
        match algorithm {
            Algorithm::HS256 => Some(JwtAlgorithm::Hs256),
            Algorithm::EdDSA => Some(JwtAlgorithm::EdDsa),
            Algorithm::ES256 => Some(JwtAlgorithm::Es256),
            _ => None,
        }
    }
}

impl fmt::Display for JwtAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for JwtAlgorithm {
    type Err = String;

    /// The JOSE name exactly (`HS256`, `EdDSA`, `ES256`).
    fn from_str(name: &str) -> Result<Self, String> {
        [
            JwtAlgorithm::Hs256,
            JwtAlgorithm::EdDsa,
            JwtAlgorithm::Es256,
        ]
        .into_iter()
        .find(|algorithm| algorithm.name() == name)
        .ok_or_else(|| format!("{name:?} is not one of HS256, EdDSA, ES256"))
    }
}
