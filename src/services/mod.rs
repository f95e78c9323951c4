//! Companion services: issue, list and revoke impersonation tokens ([`TokenService`], seed 003),
//! mint impersonation JWTs for organization admins ([`OrganizationImpersonationService`],
//! seed 000), and publish the public keys that verify those JWTs ([`JwksService`]).
//!
//! The first two do not authenticate callers: the host app's own authentication puts a [`Caller`]
//! in the request extensions first. Each answers with `Error = Infallible`, so axum mounts it with
//! `route_service` and a gateway composes it like any tower service.

mod caller;
mod json;
mod jwks;
mod members;
mod organization;
mod reply;
mod tokens;

pub use caller::Caller;
pub use jwks::JwksService;
pub use organization::OrganizationImpersonationService;
pub use reply::ServiceFuture;
pub use tokens::{DEFAULT_MAX_TOKENS_PER_ORGANIZATION, TokenService};

/// Largest request body the services read unless configured otherwise: 16 KiB.
pub const DEFAULT_BODY_LIMIT: usize = 16 * 1024;
