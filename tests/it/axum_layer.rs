//! The layer in a real axum server on loopback, driven by a real HTTP client: every answer
//! README's table documents, and what axum users reach for (`route_layer`, the extractor, the
//! options).

use crate::common::{http_cases, servers::serve, world};

use axum::{Router, routing::get};
use tower_impersonation::{
    CachingStore, ImpersonationLayer, MemoryStore, TokenStore, policy::deny_admins,
};

use http::StatusCode;
use http_cases::{Reply, check_documented_answers, echo, serve_behind};
use world::{ACME, BOB, CAROL_OF_GLOBEX, directory, tokens};

fn suffixed(token: &str, user: &str) -> Vec<u8> {
    format!("Bearer {token}:{user}").into_bytes()
}

#[tokio::test]
async fn every_documented_answer_over_http() {
    let tokens = tokens().await;
    let client = serve_behind(ImpersonationLayer::new(tokens.store.clone(), directory())).await;
    check_documented_answers(&client, &tokens).await;
}

#[tokio::test]
async fn unknown_user_and_another_organizations_user_get_the_same_answer() {
    let tokens = tokens().await;
    let client = serve_behind(ImpersonationLayer::new(tokens.store.clone(), directory())).await;
    let unknown = suffixed(&tokens.full, "nobody@acme.test");
    let foreign = suffixed(&tokens.full, CAROL_OF_GLOBEX);
    let unknown = client.get("/", &[("authorization", &unknown)]).await;
    let foreign = client.get("/", &[("authorization", &foreign)]).await;
    assert_eq!(unknown.status, StatusCode::FORBIDDEN);
    assert_eq!(unknown.body, foreign.body);
    assert_eq!(
        unknown.headers,
        foreign_headers_but_date(&foreign, &unknown)
    );
}

/// `foreign`'s headers with `unknown`'s `date`, which may tick between the two requests.
fn foreign_headers_but_date(foreign: &Reply, unknown: &Reply) -> http::HeaderMap {
    let mut headers = foreign.headers.clone();
    if let Some(date) = unknown.headers.get("date") {
        headers.insert("date", date.clone());
    }
    headers
}

#[tokio::test]
async fn a_token_stops_working_once_revoked_in_a_running_server() {
    let tokens = tokens().await;
    let client = serve_behind(ImpersonationLayer::new(tokens.store.clone(), directory())).await;
    let credential = suffixed(&tokens.full, BOB);
    let before = client.get("/", &[("authorization", &credential)]).await;
    assert_eq!(before.status, StatusCode::OK);

    assert!(tokens.store.revoke(ACME, tokens.full_id).await.unwrap());
    let after = client.get("/", &[("authorization", &credential)]).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    assert_eq!(after.body["error"], "invalid_token");
}

#[tokio::test]
async fn a_token_in_steady_use_over_a_cache_stops_working_once_revoked() {
    let tokens = tokens().await;
    let cache = CachingStore::new(MemoryStore::new(), tokens.store.clone());
    let client = serve_behind(ImpersonationLayer::new(cache.clone(), directory())).await;
    let credential = suffixed(&tokens.full, BOB);
    // Often enough that the serving thread holds on to the cached record.
    for _ in 0..8 {
        let before = client.get("/", &[("authorization", &credential)]).await;
        assert_eq!(before.status, StatusCode::OK);
    }

    assert!(cache.revoke(ACME, tokens.full_id).await.unwrap());
    let after = client.get("/", &[("authorization", &credential)]).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    assert_eq!(after.body["error"], "invalid_token");
}

#[tokio::test]
async fn require_refuses_requests_without_a_credential() {
    let tokens = tokens().await;
    let layer = ImpersonationLayer::builder(tokens.store.clone(), directory())
        .require_impersonation(true)
        .build();
    let client = serve_behind(layer).await;

    let bare = client.get("/", &[]).await;
    assert_eq!(bare.status, StatusCode::UNAUTHORIZED);
    assert_eq!(bare.challenge(), Some("Bearer"));
    let own_key = client
        .get("/", &[("authorization", b"Bearer app-key")])
        .await;
    assert_eq!(own_key.status, StatusCode::UNAUTHORIZED);

    let credential = suffixed(&tokens.full, BOB);
    let impersonated = client.get("/", &[("authorization", &credential)]).await;
    assert_eq!(impersonated.status, StatusCode::OK);
}

#[tokio::test]
async fn authorization_reaches_the_app_unless_stripped() {
    let tokens = tokens().await;
    let credential = suffixed(&tokens.full, BOB);
    let kept = serve_behind(ImpersonationLayer::new(tokens.store.clone(), directory())).await;
    let stripped = ImpersonationLayer::builder(tokens.store.clone(), directory())
        .strip_authorization(true)
        .build();
    let stripped = serve_behind(stripped).await;

    let kept = kept.get("/", &[("authorization", &credential)]).await;
    assert_eq!(kept.body["authorization"], true);
    let stripped = stripped.get("/", &[("authorization", &credential)]).await;
    assert_eq!(stripped.status, StatusCode::OK);
    assert_eq!(stripped.body["authorization"], false);
    assert_eq!(stripped.body["impersonated"]["email"], BOB);
}

#[tokio::test]
async fn a_renamed_user_header_is_matched_in_any_case() {
    let tokens = tokens().await;
    let layer = ImpersonationLayer::builder(tokens.store.clone(), directory())
        .user_header("X-Act-As")
        .unwrap()
        .build();
    let client = serve_behind(layer).await;
    let bearer = format!("Bearer {}", tokens.full).into_bytes();

    let reply = client
        .get(
            "/",
            &[("authorization", &bearer), ("X-ACT-AS", BOB.as_bytes())],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["impersonated"]["email"], BOB);
    let old_name = client
        .get(
            "/",
            &[
                ("authorization", &bearer),
                ("x-guru-userid", BOB.as_bytes()),
            ],
        )
        .await;
    assert_eq!(old_name.status, StatusCode::BAD_REQUEST, "no user named");
}

#[tokio::test]
async fn deny_admins_keeps_admins_from_being_impersonated_with_the_usual_answer() {
    let tokens = tokens().await;
    let layer = ImpersonationLayer::builder(tokens.store.clone(), directory())
        .impersonation_policy(deny_admins())
        .build();
    let client = serve_behind(layer).await;

    let admin = suffixed(&tokens.full, "ada@acme.test");
    let admin = client.get("/", &[("authorization", &admin)]).await;
    let unknown = suffixed(&tokens.full, "nobody@acme.test");
    let unknown = client.get("/", &[("authorization", &unknown)]).await;
    assert_eq!(admin.status, StatusCode::FORBIDDEN);
    assert_eq!(admin.body, unknown.body);
    let member = suffixed(&tokens.full, BOB);
    let member = client.get("/", &[("authorization", &member)]).await;
    assert_eq!(member.status, StatusCode::OK);
}

#[tokio::test]
async fn route_layer_guards_matched_routes_only() {
    let tokens = tokens().await;
    let router = Router::new()
        .route("/api/v1/whoami", get(echo))
        .route_layer(ImpersonationLayer::new(tokens.store.clone(), directory()));
    let client = serve(router).await;
    let spoofed = [("x-guru-userid", BOB.as_bytes())];

    assert_eq!(
        client.get("/api/v1/whoami", &spoofed).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        client.get("/nowhere", &spoofed).await.status,
        StatusCode::NOT_FOUND
    );
}

#[cfg(feature = "axum")]
#[tokio::test]
async fn the_extractor_answers_401_when_not_impersonated_and_option_takes_both() {
    use axum::Json;
    use serde_json::{Value, json};
    use tower_impersonation::ImpersonatedUser;

    let tokens = tokens().await;
    async fn required(user: ImpersonatedUser) -> Json<Value> {
        Json(json!({"email": user.user().email}))
    }
    async fn optional(user: Option<ImpersonatedUser>) -> Json<Value> {
        Json(json!({"email": user.map(|u| u.user().email.clone())}))
    }
    let router = Router::new()
        .route("/required", get(required))
        .route("/optional", get(optional))
        .layer(ImpersonationLayer::new(tokens.store.clone(), directory()));
    let client = serve(router).await;
    let credential = suffixed(&tokens.full, BOB);
    let impersonated = [("authorization", &credential[..])];

    let refused = client.get("/required", &[]).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.body["error"], "unauthorized");
    assert_eq!(
        client.get("/required", &impersonated).await.body["email"],
        BOB
    );
    assert_eq!(
        client.get("/optional", &[]).await.body["email"],
        Value::Null
    );
    assert_eq!(
        client.get("/optional", &impersonated).await.body["email"],
        BOB
    );
}
