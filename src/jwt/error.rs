//! Why a JWT was refused.

use std::fmt;

use jsonwebtoken::errors::ErrorKind;

/// Why a JWT was refused. The layer answers every one of them with 401 `invalid_token`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwtError {
    /// Not a JWT, or claims of the wrong shape.
    Malformed,
    /// A header naming an algorithm no configured key uses. A header jsonwebtoken cannot read at
    /// all, such as one naming `none`, is `Malformed`.
    WrongAlgorithm,
    /// No configured key of the header's algorithm verifies the signature, or the `kid` is
    /// unknown or names a key of another algorithm.
    BadSignature,
    /// Past `exp`, beyond the leeway.
    Expired,
    /// Before `nbf`, beyond the leeway.
    NotYetValid,
    /// An `iat` further in the future than the leeway.
    IssuedInTheFuture,
    /// An `exp` further ahead than the maximum lifetime
    /// ([`JwtKeys::with_max_lifetime`](super::JwtKeys::with_max_lifetime)).
    ExpiresTooLate,
    /// A header with `crit`: it names extensions the JWT must not be used without, and this crate
    /// understands none (RFC 7515 §4.1.11).
    CriticalExtension,
    /// Signing failed, or the keys hold no private key.
    Signing(String),
}

impl fmt::Display for JwtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwtError::Malformed => f.write_str("malformed JWT"),
            JwtError::WrongAlgorithm => f.write_str("JWT algorithm not accepted"),
            JwtError::BadSignature => f.write_str("JWT signature not valid"),
            JwtError::Expired => f.write_str("JWT expired"),
            JwtError::NotYetValid => f.write_str("JWT not valid yet"),
            JwtError::IssuedInTheFuture => f.write_str("JWT issued in the future"),
            JwtError::ExpiresTooLate => f.write_str("JWT expires too far ahead"),
            JwtError::CriticalExtension => f.write_str("JWT requires an extension not supported"),
            JwtError::Signing(why) => write!(f, "JWT could not be signed: {why}"),
        }
    }
}

impl std::error::Error for JwtError {}

/// The refusal a jsonwebtoken error stands for.
pub(super) fn classify(kind: &ErrorKind) -> JwtError {
    match kind {
        ErrorKind::InvalidSignature => JwtError::BadSignature,
        ErrorKind::ExpiredSignature => JwtError::Expired,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => JwtError::WrongAlgorithm,
        _ => JwtError::Malformed,
    }
}
