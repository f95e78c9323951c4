//! The integration suites, one binary. The suites that need process-wide state of their own (the
//! global allocator, tracing's callsite cache and captured logs) are binaries apart:
//! `tests/allocations.rs`, `tests/audit_events.rs`, `tests/no_secrets_in_logs.rs`.

#[path = "../common/mod.rs"]
mod common;

mod abandoned_requests;
mod axum_layer;
#[cfg(feature = "axum")]
mod axum_services;
mod fuzz_regressions;
mod grant;
mod grpc_layer;
mod hyper_layer;
mod properties;
mod redis_faults;
mod redis_instances;
mod security_claims;
mod services;
mod store_faults;
mod stores;
