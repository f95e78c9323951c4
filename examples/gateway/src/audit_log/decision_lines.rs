//! The audit trail written as log lines straight from an [`Audit`]: the impersonation layer's
//! decisions and the admins' changes through the services, the same lines the crate's
//! `TracingAudit` events make through the subscriber. Every impersonated request pays for its
//! decision's line, so none is a `tracing` event built and taken apart again field by field.
//! The request's span is written from the client's address the request runs with
//! ([`RequestSpan`]), and the fields naming who acted as whom are rendered once per identity
//! and thread ([`LastIdentity`]).

use std::cell::RefCell;

use tower_impersonation::{
    Actor, Audit, AuditEvent, AuditOutcome, CredentialSource, ImpersonatedUser,
};
use tracing::Level;
use uuid::Uuid;

use super::{
    line_format::{FieldName, Visitor, field_name, write_line},
    request_client::RequestSpan,
    thread_buffers::Lines,
};

/// The target of the layer's audit events, as `TracingAudit` names it.
const TARGET: &str = "tower_impersonation::audit";

/// The fields of `TracingAudit`'s events written as strings.
const OUTCOME: FieldName = field_name!("outcome");
const REASON: FieldName = field_name!("reason");
const ACTOR: FieldName = field_name!("actor");
const ADMIN: FieldName = field_name!("admin");
const USER: FieldName = field_name!("user");
const ORGANIZATION: FieldName = field_name!("organization");
const TOKEN_ID: FieldName = field_name!("token_id");
const SOURCE: FieldName = field_name!("source");
const METHOD: FieldName = field_name!("method");
const PATH: FieldName = field_name!("path");

/// An [`Audit`] that appends each entry to the log's lines, text or JSON.
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
            AuditOutcome::Refused(_) => Level::WARN,
            _ => Level::INFO,
        };
        let span = RequestSpan::current().or_client_in(event.extensions);
        self.lines.append(|line| {
            write_line(line, self.json, &level, TARGET, &span, |fields| {
                write_fields(fields, event);
            });
        });
    }
}

/// The fields of `TracingAudit`'s events, in their order. The crate's names for outcomes,
/// reasons and sources are plain, snake_case words.
fn write_fields(fields: &mut Visitor<'_>, event: &AuditEvent<'_>) {
    fields.plain_field(&OUTCOME, event.outcome.as_str());
    match event.outcome {
        AuditOutcome::Accepted(user) => {
            LastIdentity::write(fields, user);
            write_request(fields, event);
        }
        AuditOutcome::Refused(rejection) => {
            fields.plain_field(&REASON, rejection.reason());
            fields.u64("status", rejection.status().as_u16().into());
            write_request(fields, event);
        }
        admin_change => write_admin_change(fields, &admin_change),
    }
}

/// The method and path of a request the layer decided on.
fn write_request(fields: &mut Visitor<'_>, event: &AuditEvent<'_>) {
    // A method is letters, digits and `!#$%&'*+-.^_`|~` only.
    fields.plain_field(&METHOD, event.method.as_str());
    fields.field(&PATH, event.uri.path());
}

/// An admin's change, as `TracingAudit` records it: ids it takes through `Display` are written
/// bare in text, and no method or path.
fn write_admin_change(fields: &mut Visitor<'_>, outcome: &AuditOutcome<'_>) {
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
        } => {
            fields.debug("token_id", &format_args!("{token_id}"));
            fields.field(&ORGANIZATION, organization);
            fields.field(&ADMIN, admin);
        }
        AuditOutcome::JwtIssued {
            admin,
            organization,
            user,
            jti,
            reason,
        } => {
            fields.field(&ADMIN, admin);
            fields.debug("user", &format_args!("{user}"));
            fields.field(&ORGANIZATION, organization);
            if let Some(reason) = reason {
                fields.field(&REASON, reason);
            }
            fields.debug("jti", &format_args!("{jti}"));
        }
        AuditOutcome::JwtRevoked {
            admin,
            organization,
            jti,
        } => {
            fields.field(&ADMIN, admin);
            fields.field(&ORGANIZATION, organization);
            fields.debug("jti", &format_args!("{jti}"));
        }
        AuditOutcome::UserJwtsRevoked {
            admin,
            organization,
            user,
        } => {
            fields.field(&ADMIN, admin);
            fields.field(&USER, user);
            fields.field(&ORGANIZATION, organization);
        }
        // Decisions are written by `write_fields`; outcomes the crate adds later, by name only.
        _ => {}
    }
}

/// The identity fields of the last request this thread wrote an acceptance of, rendered: a token
/// or JWT in steady use names the same actor, user and organization on every request, and
/// comparing them is cheaper than writing them again (escaping checks, the token id's hex).
#[derive(Default)]
struct LastIdentity {
    json: bool,
    actor: Option<String>,
    user: String,
    organization: Option<String>,
    token_id: Option<Uuid>,
    source: Option<CredentialSource>,
    /// The fields as `write_accepted` writes them after the first field.
    rendered: String,
}

thread_local! {
    static LAST_IDENTITY: RefCell<LastIdentity> = RefCell::default();
}

impl LastIdentity {
    /// Writes `user`'s identity fields, rendered again only if they are not the last ones this
    /// thread wrote.
    fn write(fields: &mut Visitor<'_>, user: &ImpersonatedUser) {
        let json = fields.is_json();
        let written = LAST_IDENTITY.try_with(|last| {
            // Busy only if a panic left it borrowed; then the fields are written as they are.
            let Ok(mut last) = last.try_borrow_mut() else {
                return false;
            };
            if !last.names(json, user) {
                last.remember(json, user);
            }
            fields.rendered(&last.rendered);
            true
        });
        if written != Ok(true) {
            write_accepted(fields, user);
        }
    }

    fn names(&self, json: bool, user: &ImpersonatedUser) -> bool {
        let actor = user.actor();
        self.source == Some(user.source())
            && self.json == json
            && self.user == user.user().id
            && self.token_id == actor.token_id()
            && self.actor.as_deref() == actor.user_id()
            && self.organization.as_deref() == user.organization()
    }

    fn remember(&mut self, json: bool, user: &ImpersonatedUser) {
        let actor = user.actor();
        self.json = json;
        self.actor = actor.user_id().map(str::to_owned);
        self.user.clone_from(&user.user().id);
        self.organization = user.organization().map(str::to_owned);
        self.token_id = actor.token_id();
        self.source = Some(user.source());
        self.rendered.clear();
        write_accepted(&mut Visitor::after_first(&mut self.rendered, json), user);
    }
}

fn write_accepted(fields: &mut Visitor<'_>, user: &ImpersonatedUser) {
    if let Some(actor) = user.actor().user_id() {
        fields.field(&ACTOR, actor);
    }
    fields.field(&USER, &user.user().id);
    if let Some(organization) = user.organization() {
        fields.field(&ORGANIZATION, organization);
    }
    if let Some(id) = user.actor().token_id() {
        fields.plain_field(
            &TOKEN_ID,
            id.hyphenated().encode_lower(&mut Uuid::encode_buffer()),
        );
    }
    if let Actor::Token(record) = user.actor() {
        fields.bool("narrowed", record.is_narrowed());
    }
    fields.plain_field(&SOURCE, user.source().as_str());
}
