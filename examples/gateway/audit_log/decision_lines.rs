//! The audit trail written as log lines straight from an [`Audit`]: the impersonation layer's
//! decisions and the admins' changes through the services, the same lines the crate's
//! `TracingAudit` events make through the subscriber, at half the cost for the decisions every
//! impersonated request pays for. No `tracing` event is built, sent through the subscriber's
//! layers and taken apart again field by field, and the request's span is written from the
//! client's address in the request, not looked up in the registry.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use tower_impersonation::{Audit, AuditEvent, AuditOutcome, ImpersonatedUser};
use tracing::Level;
use uuid::Uuid;

use super::{
    line_format::{FieldName, LineSpans, Visitor, field_name, write_line},
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
        let client = event
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(address)| address.ip());
        self.lines.append(|line| {
            write_line(
                line,
                self.json,
                &level,
                TARGET,
                &RequestSpan(client),
                |fields| {
                    write_fields(fields, event);
                },
            );
        });
    }
}

/// The span the gateway runs each request in (`app::rate_limit::client_span`), `request` with
/// the client's address, as the log writes it; none without an address.
struct RequestSpan(Option<IpAddr>);

impl LineSpans for RequestSpan {
    fn write_text(&self, line: &mut String) {
        if let Some(client) = self.0 {
            line.push_str("request{client=");
            push_address(line, client);
            line.push_str("}: ");
        }
    }

    fn write_json(&self, line: &mut String) {
        if let Some(client) = self.0 {
            line.push_str(r#"{"name":"request","client":""#);
            push_address(line, client);
            line.push_str(r#""}"#);
        }
    }
}

/// `address` as `Display` writes it; an IPv4 address's digits placed by hand, for a tenth of
/// the cost of formatting.
fn push_address(line: &mut String, address: IpAddr) {
    let IpAddr::V4(v4) = address else {
        line.push_str(&address.to_string());
        return;
    };
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            line.push('.');
        }
        if octet >= 100 {
            line.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            line.push(char::from(b'0' + octet / 10 % 10));
        }
        line.push(char::from(b'0' + octet % 10));
    }
}

/// The fields of `TracingAudit`'s events, in their order. The crate's names for outcomes,
/// reasons and sources are plain, snake_case words.
fn write_fields(fields: &mut Visitor<'_>, event: &AuditEvent<'_>) {
    fields.plain_field(&OUTCOME, event.outcome.as_str());
    match event.outcome {
        AuditOutcome::Accepted(user) => {
            write_accepted(fields, user);
            write_request(fields, event);
        }
        AuditOutcome::Refused(rejection) => {
            fields.plain_field(&REASON, rejection.error_code());
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
    fields.plain_field(&SOURCE, user.source().as_str());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        for address in [
            "0.0.0.0",
            "127.0.0.1",
            "10.0.100.9",
            "192.168.1.20",
            "255.255.255.255",
            "::1",
            "::ffff:127.0.0.1",
            "2001:db8::8a2e:370:7334",
        ] {
            let address: IpAddr = address.parse().unwrap();
            let mut line = String::new();
            push_address(&mut line, address);
            assert_eq!(line, address.to_string());
        }
    }
}
