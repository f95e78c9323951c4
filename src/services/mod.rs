//! Companion services: issue, list and revoke Guru-style workspace impersonation tokens
//! ([`TokenService`]), mint, list and end impersonation JWTs through the JSON:API impersonation
//! endpoint ([`OrganizationImpersonationService`]), and publish the public keys that verify those
//! JWTs ([`JwksService`]).
//!
//! The first two do not authenticate callers: the host app's own authentication puts a [`Caller`]
//! in the request extensions first (a request without one is 401, a caller who is not an admin
//! of the organization 403, an impersonated request 403). Each answers with
//! `Error = Infallible`, so axum mounts it like any tower service.
//!
//! # Mounting
//!
//! Nest each service at its path, with axum's `nest_service` or any router that strips the
//! prefix: below its path, the token service answers `POST /` and `GET /` (create, list) and
//! `DELETE /{id}` (revoke, where the id is a token's UUID), and the JWT service
//! `/{org}/impersonation[/{jti}]`. A service handed the whole path instead (axum's
//! `route_service`, a gateway's own routing) finds its operations below its `base_path`, by
//! default `/api/v1/api-tokens/impersonation` and `/api/v2/organizations`; set it to where the
//! service is mounted.
//!
//! ```
//! # #[cfg(feature = "axum")]
//! # fn app() -> Result<axum::Router, tower_impersonation::ConfigError> {
//! use axum::Router;
//! use tower_impersonation::{
//!     MemoryStore, StaticDirectory, jwt::JwtKeys,
//!     services::{OrganizationImpersonationService, TokenService},
//! };
//!
//! let (store, directory) = (MemoryStore::new(), StaticDirectory::default());
//! let keys = JwtKeys::hs256(b"a secret of at least thirty-two bytes")?;
//! let tokens = TokenService::new(store.clone(), directory.clone());
//! let jwts = OrganizationImpersonationService::new(directory, keys, store);
//! let app: Router = Router::new()
//!     .nest_service("/admin/impersonation-tokens", tokens) // POST, GET, DELETE /{id} below it
//!     .nest_service("/api/v2/organizations", jwts);        // /{org}/impersonation[/{jti}]
//! # Ok(app) }
//! ```

mod caller;
mod detached;
mod json;
mod jwks;
mod members;
mod organization;
mod reply;
mod router;
mod tokens;

pub use caller::Caller;
pub use jwks::JwksService;
pub use organization::OrganizationImpersonationService;
pub use reply::ServiceFuture;
pub use tokens::{DEFAULT_MAX_TOKENS_PER_ORGANIZATION, TokenService};

/// Largest request body the services read unless configured otherwise: 16 KiB.
pub const DEFAULT_BODY_LIMIT: usize = 16 * 1024;
