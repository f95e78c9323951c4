//! Impersonation JWTs: HS256 tokens (or EdDSA and ES256 ones), their claims and the
//! keys that sign and verify them.

mod algorithm;
mod cache;
mod claims;
mod crypto_backend;
mod error;
mod hs256;
mod jwks;
mod key_material;
mod keys;
mod known_header;
mod parts;
mod revocation_book;
#[cfg(test)]
mod test_fixtures;
mod validity;
mod verification;
mod verifier;

pub use algorithm::JwtAlgorithm;
pub(crate) use cache::Verified;
pub use claims::{ActorClaim, ImpersonationClaims};
pub use error::JwtError;
pub use keys::JwtKeys;
pub(crate) use revocation_book::{JwtBook, revocation_cutoff};
pub use revocation_book::{JwtIdentity, JwtRevocations, MintedJwt, UserRevocation};
