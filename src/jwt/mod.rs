//! Impersonation JWTs: the seed's HS256 tokens, their claims and the keys that sign and verify them.

mod cache;
mod claims;
mod hs256;
mod keys;

pub(crate) use cache::Verified;
pub use claims::{ActorClaim, ImpersonationClaims};
pub use keys::{JwtError, JwtKeys};
