//! The impersonation middleware: [`ImpersonationLayer`] builds [`Impersonation`], whose calls return
//! [`ResponseFuture`].

mod authorize;
mod builder;
mod future;
mod layer;
mod service;

pub use builder::{DEFAULT_USER_HEADER, ImpersonationBuilder};
pub use future::ResponseFuture;
pub use layer::ImpersonationLayer;
pub use service::Impersonation;
