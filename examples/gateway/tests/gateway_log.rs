//! The example gateway's log: one line per event, in text or JSON, whatever the values hold, and
//! lines the writer thread could not keep up with are counted rather than lost silently.

mod gateway_process;
#[allow(dead_code, reason = "each layer test uses a part")]
#[path = "../../../tests/common/world.rs"]
mod layer_fixture;

use std::{
    convert::Infallible,
    io::{self, Write},
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::{Arc, Condvar, Mutex},
    time::{Duration, Instant},
};

use axum::extract::ConnectInfo;
use http::{Request, Response, StatusCode};
use impersonation_gateway::audit_log::{
    self, AuditLog, LogFormat,
    request_client::{WithClientLayer, within},
    subscriber,
};
use serde_json::{Value, json};
use tower::{ServiceExt, service_fn};
use tower_impersonation::{
    Actor, Audit, AuditEvent, AuditOutcome, CredentialSource, ImpersonatedUser, ImpersonationLayer,
    Roles, TracingAudit, User,
};
use tracing::subscriber::with_default;

use gateway_process::Gateway;
use layer_fixture::{BOB, Tokens, directory, tokens};

/// Everything written, for the test to read once the writer thread has finished.
#[derive(Clone, Default)]
struct Written(Arc<Mutex<Vec<u8>>>);

impl Write for Written {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Written {
    fn lines(&self) -> Vec<String> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// Logs, through the gateway's subscriber and writer thread, an event whose values hold what
/// could break a line or a JSON string, inside a span like the gateway's per-request one.
fn log_awkward_event(format: LogFormat) -> Vec<String> {
    let written = Written::default();
    let log = AuditLog::writing_to(written.clone(), 1000).unwrap();
    with_default(subscriber(format, log.lines()), || {
        let span = tracing::info_span!("request", client = %"127.0.0.1");
        let _entered = span.enter();
        tracing::info!(
            target: "tower_impersonation::audit",
            outcome = "accepted",
            path = "/a \"quoted\"\nforged=line\t\u{1}\\ é",
            status = 201u64,
            delta = -3i64,
            granted = true,
            shown = %"display\nvalue",
            "message with \"quotes\"\nand a second line"
        );
        tracing::debug!("below INFO: not written");
    });
    assert_eq!(log.finish(), 0, "nothing dropped");
    written.lines()
}

#[test]
fn json_lines_are_one_object_per_event_that_reads_back_every_value() {
    let lines = log_awkward_event(LogFormat::Json);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let line: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["target"], "tower_impersonation::audit");
    assert_eq!(
        line["spans"],
        json!([{"name": "request", "client": "127.0.0.1"}])
    );
    assert_eq!(
        line["fields"],
        json!({
            "message": "message with \"quotes\"\nand a second line",
            "outcome": "accepted",
            "path": "/a \"quoted\"\nforged=line\t\u{1}\\ é",
            "status": 201,
            "delta": -3,
            "granted": true,
            "shown": "display\nvalue",
        })
    );
    let timestamp = line["timestamp"].as_str().unwrap();
    assert_eq!(
        timestamp.len(),
        "2026-01-02T03:04:05.000006Z".len(),
        "{timestamp}"
    );
    assert!(
        timestamp.ends_with('Z') && timestamp.as_bytes()[10] == b'T',
        "{timestamp}"
    );
}

#[test]
fn text_lines_escape_strings_so_no_value_forges_a_line() {
    let lines = log_awkward_event(LogFormat::Text);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let line = &lines[0];
    assert!(
        line.contains(r#"  INFO request{client=127.0.0.1}: tower_impersonation::audit: "#),
        "{line}"
    );
    assert!(
        line.contains(r#"outcome="accepted" path="/a \"quoted\"\nforged=line\t\u{1}\\ é" status=201 delta=-3 granted=true"#),
        "{line}"
    );
    // The message and `%` values are written bare, as tracing-subscriber writes them, but with
    // their control characters escaped too.
    assert!(
        line.contains(r#"message with "quotes"\nand a second line outcome="#),
        "{line}"
    );
    assert!(line.ends_with(r#"shown=display\nvalue"#), "{line}");
}

#[test]
fn any_line_logged_while_a_request_is_served_names_its_client_before_its_spans() {
    for format in [LogFormat::Text, LogFormat::Json] {
        let written = Written::default();
        let log = AuditLog::writing_to(written.clone(), 1000).unwrap();
        with_default(subscriber(format, log.lines()), || {
            current_thread().block_on(within(Some(CLIENT), async {
                tracing::error!(target: "tower_impersonation", "token store failed");
                let span = tracing::info_span!("lookup", store = "sqlite");
                let _entered = span.enter();
                tracing::warn!(target: "tower_impersonation", "slow");
            }));
            tracing::info!(target: "gateway", "outside any request");
        });
        log.finish();
        let lines = written.lines();
        assert_eq!(lines.len(), 3, "{lines:#?}");
        match format {
            LogFormat::Text => {
                assert!(
                    lines[0].contains(" ERROR request{client=127.0.0.1}: tower_impersonation: "),
                    "{}",
                    lines[0]
                );
                assert!(
                    lines[1].contains(
                        "  WARN request{client=127.0.0.1}: lookup{store=\"sqlite\"}: tower_impersonation: "
                    ),
                    "{}",
                    lines[1]
                );
                assert!(lines[2].contains("  INFO gateway: "), "{}", lines[2]);
            }
            LogFormat::Json => {
                let spans =
                    |line: &str| serde_json::from_str::<Value>(line).unwrap()["spans"].clone();
                assert_eq!(
                    spans(&lines[0]),
                    json!([{"name": "request", "client": "127.0.0.1"}])
                );
                assert_eq!(
                    spans(&lines[1]),
                    json!([{"name": "request", "client": "127.0.0.1"}, {"name": "lookup", "store": "sqlite"}])
                );
                assert_eq!(spans(&lines[2]), json!([]));
            }
        }
    }
}

#[test]
fn with_client_layer_names_the_connections_client_while_a_service_calls_and_answers() {
    let written = Written::default();
    let log = AuditLog::writing_to(written.clone(), 1000).unwrap();
    with_default(subscriber(LogFormat::Text, log.lines()), || {
        // A service that logs in `call` itself, and again in its future.
        let service = service_fn(|_: Request<String>| {
            tracing::info!(target: "gateway", "deciding");
            async {
                tracing::info!(target: "gateway", "answering");
                Ok::<_, Infallible>(Response::new(String::new()))
            }
        });
        let service = tower::Layer::layer(&WithClientLayer, service);
        let client = SocketAddr::from(([192, 0, 2, 7], 50_000));
        let request = Request::builder()
            .extension(ConnectInfo(client))
            .body(String::new())
            .unwrap();
        current_thread().block_on(service.oneshot(request)).unwrap();
    });
    log.finish();
    let lines = written.lines();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    for line in &lines {
        assert!(
            line.contains("  INFO request{client=192.0.2.7}: gateway: "),
            "{line}"
        );
    }
}

#[tokio::test]
async fn the_real_gateway_names_the_client_in_every_audit_line_an_admin_s_changes_included() {
    let gateway = Gateway::start_with(&["--audit-log", "audit.log"]).await;
    let (token, id) = gateway.create_ok().await;
    assert_eq!(gateway.as_bob(&token).await, StatusCode::OK);
    assert_eq!(gateway.revoke(&id).await, StatusCode::NO_CONTENT);
    gateway.mint_jwt().await;
    let log = gateway.workdir().join("audit.log");
    // The writer thread writes what it gathered every 10 ms.
    let deadline = Instant::now() + Duration::from_secs(10);
    let audit = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let audit: Vec<String> = text
            .lines()
            .filter(|line| line.contains("tower_impersonation::audit: "))
            .map(str::to_owned)
            .collect();
        if audit.len() >= 4 || Instant::now() > deadline {
            break audit;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Each thread's lines are written in turn, so lines of different threads may change places.
    let mut outcomes: Vec<&str> = audit
        .iter()
        .filter_map(|line| line.split(r#"outcome=""#).nth(1)?.split('"').next())
        .collect();
    outcomes.sort_unstable();
    assert_eq!(
        outcomes,
        ["accepted", "jwt_issued", "token_created", "token_revoked"],
        "{audit:#?}"
    );
    for line in &audit {
        assert!(
            line.contains("  INFO request{client=127.0.0.1}: tower_impersonation::audit: "),
            "{line}"
        );
    }
}

/// A sink that takes nothing until it is let go, as a stalled disk would.
#[derive(Clone, Default)]
struct Stalled(Arc<(Mutex<bool>, Condvar)>, Written);

impl Stalled {
    fn let_go(&self) {
        *self.0.0.lock().unwrap() = true;
        self.0.1.notify_all();
    }
}

impl Write for Stalled {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let (free, changed) = &*self.0;
        drop(
            changed
                .wait_while(free.lock().unwrap(), |free| !*free)
                .unwrap(),
        );
        self.1.write(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn lines_past_the_limit_are_dropped_without_waiting_and_counted() {
    let sink = Stalled::default();
    let log = AuditLog::writing_to(sink.clone(), 4).unwrap();
    with_default(subscriber(LogFormat::Text, log.lines()), || {
        // With the writer stalled, these calls return at once (a blocking writer would hang
        // here), and only the lines that fit wait.
        for i in 0..50 {
            tracing::info!(target: "tower_impersonation::audit", i, "event");
        }
    });
    sink.let_go();
    let dropped = log.finish();
    let written = sink.1.lines().len();
    assert!(
        dropped >= 40,
        "only {dropped} dropped of 50 with room for 4"
    );
    assert_eq!(
        written + dropped,
        50,
        "{written} written, {dropped} dropped"
    );
}

#[test]
fn a_second_log_on_the_same_thread_gets_its_own_lines() {
    // Each thread keeps a clone of the writer; one made for an earlier log must not take the
    // lines of a later one.
    for which in ["first", "second"] {
        let written = Written::default();
        let log = AuditLog::writing_to(written.clone(), 100).unwrap();
        with_default(subscriber(LogFormat::Text, log.lines()), || {
            tracing::info!(target: "tower_impersonation::audit", which);
        });
        assert_eq!(log.finish(), 0, "nothing dropped");
        let lines = written.lines();
        assert_eq!(lines.len(), 1, "{which}: {lines:#?}");
        assert!(
            lines[0].ends_with(&format!(r#"which="{which}""#)),
            "{lines:#?}"
        );
    }
}

#[test]
fn lines_reach_the_sink_while_the_log_runs() {
    let written = Written::default();
    let log = AuditLog::writing_to(written.clone(), 100).unwrap();
    with_default(subscriber(LogFormat::Text, log.lines()), || {
        tracing::info!(target: "tower_impersonation::audit", outcome = "accepted");
    });
    // Not finished: the writer thread takes the line on its own, a few milliseconds later.
    let deadline = Instant::now() + Duration::from_secs(10);
    while written.lines().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(written.lines().len(), 1, "the line was never written");
    assert_eq!(log.finish(), 0);
}

#[test]
fn every_thread_s_lines_are_written_whole_even_after_the_thread_ends() {
    let written = Written::default();
    let log = AuditLog::writing_to(written.clone(), 10_000).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|thread| {
            let subscriber = subscriber(LogFormat::Json, log.lines());
            std::thread::spawn(move || {
                with_default(subscriber, || {
                    for i in 0..1000 {
                        tracing::info!(target: "tower_impersonation::audit", thread, i);
                    }
                });
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(log.finish(), 0, "nothing dropped");
    let mut seen: Vec<(u64, u64)> = written
        .lines()
        .iter()
        .map(|line| {
            let line: Value = serde_json::from_str(line).unwrap();
            let fields = &line["fields"];
            (
                fields["thread"].as_u64().unwrap(),
                fields["i"].as_u64().unwrap(),
            )
        })
        .collect();
    seen.sort_unstable();
    let expected: Vec<(u64, u64)> = (0..4)
        .flat_map(|t| (0..1000).map(move |i| (t, i)))
        .collect();
    assert_eq!(seen, expected);
}

#[test]
fn lines_logged_after_the_log_is_finished_are_counted_as_dropped() {
    let written = Written::default();
    let log = AuditLog::writing_to(written.clone(), 100).unwrap();
    let lines = log.lines();
    assert_eq!(log.finish(), 0);
    with_default(subscriber(LogFormat::Text, lines.clone()), || {
        tracing::info!(target: "tower_impersonation::audit", outcome = "late");
    });
    assert_eq!(lines.dropped(), 1);
    assert!(written.lines().is_empty());
}

#[test]
fn after_a_switch_of_sink_every_new_line_goes_to_the_new_sink_and_none_is_lost() {
    let (before, after) = (Written::default(), Written::default());
    let log = AuditLog::writing_to(before.clone(), 100_000).unwrap();
    let lines = log.lines();
    let append = |lines: &audit_log::Lines, line: String| {
        lines.append(|text| {
            text.push_str(&line);
            text.push('\n');
        });
    };
    // Another thread logs all along, so the switch lands while the writer thread is busy.
    let busy = {
        let lines = log.lines();
        std::thread::spawn(move || {
            for i in 0..20_000 {
                append(&lines, format!("busy {i}"));
            }
        })
    };
    for i in 0..1000 {
        append(&lines, format!("switching {i}"));
    }
    lines.switch_to(after.clone());
    for i in 1000..2000 {
        append(&lines, format!("switching {i}"));
    }
    busy.join().unwrap();
    assert_eq!(log.finish(), 0, "nothing dropped");

    let numbers = |written: &Written, thread: &str| -> Vec<u32> {
        let lines = written.lines();
        let numbers = lines.iter().filter_map(|line| line.strip_prefix(thread));
        numbers.map(|n| n.trim().parse().unwrap()).collect()
    };
    for thread in ["switching", "busy"] {
        let (old, new) = (numbers(&before, thread), numbers(&after, thread));
        let all: Vec<u32> = old.iter().chain(&new).copied().collect();
        let total = if thread == "busy" { 20_000 } else { 2000 };
        assert_eq!(
            all,
            (0..total).collect::<Vec<_>>(),
            "{thread}: each line once, in order"
        );
    }
    let switching_new = numbers(&after, "switching");
    assert!(
        switching_new.first().is_some_and(|&first| first <= 1000),
        "every line after the switch is in the new sink"
    );
}

/// A sink that refuses every write, as a full disk does.
struct Full;

impl Write for Full {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::from(io::ErrorKind::StorageFull))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn lines_the_sink_refuses_are_counted_as_dropped() {
    let log = AuditLog::writing_to(Full, 100).unwrap();
    with_default(subscriber(LogFormat::Text, log.lines()), || {
        for i in 0..3 {
            tracing::info!(target: "tower_impersonation::audit", i);
        }
    });
    assert_eq!(log.finish(), 3);
}

/// The lines the log gets of the layer's decisions, written by the gateway's `DecisionLines` if
/// `direct`, else by the crate's `TracingAudit` through the subscriber, with the time taken out:
/// each kind of admin change, a token accepted and one refused, each in a request with the
/// client's address known to the log as the gateway gives it, and an impersonation with no known
/// admin nor organization and no request, whose lines leave those out. The tokens' requests
/// repeat and change who acts as whom, as the gateway's lines are written from the identity
/// last rendered on the thread.
fn decisions_logged(format: LogFormat, direct: bool, tokens: &Tokens) -> Vec<String> {
    let written = Written::default();
    let log = AuditLog::writing_to(written.clone(), 1000).unwrap();
    let audit: Box<dyn Audit> = if direct {
        Box::new(log.decision_lines(format))
    } else {
        Box::new(TracingAudit)
    };
    with_default(subscriber(format, log.lines()), || {
        current_thread().block_on(async {
            let user = ImpersonatedUser::new(
                Arc::new(User {
                    id: "u-9".into(),
                    email: "eve@acme.test".into(),
                    name: "Eve".into(),
                }),
                None,
                Actor::Unattributed,
                Roles::full_access(),
                CredentialSource::Jwt,
            );
            let (method, uri) = (http::Method::GET, http::Uri::from_static("/api/v1/cards"));
            let extensions = http::Extensions::new();
            let unattributed =
                AuditEvent::new(AuditOutcome::Accepted(&user), &method, &uri, &extensions);
            audit.record(&unattributed);
            within(Some(CLIENT), async { record_admin_changes(&*audit) }).await;
            let app = service_fn(|_: Request<String>| async {
                Ok::<_, Infallible>(Response::new(String::new()))
            });
            let service = ImpersonationLayer::builder(tokens.store.clone(), directory())
                .audit(audit)
                .build();
            let service = tower::Layer::layer(&service, app);
            // The same identity twice, then another token, the user in the token rather than
            // the header, and back: each line names its own.
            let requests = [
                (&tokens.full, "DELETE", Some(BOB)),
                (&tokens.full, "GET", Some(BOB)),
                (&tokens.read_only, "GET", Some(BOB)),
                (&format!("{}:{BOB}", tokens.full), "GET", None),
                (&tokens.full, "GET", Some(BOB)),
                (&tokens.revoked, "GET", Some(BOB)),
            ];
            for (token, method, user) in requests {
                let mut request = Request::builder()
                    .method(method)
                    .uri("/api/v1/cards/7")
                    .header("authorization", format!("Bearer {token}"));
                if let Some(user) = user {
                    request = request.header("x-guru-userid", user);
                }
                let request = request.body(String::new()).unwrap();
                within(Some(CLIENT), service.clone().oneshot(request))
                    .await
                    .unwrap();
            }
        });
    });
    assert_eq!(log.finish(), 0, "nothing dropped");
    let without_time = |line: String| match format {
        LogFormat::Text => line[line.find(' ').unwrap()..].to_owned(),
        LogFormat::Json => {
            let mut line: Value = serde_json::from_str(&line).unwrap();
            line.as_object_mut().unwrap().remove("timestamp").unwrap();
            line.to_string()
        }
    };
    written.lines().into_iter().map(without_time).collect()
}

/// Five acceptances: by one token and user twice, by another token, with the user in the token,
/// and by the first again; only the first two and the last name the same identity.
fn assert_distinct_identities(accepted: &[String]) {
    // The fields between the outcome and the request's method, or in JSON all of its fields
    // but those.
    let identity = |line: &String| match serde_json::from_str::<Value>(line) {
        Ok(mut line) => {
            let fields = line["fields"].as_object_mut().unwrap();
            for request in ["outcome", "method", "path"] {
                fields.remove(request).unwrap();
            }
            Value::from(fields.clone()).to_string()
        }
        Err(_) => line[line.find("actor=").unwrap()..line.find(" method=").unwrap()].to_owned(),
    };
    let identities: Vec<String> = accepted.iter().map(identity).collect();
    assert_eq!(identities[0], identities[1]);
    assert_eq!(identities[0], identities[4]);
    for other in &identities[2..4] {
        assert_ne!(&identities[0], other);
    }
    assert_ne!(identities[2], identities[3]);
}

/// The address of the decisions' client.
const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Each kind of admin change; a user id that needs escaping, and a JWT issued with no reason.
fn record_admin_changes(audit: &dyn Audit) {
    let extensions = http::Extensions::new();
    let (method, uri) = (http::Method::POST, http::Uri::from_static("/admin"));
    let (admin, organization) = ("a-1", "acme");
    let id = uuid::Uuid::from_u128(7);
    let awkward = "u\"9\n";
    let changes = [
        AuditOutcome::TokenCreated {
            admin,
            organization,
            token_id: id,
        },
        AuditOutcome::TokenRevoked {
            admin,
            organization,
            token_id: id,
        },
        AuditOutcome::JwtIssued {
            admin,
            organization,
            user: awkward,
            jti: id,
            reason: Some("ticket \"7\""),
        },
        AuditOutcome::JwtIssued {
            admin,
            organization,
            user: "b-1",
            jti: id,
            reason: None,
        },
        AuditOutcome::JwtRevoked {
            admin,
            organization,
            jti: id,
        },
        AuditOutcome::UserJwtsRevoked {
            admin,
            organization,
            user: awkward,
        },
    ];
    for change in changes {
        audit.record(&AuditEvent::new(change, &method, &uri, &extensions));
    }
}

/// A runtime whose tasks all run on the test's thread, under its default subscriber.
fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

#[test]
fn the_gateways_decision_lines_are_the_lines_of_the_crates_tracing_audit() {
    let tokens = current_thread().block_on(tokens());
    let text = decisions_logged(LogFormat::Text, true, &tokens);
    assert_eq!(text, decisions_logged(LogFormat::Text, false, &tokens));
    assert_eq!(text.len(), 13, "{text:#?}");
    assert_eq!(
        text[1],
        r#"  INFO request{client=127.0.0.1}: tower_impersonation::audit: outcome="token_created" token_id=00000000-0000-0000-0000-000000000007 organization="acme" admin="a-1""#
    );
    assert!(
        text[3].ends_with(r#"outcome="jwt_issued" admin="a-1" user=u"9\n organization="acme" reason="ticket \"7\"" jti=00000000-0000-0000-0000-000000000007"#),
        "{}",
        text[3]
    );
    assert!(!text[4].contains("reason="), "{}", text[4]);
    assert_distinct_identities(&text[7..12]);
    // The layer's decisions: the unattributed one, then the requests'.
    let text = [&text[0], &text[7], &text[12]];
    assert!(
        text[0].starts_with("  INFO tower_impersonation::audit: "),
        "{}",
        text[0]
    );
    assert!(
        !text[0].contains("actor=") && !text[0].contains("organization="),
        "{}",
        text[0]
    );
    assert!(
        text[1].contains(
            r#"request{client=127.0.0.1}: tower_impersonation::audit: outcome="accepted""#
        ),
        "{}",
        text[1]
    );
    assert!(text[1].contains(r#"token_id=""#), "{}", text[1]);
    assert!(
        text[2].starts_with("  WARN request{client=127.0.0.1}: "),
        "{}",
        text[2]
    );
    assert!(
        text[2].contains(r#"outcome="refused" reason="invalid_token" status=401"#),
        "{}",
        text[2]
    );

    let json = decisions_logged(LogFormat::Json, true, &tokens);
    assert_eq!(json, decisions_logged(LogFormat::Json, false, &tokens));
    assert_eq!(json.len(), 13, "{json:#?}");
    assert_distinct_identities(&json[7..12]);
    let issued: Value = serde_json::from_str(&json[3]).unwrap();
    assert_eq!(
        issued["fields"],
        json!({"outcome": "jwt_issued", "admin": "a-1", "user": "u\"9\n", "organization": "acme",
            "reason": "ticket \"7\"", "jti": "00000000-0000-0000-0000-000000000007"})
    );
}
