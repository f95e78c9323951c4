//! The audit trail: every impersonation credential the layer accepts or refuses, and every
//! impersonation token or JWT an admin creates or ends through the crate's services, is told to an
//! [`Audit`]. The default, [`TracingAudit`], makes each a `tracing` event of target
//! `tower_impersonation::audit`; an app that writes its audit trail itself implements [`Audit`]
//! and hands it to [`ImpersonationBuilder::audit`](crate::ImpersonationBuilder::audit) and to each
//! service's `audit`.

use std::{fmt, sync::Arc};

use http::{Extensions, Method, Uri, request::Parts};
use uuid::Uuid;

use crate::{
    impersonated::{Actor, ImpersonatedUser},
    rejection::Rejection,
};

/// Where the layer reports each decision it makes on an impersonation credential, and the
/// services each token or JWT an admin creates or ends.
///
/// `record` runs on the request's task: for the layer before the inner service sees the
/// request, once per request that carries a credential; for a service once the change is
/// stored, before it answers. It must not block. Queue or buffer what it writes.
///
/// Any `Fn(&AuditEvent<'_>)` that is `Send + Sync + 'static` is an `Audit`:
///
/// ```
/// use tower_impersonation::{AuditEvent, ImpersonationLayer, MemoryStore, AuditOutcome, StaticDirectory};
///
/// let directory = StaticDirectory::from_json(r#"{"organizations": []}"#).unwrap();
/// let layer = ImpersonationLayer::builder(MemoryStore::new(), directory)
///     .audit(|event: &AuditEvent<'_>| {
///         if let AuditOutcome::Refused(rejection) = event.outcome {
///             eprintln!("refused {} {}: {}", event.method, event.uri.path(), rejection.error_code());
///         }
///     })
///     .build();
/// # let _ = layer;
/// ```
pub trait Audit: Send + Sync + 'static {
    /// Records one decision.
    fn record(&self, event: &AuditEvent<'_>);

    /// The audit as the layer and the services keep it, shared. An `Arc<dyn Audit>` is kept as
    /// it is, so one given to all of them is reached through one pointer, not an `Arc` around
    /// it; a `Box<dyn Audit>` is moved into an `Arc`. There is rarely a reason to override it.
    fn into_shared(self) -> Arc<dyn Audit>
    where
        Self: Sized,
    {
        Arc::new(self)
    }
}

impl<F> Audit for F
where
    F: Fn(&AuditEvent<'_>) + Send + Sync + 'static,
{
    fn record(&self, event: &AuditEvent<'_>) {
        self(event);
    }
}

/// A boxed `Audit`, for apps that choose theirs at run time.
impl Audit for Box<dyn Audit> {
    fn record(&self, event: &AuditEvent<'_>) {
        (**self).record(event);
    }

    fn into_shared(self) -> Arc<dyn Audit> {
        Arc::from(self)
    }
}

/// A shared `Audit`, for an app that gives one to the layer and to the services.
impl Audit for Arc<dyn Audit> {
    fn record(&self, event: &AuditEvent<'_>) {
        (**self).record(event);
    }

    fn into_shared(self) -> Arc<dyn Audit> {
        self
    }
}

/// One decision of the layer, or one change an admin made through a service, with the request
/// it was made on. It never holds a credential.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct AuditEvent<'a> {
    /// Accepted, and as whom; refused, and why; or what an admin created or ended.
    pub outcome: AuditOutcome<'a>,
    /// The request's method.
    pub method: &'a Method,
    /// The request's URI.
    pub uri: &'a Uri,
    /// The request's extensions, as outer layers left them (a client address, a request id).
    pub extensions: &'a Extensions,
}

impl<'a> AuditEvent<'a> {
    /// The event of `outcome` on a request with this method, URI and extensions; for testing
    /// an [`Audit`] of one's own.
    pub fn new(
        outcome: AuditOutcome<'a>,
        method: &'a Method,
        uri: &'a Uri,
        extensions: &'a Extensions,
    ) -> Self {
        Self {
            outcome,
            method,
            uri,
            extensions,
        }
    }

    pub(crate) fn of(outcome: AuditOutcome<'a>, parts: &'a Parts) -> Self {
        Self::new(outcome, &parts.method, &parts.uri, &parts.extensions)
    }
}

/// What the layer decided, or what an admin did through a service.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum AuditOutcome<'a> {
    /// The credential was accepted: the request acts as this user.
    Accepted(&'a ImpersonatedUser),
    /// The credential was refused with this answer.
    Refused(&'a Rejection),
    /// An admin created an impersonation token
    /// ([`TokenService`](crate::services::TokenService)).
    TokenCreated {
        /// The admin's user id.
        admin: &'a str,
        /// The organization the token acts in.
        organization: &'a str,
        /// The token's id (never its secret).
        token_id: Uuid,
    },
    /// An admin revoked an impersonation token.
    TokenRevoked {
        /// The admin's user id.
        admin: &'a str,
        /// The organization the token acted in.
        organization: &'a str,
        /// The token's id.
        token_id: Uuid,
    },
    /// An admin was issued an impersonation JWT for a user
    /// ([`OrganizationImpersonationService`](crate::services::OrganizationImpersonationService)).
    JwtIssued {
        /// The admin's user id.
        admin: &'a str,
        /// The organization the JWT acts in.
        organization: &'a str,
        /// The impersonated user's id.
        user: &'a str,
        /// The JWT's `jti` (never the JWT).
        jti: Uuid,
        /// The reason the admin gave, if any.
        reason: Option<&'a str>,
    },
    /// An admin ended one impersonation JWT.
    JwtRevoked {
        /// The admin's user id.
        admin: &'a str,
        /// The organization the JWT acted in.
        organization: &'a str,
        /// The JWT's `jti`.
        jti: Uuid,
    },
    /// An admin ended every impersonation JWT of a user in the organization issued until then.
    UserJwtsRevoked {
        /// The admin's user id.
        admin: &'a str,
        /// The organization the JWTs acted in.
        organization: &'a str,
        /// The impersonated user's id.
        user: &'a str,
    },
}

impl AuditOutcome<'_> {
    /// How audit lines name the outcome: `"accepted"`, `"refused"`, `"token_created"`,
    /// `"token_revoked"`, `"jwt_issued"`, `"jwt_revoked"` or `"user_jwts_revoked"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            AuditOutcome::Accepted(_) => "accepted",
            AuditOutcome::Refused(_) => "refused",
            AuditOutcome::TokenCreated { .. } => "token_created",
            AuditOutcome::TokenRevoked { .. } => "token_revoked",
            AuditOutcome::JwtIssued { .. } => "jwt_issued",
            AuditOutcome::JwtRevoked { .. } => "jwt_revoked",
            AuditOutcome::UserJwtsRevoked { .. } => "user_jwts_revoked",
        }
    }
}

/// The default [`Audit`]: each decision and each admin change is a `tracing` event of target
/// `tower_impersonation::audit`, `WARN` for a refusal, `INFO` for the rest.
///
/// An accepted event has the fields `outcome`, `actor` (the admin's user id, when known), `user`,
/// `organization` (when known), `token_id` and `narrowed` (for an impersonation token: whether
/// it may act as some members only), `source`, `method` and `path`. A refused one has
/// `outcome`, `reason` ([`Rejection::reason`]), `status`, `method` and `path`.
/// Every value of these is a string slice or a number, so a subscriber records each as it is:
/// nothing is formatted through `Display` or `Debug` on the request's thread. An admin's change
/// has `outcome` (as [`AuditOutcome::as_str`] names it), `admin` and `organization`, and
/// `token_id`, `jti`, `user` and `reason` where the outcome has them.
#[derive(Clone, Copy, Debug, Default)]
pub struct TracingAudit;

impl Audit for TracingAudit {
    fn record(&self, event: &AuditEvent<'_>) {
        match event.outcome {
            AuditOutcome::Accepted(user) => trace_accepted(user, event),
            AuditOutcome::Refused(rejection) => trace_refused(rejection, event),
            admin_change => trace_admin_change(&admin_change),
        }
    }
}

/// The target of every event `TracingAudit` makes.
const TARGET: &str = "tower_impersonation::audit";

fn trace_accepted(user: &ImpersonatedUser, event: &AuditEvent<'_>) {
    // The token's id is written into a buffer on the stack.
    let mut token_id = Uuid::encode_buffer();
    let token_id = user
        .actor()
        .token_id()
        .map(|id| &*id.hyphenated().encode_lower(&mut token_id));
    let narrowed = match user.actor() {
        Actor::Token(record) => Some(record.is_narrowed()),
        _ => None,
    };
    tracing::info!(
        target: TARGET,
        outcome = "accepted",
        actor = user.actor().user_id(),
        user = user.user().id.as_str(),
        organization = user.organization(),
        token_id,
        narrowed,
        source = user.source().as_str(),
        method = event.method.as_str(),
        path = event.uri.path(),
    );
}

fn trace_refused(rejection: &Rejection, event: &AuditEvent<'_>) {
    tracing::warn!(
        target: TARGET,
        outcome = "refused",
        reason = rejection.reason(),
        status = rejection.status().as_u16(),
        method = event.method.as_str(),
        path = event.uri.path(),
    );
}

/// The events the services made before they had an [`Audit`], field for field.
fn trace_admin_change(outcome: &AuditOutcome<'_>) {
    let name = outcome.as_str();
    match *outcome {
        AuditOutcome::TokenCreated {
            admin,
            organization,
            token_id,
        }
        | AuditOutcome::TokenRevoked {
            admin,
            organization,
            token_id,
        } => tracing::info!(
            target: TARGET,
            outcome = name, token_id = %token_id, organization, admin,
        ),
        AuditOutcome::JwtIssued {
            admin,
            organization,
            user,
            jti,
            reason,
        } => tracing::info!(
            target: TARGET,
            outcome = name, admin, user = %user, organization, reason, jti = %jti,
        ),
        AuditOutcome::JwtRevoked {
            admin,
            organization,
            jti,
        } => tracing::info!(target: TARGET, outcome = name, admin, organization, jti = %jti),
        AuditOutcome::UserJwtsRevoked {
            admin,
            organization,
            user,
        } => tracing::info!(target: TARGET, outcome = name, admin, user, organization),
        AuditOutcome::Accepted(_) | AuditOutcome::Refused(_) => {}
    }
}

/// The audit of the layer or of a service, its type erased so theirs does not name it; shared by
/// a service's clones.
#[derive(Clone)]
pub(crate) struct AuditSink(Arc<dyn Audit>);

impl AuditSink {
    pub(crate) fn new(audit: impl Audit) -> Self {
        Self(audit.into_shared())
    }

    pub(crate) fn record(&self, event: &AuditEvent<'_>) {
        self.0.record(event);
    }
}

impl Default for AuditSink {
    fn default() -> Self {
        Self::new(TracingAudit)
    }
}

impl fmt::Debug for AuditSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuditSink")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn a_shared_audit_is_kept_as_it_is_not_wrapped_again() {
        let shared: Arc<dyn Audit> = Arc::new(TracingAudit);
        let sink = AuditSink::new(Arc::clone(&shared));
        assert!(Arc::ptr_eq(&sink.0, &shared));
    }

    #[test]
    fn a_boxed_audit_is_moved_into_the_sink_and_hears_each_event() {
        let heard = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&heard);
        let boxed: Box<dyn Audit> = Box::new(move |_: &AuditEvent<'_>| {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        let sink = AuditSink::new(boxed);
        let (parts, ()) = http::Request::new(()).into_parts();
        let outcome = AuditOutcome::TokenRevoked {
            admin: "admin-1",
            organization: "org",
            token_id: Uuid::nil(),
        };
        sink.record(&AuditEvent::of(outcome, &parts));
        assert_eq!(heard.load(Ordering::Relaxed), 1);
    }
}
