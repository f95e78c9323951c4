//! The example gateway keeps impersonation within its grant, on the real binary: it reloads its
//! `--users` file on SIGHUP, so a demoted admin's tokens and JWTs stop at once while another
//! admin's go on, and it refuses impersonation on `--protect` routes and on its own services.
#![cfg(unix)]

mod gateway_process;

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use http::{Method, StatusCode};
use serde_json::{Value, json};

use gateway_process::{ADMIN, BOB, Gateway, binary};

const TOKENS: &str = "/api/v1/api-tokens/impersonation";
const ACME_JWTS: &str = "/api/v2/organizations/acme/impersonation";
const BOB_AT_ACME: &str = "bob@acme.test";

/// Acme's members: Ada and Ann administer it, Bob and Cy are members; each has a plain key.
fn acme(ada_is_admin: bool, with_cy: bool) -> String {
    let mut members = vec![
        json!({"id": "ada", "email": "ada@acme.test", "name": "Ada",
            "admin": ada_is_admin, "api_key": "ada-key"}),
        json!({"id": "ann", "email": "ann@acme.test", "name": "Ann",
            "admin": true, "api_key": "ann-key"}),
        json!({"id": "bob", "email": BOB_AT_ACME, "name": "Bob", "api_key": "bob-key"}),
    ];
    if with_cy {
        members.push(json!({"id": "cy", "email": "cy@acme.test", "name": "Cy",
            "api_key": "cy-key"}));
    }
    json!({"organizations": [{"id": "acme", "name": "Acme", "members": members}]}).to_string()
}

/// One admin's credentials for Bob: a token (with Bob named after it) and a JWT.
struct Credentials {
    token: String,
    jwt: String,
}

impl Credentials {
    /// A token and a JWT from the admin whose plain key this is.
    async fn from(gateway: &Gateway, key: &str) -> Credentials {
        let admin = format!("Bearer {key}");
        let (status, created) = gateway.send(Method::POST, TOKENS, &admin, "").await;
        assert_eq!(status, StatusCode::OK, "{created}");
        let token = created["token"].as_str().unwrap();
        let (jwt, _) = gateway.mint_jwt_as(&admin, ACME_JWTS, BOB_AT_ACME).await;
        Credentials {
            token: format!("Bearer {token}:{BOB_AT_ACME}"),
            jwt: format!("Bearer {jwt}"),
        }
    }

    /// `whoami` with the token and with the JWT: both answers.
    async fn whoami(&self, gateway: &Gateway) -> [(StatusCode, Value); 2] {
        [
            gateway
                .send(Method::GET, "/api/v1/whoami", &self.token, "")
                .await,
            gateway
                .send(Method::GET, "/api/v1/whoami", &self.jwt, "")
                .await,
        ]
    }

    /// `whoami` with the token and with the JWT: both statuses.
    async fn statuses(&self, gateway: &Gateway) -> [StatusCode; 2] {
        self.whoami(gateway).await.map(|(status, _)| status)
    }
}

/// The log at `path`, or nothing yet.
fn log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Waits until `done` holds, for at most `limit`, asking every 20 ms.
async fn wait_until(what: &str, limit: Duration, mut done: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < limit, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn sighup_reloads_the_users_so_a_demoted_admin_s_credentials_stop_and_others_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.json");
    let log_path = dir.path().join("gateway.log");
    std::fs::write(&users, acme(true, true)).unwrap();
    let mut gateway = Gateway::start_with(&[
        "--store",
        "memory",
        "--users",
        users.to_str().unwrap(),
        "--audit-log",
        log_path.to_str().unwrap(),
    ])
    .await;
    let ada = Credentials::from(&gateway, "ada-key").await;
    let ann = Credentials::from(&gateway, "ann-key").await;
    for (name, credentials) in [("Ada", &ada), ("Ann", &ann)] {
        for (status, me) in credentials.whoami(&gateway).await {
            assert_eq!(
                (status, &me["id"]),
                (StatusCode::OK, &json!("bob")),
                "{name}'s"
            );
        }
    }
    let (status, _) = gateway
        .send(Method::GET, "/api/v1/whoami", "Bearer cy-key", "")
        .await;
    assert_eq!(status, StatusCode::OK, "Cy's plain key");

    // Ada demoted, Cy removed.
    std::fs::write(&users, acme(false, false)).unwrap();
    gateway.hang_up();
    wait_until(
        "Ada's token and JWT are refused",
        Duration::from_secs(10),
        async || ada.statuses(&gateway).await == [StatusCode::UNAUTHORIZED; 2],
    )
    .await;
    for (status, refused) in ada.whoami(&gateway).await {
        assert_eq!(
            (status, &refused["error"]),
            (StatusCode::UNAUTHORIZED, &json!("invalid_token"))
        );
    }
    assert_eq!(
        ann.statuses(&gateway).await,
        [StatusCode::OK; 2],
        "Ann's go on"
    );
    let (status, refused) = gateway
        .send(Method::POST, TOKENS, "Bearer ada-key", "")
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "Ada's key no longer makes tokens: {refused}"
    );
    let (status, _) = gateway
        .send(Method::GET, "/api/v1/whoami", "Bearer cy-key", "")
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a removed member's key signs nobody in"
    );
    let reloaded = format!("SIGHUP: reloaded the users file {}", users.display());
    wait_until(
        "the reload is logged",
        Duration::from_secs(10),
        async || log(&log_path).contains(&reloaded),
    )
    .await;
    // The refusals were logged on the requests' threads, whose lines may reach the file a pass of
    // the log's writer after the reload's.
    wait_until(
        "the refusals' reason is logged",
        Duration::from_secs(10),
        async || log(&log_path).contains(r#"reason="actor_not_admin""#),
    )
    .await;

    // A file that does not parse leaves the members as they were.
    std::fs::write(&users, r#"{"organizations": [{"id": "acme", "members": ["#).unwrap();
    gateway.hang_up();
    let refused = format!(
        "SIGHUP: cannot reload the users file {}: EOF while parsing",
        users.display()
    );
    wait_until(
        "the refused file is logged",
        Duration::from_secs(10),
        async || log(&log_path).contains(&refused),
    )
    .await;
    assert_eq!(
        ann.statuses(&gateway).await,
        [StatusCode::OK; 2],
        "Ann's still go on"
    );
    assert_eq!(
        ada.statuses(&gateway).await,
        [StatusCode::UNAUTHORIZED; 2],
        "Ada's stay refused"
    );
    let (status, _) = gateway
        .send(Method::GET, "/api/v1/whoami", "Bearer ann-key", "")
        .await;
    assert_eq!(status, StatusCode::OK, "Ann's plain key");
    assert!(gateway.is_running(), "SIGHUP ended the gateway");
}

/// The layer's answer on a protected route.
fn protected_route() -> Value {
    json!({"error": "access_denied",
        "error_description": "this request cannot be made while impersonating"})
}

#[tokio::test]
async fn protected_routes_and_the_token_service_are_refused_to_impersonation_only() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("gateway.log");
    let gateway = Gateway::start_with(&[
        "--store",
        "memory",
        "--protect",
        "POST /api/v1/cards",
        "--audit-log",
        log_path.to_str().unwrap(),
    ])
    .await;
    let (token, _) = gateway.create_ok().await;
    let as_bob = format!("Bearer {token}:{BOB}");
    let (jwt, _) = gateway.mint_jwt().await;
    let jwt = format!("Bearer {jwt}");
    for credential in [&as_bob, &jwt] {
        let answer = post_card(&gateway, credential).await;
        assert_eq!(
            answer,
            (StatusCode::FORBIDDEN, protected_route()),
            "--protect"
        );
        let (status, _) = gateway
            .send(Method::GET, "/api/v1/cards", credential, "")
            .await;
        assert_eq!(status, StatusCode::OK, "only POST is protected");
        let answer = gateway.send(Method::POST, TOKENS, credential, "").await;
        assert_eq!(
            answer,
            (StatusCode::FORBIDDEN, protected_route()),
            "the token service"
        );
    }
    let (status, created) = post_card(&gateway, ADMIN).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the plain key is untouched: {created}"
    );

    let refusals = |log: &str| {
        log.lines()
            .filter(|line| line.contains(r#"reason="protected_route""#))
            .count()
    };
    wait_until(
        "the refusals are audited",
        Duration::from_secs(10),
        async || refusals(&log(&log_path)) == 4,
    )
    .await;
}

async fn post_card(gateway: &Gateway, authorization: &str) -> (StatusCode, Value) {
    let headers = [
        ("authorization", authorization),
        ("content-type", "application/json"),
    ];
    let card = r#"{"title": "Fix the login page"}"#;
    gateway
        .try_send_with(Method::POST, "/api/v1/cards", &headers, card)
        .await
        .unwrap()
}

#[test]
fn a_malformed_protect_stops_the_start_naming_the_flag_and_the_route() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(binary())
        .current_dir(dir.path())
        .args(["--addr", "127.0.0.1:0", "--protect", "POST cards"])
        .output()
        .unwrap();
    assert!(!output.status.success(), "started with a malformed route");
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("--protect"), "{error}");
    assert!(error.contains("'POST cards'"), "{error}");
    assert!(error.contains("must be `METHOD /path`"), "{error}");
}
