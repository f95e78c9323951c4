//! The impersonation layer's decisions written as log lines straight from the layer's
//! [`Audit`]: the same lines the crate's `TracingAudit` events make through the subscriber, at a
//! third of the cost, as every impersonated request pays it. No `tracing` event is built, sent
//! through the subscriber's layers and taken apart again field by field; only the request's span
//! is looked up, for the client's address.

use tower_impersonation::{Audit, AuditEvent, AuditOutcome, ImpersonatedUser};
use tracing::{Level, dispatcher};
use tracing_subscriber::{Registry, registry::LookupSpan};
use uuid::Uuid;

use super::{
    line_format::{Visitor, write_line},
    thread_buffers::Lines,
};

/// The target of the layer's audit events, as `TracingAudit` names it.
const TARGET: &str = "tower_impersonation::audit";

/// An [`Audit`] that appends each decision to the log's lines, text or JSON.
pub struct DecisionLines {
    json: bool,
    lines: Lines,
}

impl DecisionLines {
    /// Lines in JSON if `json`, else text, appended to `lines`.
    pub fn new(json: bool, lines: Lines) -> Self {
        Self { json, lines }
    }
}

impl Audit for DecisionLines {
    fn record(&self, event: &AuditEvent<'_>) {
        let level = match event.outcome {
            AuditOutcome::Accepted(_) => Level::INFO,
            AuditOutcome::Refused(_) => Level::WARN,
        };
        self.lines.append(|line| {
            dispatcher::get_default(|dispatch| {
                // The span the request runs in, if the log's subscriber is the one in use.
                let registry = dispatch.downcast_ref::<Registry>();
                let current = dispatch.current_span();
                let span = registry
                    .zip(current.id())
                    .and_then(|(registry, id)| registry.span(id));
                write_line(line, self.json, &level, TARGET, span, |fields| {
                    write_fields(fields, event);
                });
            });
        });
    }
}

/// The fields of `TracingAudit`'s events, in their order.
fn write_fields(fields: &mut Visitor<'_>, event: &AuditEvent<'_>) {
    fields.str("outcome", event.outcome.as_str());
    match event.outcome {
        AuditOutcome::Accepted(user) => write_accepted(fields, user),
        AuditOutcome::Refused(rejection) => {
            fields.str("reason", rejection.error_code());
            fields.u64("status", rejection.status().as_u16().into());
        }
    }
    fields.str("method", event.method.as_str());
    fields.str("path", event.uri.path());
}

fn write_accepted(fields: &mut Visitor<'_>, user: &ImpersonatedUser) {
    if let Some(actor) = user.actor().user_id() {
        fields.str("actor", actor);
    }
    fields.str("user", &user.user().id);
    if let Some(organization) = user.organization() {
        fields.str("organization", organization);
    }
    if let Some(id) = user.actor().token_id() {
        fields.str(
            "token_id",
            id.hyphenated().encode_lower(&mut Uuid::encode_buffer()),
        );
    }
    fields.str("source", user.source().as_str());
}
