//! Impersonation for tower services: let an organization admin act as another member of the
//! organization through an HTTP or gRPC API, safely, in axum, hyper and tonic apps alike.
//!
//! An admin holds one of two credentials:
//!
//! - a Guru-style workspace **impersonation token**, `GINT:IMP:<uuid>`, created through
//!   [`TokenService`](services::TokenService) with optional role scopes (`*:*` or `default`
//!   read-write, `read:*` read-only, `read:cards` one resource), sent with the user to act as in
//!   a header or after the token:
//!
//!   ```text
//!   Authorization: Bearer GINT:IMP:9e0b2b17-5a76-44ef-b726-09d556b04318
//!   X-Guru-UserID: bob@acme.test
//!
//!   Authorization: Bearer GINT:IMP:9e0b2b17-5a76-44ef-b726-09d556b04318:bob@acme.test
//!   ```
//!
//! - an **impersonation JWT** for one member, minted by
//!   [`OrganizationImpersonationService`](services::OrganizationImpersonationService), the
//!   JSON:API impersonation endpoint (`POST /api/v2/organizations/{org}/impersonation`), and sent
//!   as `Authorization: Bearer <jwt>`.
//!
//! [`ImpersonationLayer`] recognises both, looks a token up by the SHA-256 digest of its secret in
//! a [`TokenStore`], resolves the user through a [`UserDirectory`], checks the credential's
//! [`Roles`] against the request, and hands the inner service an [`ImpersonatedUser`] extension.
//! Requests without an impersonation credential pass through untouched; a user header without one
//! is refused as spoofing.
//!
//! # The layer
//!
//! [`ImpersonationLayer::new`] takes a store and a directory; the inner service reads the
//! [`ImpersonatedUser`] from the request's extensions (with the `axum` feature, it is also an
//! extractor):
//!
//! ```
//! use std::convert::Infallible;
//! use http::{Request, Response};
//! use tower::{ServiceBuilder, service_fn};
//! use tower_impersonation::{ImpersonatedUser, ImpersonationLayer, MemoryStore, StaticDirectory};
//!
//! let directory = StaticDirectory::from_json(r#"{"organizations": [{"id": "acme",
//!     "members": [{"id": "b-1", "email": "bob@acme.test", "name": "Bob"}]}]}"#)?;
//! let service = ServiceBuilder::new()
//!     .layer(ImpersonationLayer::new(MemoryStore::new(), directory))
//!     .service(service_fn(|request: Request<String>| async move {
//!         let who = request.extensions().get::<ImpersonatedUser>().map(|u| u.user().name.clone());
//!         Ok::<_, Infallible>(Response::new(who.unwrap_or_default()))
//!     }));
//! # let _ = service;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`ImpersonationLayer::builder`] sets the rest: [`jwt`](ImpersonationBuilder::jwt) to accept
//! JWTs, [`access_policy`](ImpersonationBuilder::access_policy),
//! [`impersonation_policy`](ImpersonationBuilder::impersonation_policy) (who may be acted as;
//! [`policy::deny_admins`] keeps admins out of reach), [`protect`](ImpersonationBuilder::protect)
//! for requests never made while impersonating, [`require_impersonation`](ImpersonationBuilder::require_impersonation),
//! [`audit`](ImpersonationBuilder::audit), and the token prefix and user header:
//!
//! ```
//! use tower_impersonation::{
//!     ImpersonationLayer, MemoryStore, StaticDirectory, jwt::JwtKeys, policy::{PathPolicy, deny_admins},
//! };
//!
//! let layer = ImpersonationLayer::builder(MemoryStore::new(), StaticDirectory::default())
//!     .jwt(JwtKeys::hs256(b"a secret of at least thirty-two bytes")?)
//!     .access_policy(PathPolicy::new("/api/v2")?)
//!     .impersonation_policy(deny_admins())
//!     .protect("POST /api/v2/account/password".parse()?)
//!     .build();
//! # let _ = layer;
//! # Ok::<(), tower_impersonation::ConfigError>(())
//! ```
//!
//! # The access policy, and its `/api/v1` prefix
//!
//! A role names an action and a resource; the [`AccessPolicy`](policy::AccessPolicy) says which
//! the request needs. The default, [`PathPolicy`](policy::PathPolicy), takes the action from the
//! method (`GET`, `HEAD` and `OPTIONS` read, the rest write) and the resource from the first path
//! segment **after the prefix `/api/v1`**: `GET /api/v1/cards/7` needs `read:cards`. A path
//! outside the prefix names no resource, which only `read:*`, `write:*` and `*:*` roles allow: a
//! `read:whoami` token is allowed on `/api/v1/whoami` and refused (403 `insufficient_scope`) on
//! `/whoami`. An API elsewhere sets its prefix with [`PathPolicy::new`](policy::PathPolicy::new)
//! (`"/"` for the root). [`GrpcPolicy`](policy::GrpcPolicy) reads gRPC paths
//! (`/pkg.Service/GetThing` reads `pkg.Service`), and [`MixedPolicy`](policy::MixedPolicy)
//! serves both on one port.
//!
//! # The services, in axum
//!
//! [`TokenService`](services::TokenService) creates, lists and revokes tokens;
//! [`OrganizationImpersonationService`](services::OrganizationImpersonationService) mints, lists
//! and ends JWTs; [`JwksService`](services::JwksService) publishes the public keys of EdDSA and
//! ES256 JWTs. The first two do not authenticate anyone: they act for the
//! [`Caller`] that **the app's own authentication** puts in the request's
//! extensions, and refuse a request without one (401), a caller who is not an admin of the
//! organization (403), and any impersonated request (403). Nest each at its path, with
//! `nest_service`; under the token service's path it answers `POST`, `GET` and `DELETE /{id}`,
//! under the JWT service's `/{org}/impersonation[/{jti}]`:
//!
//! ```no_run
//! # #[cfg(feature = "axum")]
//! # fn app() -> Result<axum::Router, tower_impersonation::ConfigError> {
//! use axum::{Router, extract::Request, middleware::{self, Next}, response::Response, routing::get};
//! use tower_impersonation::{
//!     ImpersonatedUser, ImpersonationLayer, MemoryStore, StaticDirectory, jwt::JwtKeys,
//!     services::{Caller, JwksService, OrganizationImpersonationService, TokenService},
//! };
//!
//! /// The app's own authentication (sessions, API keys, OAuth...) says who calls.
//! async fn authenticate(mut request: Request, next: Next) -> Response {
//!     if request.headers().get("authorization").is_some_and(|key| key == "Bearer ada-key") {
//!         request.extensions_mut().insert(Caller::new("a-1", "acme", true));
//!     }
//!     next.run(request).await
//! }
//!
//! let (store, directory) = (MemoryStore::new(), StaticDirectory::default());
//! let keys = JwtKeys::hs256(b"a secret of at least thirty-two bytes")?;
//! let layer = ImpersonationLayer::builder(store.clone(), directory.clone()).jwt(keys.clone()).build();
//! let app = Router::new()
//!     .route("/api/v1/whoami", get(|user: ImpersonatedUser| async move { user.user().name.clone() }))
//!     .nest_service("/api/v1/api-tokens/impersonation", TokenService::new(store.clone(), directory.clone()))
//!     .nest_service("/api/v2/organizations", OrganizationImpersonationService::new(directory, keys.clone(), store))
//!     .route_service("/.well-known/jwks.json", JwksService::new(&keys))
//!     .layer(middleware::from_fn(authenticate))
//!     .layer(layer);
//! # Ok(app) }
//! ```
//!
//! A router that hands the services the whole path (axum's `route_service`, a gateway's own
//! routing) needs their `base_path` to be where they are mounted: by default
//! `/api/v1/api-tokens/impersonation` and `/api/v2/organizations`.
//!
//! Without the `axum` feature, `ImpersonatedUser` is no extractor, and axum's only complaint is
//! that the handler does not implement `Handler`: turn the feature on, or read
//! `request.extensions().get::<ImpersonatedUser>()`.
//!
//! # Stores
//!
//! | store | feature | for |
//! | --- | --- | --- |
//! | [`MemoryStore`] | | one process; tokens are lost when it stops |
//! | [`SqliteStore`] | `sqlite` | one instance, tokens on disk |
//! | [`PostgresStore`] | `postgres` | many instances; revocations announced by `LISTEN`/`NOTIFY` |
//! | [`RedisStore`] | `redis` | many instances; revocations announced by pub/sub |
//! | [`CachingStore`](store::CachingStore) | | any of them behind a memory cache |
//!
//! A durable store is opened, migrated (the SQL stores) and put behind a
//! [`CachingStore`](store::CachingStore), so lookups are answered from memory; a shared store's
//! cache also listens for revocations made on other instances, which then stop working here at
//! once (at worst within the cache lifetime, 5 seconds). Keep the listener as long as the store:
//!
//! ```no_run
//! # #[cfg(all(feature = "sqlite", feature = "postgres", feature = "redis"))]
//! # async fn stores() -> Result<(), tower_impersonation::StoreError> {
//! use tower_impersonation::{MemoryStore, store::{CachingStore, PostgresStore, RedisStore, SqliteStore}};
//!
//! let file = SqliteStore::open("impersonation.db").await?;
//! file.migrate().await?;
//! let one_instance = CachingStore::new(MemoryStore::new(), file);
//!
//! let postgres = PostgresStore::connect("postgres://app@db.internal/app").await?;
//! postgres.migrate().await?;
//! let shared = CachingStore::new(MemoryStore::new(), postgres);
//! let _revocations = shared.listen_for_revocations();
//!
//! let redis = RedisStore::connect("redis://cache.internal:6379/").await?;
//! let shared = CachingStore::new(MemoryStore::new(), redis);
//! let _revocations = shared.listen_for_revocations();
//! # let _ = one_instance; Ok(()) }
//! ```
//!
//! Give the layer and the services clones of the same store, so a revocation through a service
//! stops the layer accepting the token at once. A store of the app's own implements
//! [`TokenStore`].
//!
//! # JWT keys
//!
//! [`JwtKeys::hs256`](jwt::JwtKeys::hs256) signs and verifies with one secret, which every
//! verifying service then holds. With [`JwtKeys::ed25519_pem`](jwt::JwtKeys::ed25519_pem) or
//! [`JwtKeys::es256_pem`](jwt::JwtKeys::es256_pem), only the minting service holds the private
//! key; [`JwksService`](services::JwksService) publishes the public keys, and other services
//! verify with [`JwtKeys::from_jwks`](jwt::JwtKeys::from_jwks). Keys rotate by `kid`
//! ([`with_previous_keys`](jwt::JwtKeys::with_previous_keys)).
//!
//! # Answers
//!
//! Rejections are short JSON bodies (`{"error": ..., "error_description": ...}`) with the
//! statuses of RFC 6750: 400 `invalid_request` for a malformed request, 401 `invalid_token` for
//! a credential that is unknown, expired, revoked or badly signed, 403 `access_denied` for a user
//! out of reach and `insufficient_scope` for roles that do not allow the request, 503 with
//! `Retry-After` when the store or directory cannot answer. gRPC requests get gRPC status codes.
//!
//! Every credential the layer accepts or refuses, and every token or JWT an admin creates or ends
//! through the services, is told to an [`Audit`]: by default [`TracingAudit`], a `tracing` event
//! of target `tower_impersonation::audit` that never holds a credential;
//! [`ImpersonationBuilder::audit`] and each service's `audit` set one of the app's own (an
//! `Arc<dyn Audit>` shares one between them).
//!
//! # Features
//!
//! | feature | adds |
//! | --- | --- |
//! | `axum` | [`ImpersonatedUser`] as an axum extractor (401 [`NotImpersonated`] when absent), and as `Option<ImpersonatedUser>` |
//! | `sqlite` | [`SqliteStore`]; the SQLite library is compiled in |
//! | `postgres` | [`PostgresStore`] and its revocation feed |
//! | `redis` | [`RedisStore`] and its revocation feed |
//!
//! None is on by default. [`CachingStore::listen_for_revocations`]
//! comes with `postgres` or `redis`.
//!
//! SECURITY.md in the repository gives the threat model; BENCHMARKS.md what the layer costs.
//!
#![cfg_attr(feature = "sqlite", doc = "[`SqliteStore`]: store::SqliteStore")]
#![cfg_attr(
    not(feature = "sqlite"),
    doc = "[`SqliteStore`]: https://docs.rs/tower-impersonation/latest/tower_impersonation/store/type.SqliteStore.html"
)]
#![cfg_attr(feature = "postgres", doc = "[`PostgresStore`]: store::PostgresStore")]
#![cfg_attr(
    not(feature = "postgres"),
    doc = "[`PostgresStore`]: https://docs.rs/tower-impersonation/latest/tower_impersonation/store/type.PostgresStore.html"
)]
#![cfg_attr(feature = "redis", doc = "[`RedisStore`]: store::RedisStore")]
#![cfg_attr(
    not(feature = "redis"),
    doc = "[`RedisStore`]: https://docs.rs/tower-impersonation/latest/tower_impersonation/store/struct.RedisStore.html"
)]
#![cfg_attr(feature = "axum", doc = "[`NotImpersonated`]: NotImpersonated")]
#![cfg_attr(
    not(feature = "axum"),
    doc = "[`NotImpersonated`]: https://docs.rs/tower-impersonation/latest/tower_impersonation/struct.NotImpersonated.html"
)]
#![cfg_attr(
    any(feature = "redis", feature = "postgres"),
    doc = "[`CachingStore::listen_for_revocations`]: store::CachingStore::listen_for_revocations"
)]
#![cfg_attr(
    not(any(feature = "redis", feature = "postgres")),
    doc = "[`CachingStore::listen_for_revocations`]: https://docs.rs/tower-impersonation/latest/tower_impersonation/store/struct.CachingStore.html#method.listen_for_revocations"
)]
#![forbid(unsafe_code)]
#![deny(missing_docs, unreachable_pub)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod audit;
mod body;
mod credential;
mod error;
#[cfg(feature = "axum")]
mod extract;
mod impersonated;
mod record;
mod rejection;
mod role;
mod thread_copies;
mod time;
mod token;
mod usage;

pub mod directory;
pub mod jwt;
pub mod middleware;
pub mod policy;
pub mod services;
pub mod store;

pub use audit::{Audit, AuditEvent, AuditOutcome, TracingAudit};
pub use credential::MAX_USER_LEN;
pub use directory::{DirectoryError, StaticDirectory, User, UserDirectory};
pub use error::ConfigError;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use extract::NotImpersonated;
pub use impersonated::{Actor, CredentialSource, ImpersonatedUser};
pub use jwt::JwtKeys;
pub use middleware::{
    DEFAULT_USER_HEADER, Impersonation, ImpersonationBuilder, ImpersonationLayer,
};
pub use record::TokenRecord;
pub use rejection::{Rejection, RejectionKind};
pub use role::{Access, Action, Resource, Role, RoleParseError, Roles};
pub use services::{Caller, JwksService, OrganizationImpersonationService, TokenService};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use store::PostgresStore;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use store::RedisStore;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use store::SqliteStore;
pub use store::{CachingStore, MemoryStore, StoreError, TokenStore};
pub use time::Timestamp;
pub use token::{DEFAULT_PREFIX, LastFour, TokenDigest, TokenPrefix, TokenSecret};
pub use usage::{LastUsed, USE_RECORDING_INTERVAL};

/// The README's examples, compiled as doctests so that they cannot rot.
#[cfg(all(doctest, feature = "axum"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
