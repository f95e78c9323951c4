//! Policies: which scope a request needs ([`AccessPolicy`]), who may act as whom
//! ([`ImpersonationPolicy`]), and which requests are never made while impersonating
//! ([`ProtectedRoute`]).

mod access;
mod impersonation;
mod protected;

pub(crate) use access::is_grpc;
pub use access::{AccessPolicy, GrpcPolicy, MixedPolicy, PathPolicy, RequestHead, RequiredAccess};
pub use impersonation::{AnyMember, DenyAdmins, ImpersonationPolicy, deny_admins};
pub use protected::ProtectedRoute;
pub(crate) use protected::ProtectedRoutes;
