//! Impersonation JWTs: HS256 tokens (or EdDSA and ES256 ones), their claims and the
//! keys that sign and verify them.

mod algorithm;
mod cache;
mod claims;
mod hs256;
mod keys;
mod revocations;
mod validity;
mod verifier;

pub use algorithm::JwtAlgorithm;
pub(crate) use cache::Verified;
pub use claims::{ActorClaim, ImpersonationClaims};
pub use keys::{JwtError, JwtKeys};
pub(crate) use revocations::JwtBook;
pub use revocations::{JwtIdentity, JwtRevocations, MintedJwt, UserRevocation};
