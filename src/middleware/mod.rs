//! The impersonation middleware: [`ImpersonationLayer`] (`layer.rs`, configured by `builder.rs`)
//! builds [`Impersonation`] (`service.rs`), whose calls return [`ResponseFuture`] (`future.rs`);
//! the checks behind a credential live in `authorize/`.
//!
//! Requests without a credential never allocate or box. Requests with one are decided at once
//! when the store and directory can answer without waiting (memory, a cache hit), and box one
//! future only when a backend has to be waited for.

mod authorize;
mod builder;
mod future;
mod layer;
mod service;

pub use crate::body::ResponseBody;
pub use builder::{DEFAULT_USER_HEADER, ImpersonationBuilder};
pub use future::ResponseFuture;
pub use layer::ImpersonationLayer;
pub use service::Impersonation;
