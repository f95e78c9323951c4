//! Policies: which scope a request needs ([`AccessPolicy`]) and who may act as whom
//! ([`ImpersonationPolicy`]).

mod access;
mod impersonation;

pub(crate) use access::is_grpc;
pub use access::{AccessPolicy, GrpcPolicy, MixedPolicy, PathPolicy, RequestHead, RequiredAccess};
pub use impersonation::{AnyMember, DenyAdmins, ImpersonationPolicy, deny_admins};
