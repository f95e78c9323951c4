//! The example gateway, served on loopback and driven with a real HTTP client, a real gRPC client
//! and, for the commands it prints, `curl` itself.

mod gateway_app;
#[path = "../../../tests/common/independent_jwt.rs"]
mod independent_jwt;

use std::{
    num::NonZeroU32,
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};

use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tonic::{Code, transport::Channel};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
use tower_impersonation::{MemoryStore, jwt::JwtKeys};

use gateway_app::Running;

use impersonation_gateway::app::{
    self, Gateway, TOKENS_PATH,
    accounts::{Accounts, DEMO_ADMIN_KEY, DEMO_ORGANIZATION, DEMO_USERS},
    banner::{self, Expect},
};
use independent_jwt::independent_decode;

const SECRET: &[u8] = b"the gateway test's secret, 32 B+";
const BOB: &str = "bob@example.com";
const BOB_ID: &str = "7cdb765a-3251-483f-9193-249a5e472fcb";
const ADA_ID: &str = "0f5d3c1e-8a2b-4e7f-9c6d-1b2a3c4d5e6f";

async fn start_with(users: &str, rate_limit: Option<NonZeroU32>) -> Running {
    gateway_app::serve(Gateway {
        accounts: Arc::new(Accounts::from_json(users).unwrap()),
        store: MemoryStore::new(),
        keys: JwtKeys::hs256(SECRET).unwrap(),
        rate_limit,
        protected: Vec::new(),
        audit: Arc::new(tower_impersonation::TracingAudit),
    })
    .await
}

async fn start() -> Running {
    start_with(DEMO_USERS, None).await
}

fn admin() -> String {
    format!("Bearer {DEMO_ADMIN_KEY}")
}

impl Running {
    async fn get(&self, path: &str, authorization: &str) -> (StatusCode, Value) {
        self.send(Method::GET, path, &[("authorization", authorization)], "")
            .await
    }

    async fn whoami(&self, authorization: &str) -> (StatusCode, Value) {
        self.get("/api/v1/whoami", authorization).await
    }

    async fn post_card(&self, authorization: &str) -> (StatusCode, Value) {
        let headers = [
            ("authorization", authorization),
            ("content-type", "application/json"),
        ];
        let card = r#"{"title": "Fix the login page"}"#;
        self.send(Method::POST, "/api/v1/cards", &headers, card)
            .await
    }

    async fn delete_card(&self, authorization: &str, id: &str) -> StatusCode {
        let headers = [("authorization", authorization)];
        let path = format!("/api/v1/cards/{id}");
        self.send(Method::DELETE, &path, &headers, "").await.0
    }

    /// A new impersonation token with these roles, created with the demo admin's key.
    async fn token(&self, roles: Value) -> String {
        let body = json!({"name": "test", "roles": roles}).to_string();
        let auth = admin();
        let headers = [("authorization", auth.as_str())];
        let (status, created) = self.send(Method::POST, TOKENS_PATH, &headers, &body).await;
        assert_eq!(status, StatusCode::OK, "{created}");
        created["token"].as_str().unwrap().to_owned()
    }

    /// An impersonation JWT for `user`, from the organization impersonation service.
    async fn jwt(&self, user: &str) -> String {
        let path = format!("/api/v2/organizations/{DEMO_ORGANIZATION}/impersonation");
        let body = json!({"data": {"type": "impersonation",
            "attributes": {"reason": "ticket 42", "user": user}}});
        let auth = admin();
        let headers = [
            ("authorization", auth.as_str()),
            ("content-type", "application/vnd.api+json"),
        ];
        let (status, document) = self
            .send(Method::POST, &path, &headers, &body.to_string())
            .await;
        assert_eq!(status, StatusCode::OK, "{document}");
        let token = &document["data"]["attributes"]["json_web_token"];
        token.as_str().unwrap().to_owned()
    }

    async fn health(&self, metadata: &[(&'static str, &str)]) -> Result<ServingStatus, Code> {
        let channel = Channel::from_shared(self.base.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
        let mut request = tonic::Request::new(HealthCheckRequest::default());
        for (name, value) in metadata {
            request.metadata_mut().insert(*name, value.parse().unwrap());
        }
        match client.check(request).await {
            Ok(response) => Ok(response.into_inner().status()),
            Err(status) => Err(status.code()),
        }
    }
}

#[tokio::test]
async fn health_needs_no_credential_and_unknown_paths_are_404() {
    let gateway = start().await;
    let (status, _) = gateway.send(Method::GET, "/healthz", &[], "").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = gateway.get("/api/v1/nowhere", &admin()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found");
}

#[tokio::test]
async fn openapi_json_is_served_without_a_credential_and_lists_both_services() {
    let gateway = start().await;
    let request = Request::get(format!("{}/openapi.json", gateway.base))
        .body(Full::default())
        .unwrap();
    let response = gateway.client.request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let document: Value = serde_json::from_slice(&body).unwrap();
    let version = document["openapi"].as_str().unwrap();
    assert!(version.starts_with("3.1."), "{version}");
    let paths = &document["paths"];
    for path in [
        TOKENS_PATH,
        &format!("{TOKENS_PATH}/{{id}}"),
        "/api/v2/organizations/{org}/impersonation",
        app::JWKS_PATH,
    ] {
        assert!(paths[path].is_object(), "{path} is not in the document");
    }
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[tokio::test]
async fn authenticated_routes_refuse_a_missing_or_wrong_key() {
    let gateway = start().await;
    let (status, body) = gateway.send(Method::GET, "/api/v1/whoami", &[], "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "unauthenticated");
    let (status, _) = gateway.whoami("Bearer not-a-key").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = gateway.get(TOKENS_PATH, "Bearer not-a-key").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_plain_key_is_the_member_itself() {
    let gateway = start().await;
    let (status, me) = gateway.whoami(&admin()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        me,
        json!({"id": ADA_ID, "email": "ada@example.com", "name": "Ada Admin",
            "impersonated": false, "actor": null, "roles": ["*:*"]})
    );
}

#[tokio::test]
async fn a_token_acts_as_bob_in_both_forms_and_whoami_names_the_token() {
    let gateway = start().await;
    let token = gateway.token(json!(["*:*"])).await;
    let header_form = [
        ("authorization", format!("Bearer {token}")),
        ("x-guru-userid", BOB.to_owned()),
    ];
    let header_form: Vec<_> = header_form.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let (status, by_header) = gateway
        .send(Method::GET, "/api/v1/whoami", &header_form, "")
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, by_suffix) = gateway.whoami(&format!("Bearer {token}:{BOB}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_header, by_suffix);
    assert_eq!(by_suffix["id"], BOB_ID);
    assert_eq!(by_suffix["impersonated"], true);
    assert_eq!(by_suffix["actor"]["kind"], "token");
    assert_eq!(by_suffix["actor"]["created_by"], ADA_ID);
    assert_eq!(by_suffix["actor"]["token_name"], "test");
}

#[tokio::test]
async fn whoami_answers_names_that_need_escaping_as_json_that_reads_back() {
    // Quotes, a backslash, control characters, non-ASCII: whoami's writer copies plain strings
    // whole and must escape these.
    let name = "Zoë \"Z\" O'Neil \\ tab\there\nline\u{1}";
    let users = json!({"organizations": [{"id": "org-1", "name": "One", "members": [
        {"id": "admin\"1", "email": "root@one.test", "name": "Root", "admin": true,
         "api_key": "one-admin-key"},
        {"id": "user\\2", "email": "zoe@one.test", "name": name, "api_key": "zoe-key"}
    ]}]});
    let gateway = start_with(&users.to_string(), None).await;
    let (status, me) = gateway.whoami("Bearer zoe-key").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        me,
        json!({"id": "user\\2", "email": "zoe@one.test", "name": name,
            "impersonated": false, "actor": null, "roles": ["*:*"]})
    );

    let token_name = "ticket \"42\" \\ é";
    let body = json!({"name": token_name, "roles": ["read:*"]}).to_string();
    let headers = [("authorization", "Bearer one-admin-key")];
    let (status, created) = gateway
        .send(Method::POST, TOKENS_PATH, &headers, &body)
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let token = created["token"].as_str().unwrap();
    let (status, me) = gateway
        .whoami(&format!("Bearer {token}:zoe@one.test"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        me,
        json!({"id": "user\\2", "email": "zoe@one.test", "name": name, "impersonated": true,
            "actor": {"kind": "token", "token_id": created["id"], "token_name": token_name,
                "created_by": "admin\"1"},
            "roles": ["read:*"]})
    );
}

#[tokio::test]
async fn read_only_token_reads_cards_but_cannot_write_them() {
    let gateway = start().await;
    let full = format!("Bearer {}:{BOB}", gateway.token(json!(["*:*"])).await);
    let read_only = format!("Bearer {}:{BOB}", gateway.token(json!(["read:*"])).await);
    let (status, _) = gateway.post_card(&read_only).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, created) = gateway.post_card(&full).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(created["created_by"], BOB_ID);
    let (status, cards) = gateway.get("/api/v1/cards", &read_only).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cards, json!([created]));
    let id = created["id"].as_str().unwrap();
    let delete = |auth| gateway.delete_card(auth, id);
    assert_eq!(delete(&read_only).await, StatusCode::FORBIDDEN);
    assert_eq!(delete(&full).await, StatusCode::NO_CONTENT);
    assert_eq!(delete(&full).await, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn cards_belong_to_one_organization() {
    let gateway = start().await;
    let (status, _) = gateway.post_card("Bearer elsewhere-admin-key").await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, demo_cards) = gateway.get("/api/v1/cards", &admin()).await;
    assert_eq!(demo_cards, json!([]));
}

#[tokio::test]
async fn minted_jwt_has_user_id_and_exp_and_names_the_admin_as_actor() {
    let gateway = start().await;
    let jwt = gateway.jwt(BOB_ID).await;
    let (header, claims) = independent_decode(&jwt, SECRET);
    assert_eq!(header["alg"], "HS256");
    assert_eq!(claims["user_id"], BOB_ID);
    assert_eq!(claims["org"], DEMO_ORGANIZATION);
    assert_eq!(claims["act"], json!({"sub": ADA_ID}));
    let (status, me) = gateway.whoami(&format!("Bearer {jwt}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["id"], BOB_ID);
    assert_eq!(me["actor"], json!({"kind": "admin", "user_id": ADA_ID}));
}

/// The layer's answer on a protected route.
fn protected_route() -> Value {
    json!({"error": "access_denied",
        "error_description": "this request cannot be made while impersonating"})
}

#[tokio::test]
async fn impersonation_never_mints_more_impersonation() {
    let gateway = start().await;
    let as_bob = format!("Bearer {}:{BOB}", gateway.token(json!(["*:*"])).await);
    let jwt = format!("Bearer {}", gateway.jwt(BOB).await);
    let jwt_service = format!("/api/v2/organizations/{DEMO_ORGANIZATION}/impersonation");
    let some_id = "9e0b2b17-5a76-44ef-b726-09d556b04318";
    let requests = [
        (Method::POST, TOKENS_PATH.to_owned()),
        (Method::GET, TOKENS_PATH.to_owned()),
        (Method::DELETE, format!("{TOKENS_PATH}/{some_id}")),
        (Method::POST, jwt_service.clone()),
        (Method::GET, jwt_service.clone()),
        (Method::DELETE, format!("{jwt_service}/{some_id}")),
    ];
    for credential in [as_bob, jwt] {
        for (method, path) in &requests {
            let headers = [("authorization", credential.as_str())];
            let answer = gateway.send(method.clone(), path, &headers, "").await;
            assert_eq!(
                answer,
                (StatusCode::FORBIDDEN, protected_route()),
                "{method} {path} with {credential}"
            );
        }
    }
}

#[tokio::test]
async fn only_admins_issue_tokens() {
    let gateway = start().await;
    let headers = [("authorization", "Bearer demo-bob-key")];
    let (status, body) = gateway.send(Method::POST, TOKENS_PATH, &headers, "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "forbidden");
}

#[tokio::test]
async fn grpc_health_answers_grpc_status_codes_behind_the_layer() {
    let gateway = start().await;
    let token = format!("Bearer {}", gateway.token(json!(["read:*"])).await);
    let as_bob = [("authorization", token.as_str()), ("x-guru-userid", BOB)];
    assert_eq!(gateway.health(&as_bob).await, Ok(ServingStatus::Serving));
    assert_eq!(gateway.health(&[]).await, Ok(ServingStatus::Serving));
    let unknown = "Bearer GINT:IMP:00000000-0000-4000-8000-000000000000";
    let unknown = [("authorization", unknown), ("x-guru-userid", BOB)];
    assert_eq!(gateway.health(&unknown).await, Err(Code::Unauthenticated));
    let no_user = [("authorization", token.as_str())];
    assert_eq!(gateway.health(&no_user).await, Err(Code::InvalidArgument));
    let spoofed = [("x-guru-userid", BOB)];
    assert_eq!(gateway.health(&spoofed).await, Err(Code::PermissionDenied));
    let outsider = [
        ("authorization", token.as_str()),
        ("x-guru-userid", "eve@elsewhere.example"),
    ];
    assert_eq!(gateway.health(&outsider).await, Err(Code::PermissionDenied));
}

#[tokio::test]
async fn a_users_file_gives_keys_and_aliases() {
    let users = r#"{"organizations": [{"id": "acme", "name": "Acme", "members": [
        {"id": "a1", "email": "root@acme.test", "name": "Root", "admin": true, "api_key": "k-root"},
        {"id": "u2", "email": "sam@acme.test", "name": "Sam", "aliases": ["sam@relay.test"]}
    ]}]}"#;
    let gateway = start_with(users, None).await;
    let body = r#"{"roles": ["read:whoami"]}"#;
    let headers = [("authorization", "Bearer k-root")];
    let (status, created) = gateway
        .send(Method::POST, TOKENS_PATH, &headers, body)
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let token = created["token"].as_str().unwrap();
    let (status, me) = gateway
        .whoami(&format!("Bearer {token}:sam@relay.test"))
        .await;
    assert_eq!((status, &me["id"]), (StatusCode::OK, &json!("u2")));
    let (status, _) = gateway
        .get("/api/v1/cards", &format!("Bearer {token}:sam@relay.test"))
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "read:whoami does not reach cards"
    );
}

/// What `pair` (two requests, one after the other) answers when both reach the gateway within
/// one second, the period of a limit of one request a second. A busy machine may part them by
/// more, and the limit then rightly lets the second through: such a pair is sent again once the
/// limit has refilled, five times at most.
async fn within_one_second<T>(mut pair: impl AsyncFnMut() -> T) -> T {
    for _ in 0..5 {
        let started = Instant::now();
        let answer = pair().await;
        if started.elapsed() < Duration::from_secs(1) {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    panic!("no two requests reached the gateway within one second in five tries");
}

#[tokio::test]
async fn a_client_past_the_rate_limit_gets_429_with_retry_after() {
    // One request a second: the guess passes to the layer, what follows within the second not.
    let gateway = start_with(DEMO_USERS, NonZeroU32::new(1)).await;
    let guess = "Bearer GINT:IMP:00000000-0000-4000-8000-000000000000:bob@example.com";
    let response = within_one_second(async || {
        assert_eq!(gateway.whoami(guess).await.0, StatusCode::UNAUTHORIZED);
        let request = Request::get(format!("{}/healthz", gateway.base))
            .body(Full::default())
            .unwrap();
        gateway.client.request(request).await.unwrap()
    })
    .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn a_grpc_client_past_the_rate_limit_gets_resource_exhausted() {
    let gateway = start_with(DEMO_USERS, NonZeroU32::new(1)).await;
    let grpc_check = || {
        Request::post(format!("{}/grpc.health.v1.Health/Check", gateway.base))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(Full::default())
            .unwrap()
    };
    // The first call spends the second's one request; the next is refused in gRPC's terms.
    let response = within_one_second(async || {
        gateway.client.request(grpc_check()).await.unwrap();
        gateway.client.request(grpc_check()).await.unwrap()
    })
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["grpc-status"], "8");
    assert!(response.headers().contains_key("retry-after"));
}

#[test]
fn a_users_file_with_a_shared_key_is_refused() {
    let users = r#"{"organizations": [{"id": "acme", "members": [
        {"id": "a1", "email": "a@acme.test", "api_key": "same"},
        {"id": "a2", "email": "b@acme.test", "api_key": "same"}
    ]}]}"#;
    let error = Accounts::from_json(users).err().expect("refused");
    assert!(error.contains("share"), "{error}");
}

/// Runs the printed walk in one `bash`, a marker line before each step, and checks each step's
/// output. Needs `bash` and `curl`: skipped without them, except under `CI`.
#[tokio::test(flavor = "multi_thread")]
async fn printed_curl_commands_work_as_printed() {
    let tools = ["bash", "curl"];
    if let Some(missing) = tools.iter().find(|tool| !on_path(tool)) {
        assert!(
            std::env::var_os("CI").is_none(),
            "{missing} is needed in CI"
        );
        eprintln!("skipped: {missing} is not installed");
        return;
    }
    let gateway = start().await;
    let steps = banner::steps(&gateway.base);
    let mut script = String::from("set -u\n");
    for (number, step) in steps.iter().enumerate() {
        script += &format!("echo; echo '@@ step {number}'\n{}\n", step.command);
    }
    let output = tokio::task::spawn_blocking(move || {
        Command::new("bash").arg("-c").arg(script).output().unwrap()
    })
    .await
    .unwrap();
    let output = String::from_utf8_lossy(&output.stdout);
    for (number, step) in steps.iter().enumerate() {
        let section = output
            .split(&format!("@@ step {number}\n"))
            .nth(1)
            .and_then(|rest| rest.split("@@ step").next())
            .unwrap_or_else(|| panic!("step {number} printed nothing:\n{output}"));
        assert!(
            shows(section, step.expect),
            "step {} ({}) expected {}, printed:\n{section}",
            number + 1,
            step.says,
            step.expect
        );
    }
}

fn shows(section: &str, expect: Expect) -> bool {
    match expect {
        Expect::Status(status) => {
            section
                .lines()
                .find(|line| line.starts_with("HTTP/"))
                .and_then(|line| line.split_whitespace().nth(1))
                == Some(&status.to_string())
        }
        Expect::Grpc(code) => section.contains(&format!("grpc-status: {code}\r")),
        Expect::Prints(text) => section.contains(text),
    }
}

fn on_path(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok()
}
