//! The example gateway's app and log, as a library: the binary in `main.rs` serves them as its
//! flags say, and the tests drive them in process.
//!
//! - [`app`]: the routes, the app's own authentication, and the impersonation layer in front of
//!   both; served within connection limits by [`app::serve`].
//! - [`audit_log`]: the log, audit events included, written one line per event by a writer
//!   thread so that no request waits on a write.

pub mod app;
pub mod audit_log;
