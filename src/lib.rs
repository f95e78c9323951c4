//! Impersonation for tower services: let an organization admin act as another user of the
//! organization, safely, in axum, hyper and tonic apps alike.
//!
//! An admin creates a workspace **impersonation token** (`GINT:IMP:<uuid>`) with optional role
//! scopes (`*:*` or `default` read-write, `read:*` read-only, `read:cards` one resource), then calls
//! the API as any member:
//!
//! ```text
//! Authorization: Bearer GINT:IMP:9e0b2b17-5a76-44ef-b726-09d556b04318
//! X-Guru-UserID: ada@acme.test
//! ```
//!
//! or with the user after the token: `Authorization: Bearer GINT:IMP:<uuid>:ada@acme.test`.
//!
//! [`ImpersonationLayer`] recognises the credential, looks the token up by the SHA-256 digest of
//! its secret in a [`TokenStore`], resolves the user through a [`UserDirectory`], checks the
//! token's [`Roles`] against the request, and hands the inner service an [`ImpersonatedUser`]
//! extension. Requests without an impersonation credential pass through untouched; a user header
//! without one is refused as spoofing.
//!
//! ```
//! use std::convert::Infallible;
//! use http::{Request, Response};
//! use tower::{ServiceBuilder, service_fn};
//! use tower_impersonation::{ImpersonatedUser, ImpersonationLayer, MemoryStore, StaticDirectory};
//!
//! let directory = StaticDirectory::from_json(r#"{"organizations": [{"id": "acme",
//!     "members": [{"id": "u1", "email": "ada@acme.test", "name": "Ada"}]}]}"#).unwrap();
//! let service = ServiceBuilder::new()
//!     .layer(ImpersonationLayer::new(MemoryStore::new(), directory))
//!     .service(service_fn(|request: Request<String>| async move {
//!         let who = request.extensions().get::<ImpersonatedUser>().map(|u| u.user().name.clone());
//!         Ok::<_, Infallible>(Response::new(who.unwrap_or_default()))
//!     }));
//! # let _ = service;
//! ```
//!
//! Rejections are short JSON bodies (`{"error": ..., "error_description": ...}`) with the statuses
//! of RFC 6750, or gRPC status codes for gRPC requests.
//!
//! Every credential the layer accepts or refuses, and every token or JWT an admin creates or ends
//! through the services, is told to an [`Audit`]: by default [`TracingAudit`], a `tracing` event
//! of target `tower_impersonation::audit` that never holds a credential;
//! [`ImpersonationBuilder::audit`] and each service's `audit` set one of the app's own (an
//! `Arc<dyn Audit>` shares one between them).
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
mod middleware;
mod record;
mod rejection;
mod role;
mod time;
mod token;
mod usage;

pub mod directory;
pub mod jwt;
pub mod policy;
pub mod services;
pub mod store;

pub use audit::{Audit, AuditEvent, AuditOutcome, TracingAudit};
pub use body::ResponseBody;
pub use credential::MAX_USER_LEN;
pub use directory::{StaticDirectory, User, UserDirectory};
pub use error::ConfigError;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use extract::NotImpersonated;
pub use impersonated::{Actor, CredentialSource, ImpersonatedUser};
pub use middleware::{
    DEFAULT_USER_HEADER, Impersonation, ImpersonationBuilder, ImpersonationLayer, ResponseFuture,
};
pub use record::TokenRecord;
pub use rejection::{Rejection, RejectionKind};
pub use role::{Access, Action, Resource, Role, RoleParseError, Roles};
pub use store::{MemoryStore, StoreError, TokenStore};
pub use time::Timestamp;
pub use token::{
    DEFAULT_PREFIX, DigestHashBuilder, DigestHasher, LastFour, TokenDigest, TokenPrefix,
    TokenSecret,
};
pub use usage::{LastUsed, USE_RECORDING_INTERVAL};
