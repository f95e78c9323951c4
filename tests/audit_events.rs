//! The audit events of the layer, captured from a real axum server on loopback. This test has its
//! binary to itself: tracing caches which callsites are enabled process-wide, and tests running
//! beside it without a subscriber would race it.

mod captured_logs;
#[allow(dead_code, reason = "each layer test uses a part")]
mod http_cases;
#[allow(dead_code, reason = "each layer test uses a part")]
mod layer_fixture;

use axum::{Json, Router, extract::Request, routing::any};
use http::StatusCode;
use serde_json::Value;
use tokio::net::TcpListener;
use tower_impersonation::ImpersonationLayer;

use captured_logs::Captured;
use http_cases::{HttpClient, what_the_app_saw};
use layer_fixture::{BOB, directory, tokens};

async fn serve_behind(layer: ImpersonationLayer) -> HttpClient {
    async fn echo(request: Request) -> Json<Value> {
        Json(what_the_app_saw(&request))
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = Router::new().fallback(any(echo)).layer(layer);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    HttpClient::new(base)
}

#[tokio::test]
async fn accepted_and_refused_impersonations_are_audited_with_who_did_what() {
    // The test's runtime has one thread, so the server's tasks log through this subscriber too.
    let (captured, _guard) = Captured::start();
    let tokens = tokens().await;
    let client = serve_behind(ImpersonationLayer::new(tokens.store.clone(), directory())).await;
    let credential = format!("Bearer {}:{BOB}", tokens.full).into_bytes();
    let token_id = tokens.full_id;

    let accepted = client
        .send(
            http::Method::DELETE,
            "/api/v1/cards/7",
            &[("authorization", &credential)],
        )
        .await;
    assert_eq!(accepted.status, StatusCode::OK);
    client
        .get("/api/v1/cards", &[("x-guru-userid", BOB.as_bytes())])
        .await;

    let logs = captured.text();
    let audit = |outcome: &str| {
        logs.lines()
            .find(|line| line.contains("tower_impersonation::audit") && line.contains(outcome))
            .unwrap_or_else(|| panic!("no {outcome} audit event in:\n{logs}"))
            .to_owned()
    };
    let accepted = audit(r#"outcome="accepted""#);
    for field in [
        r#"actor="a-1""#.to_owned(),
        r#"user="b-1""#.to_owned(),
        r#"organization="acme""#.to_owned(),
        format!(r#"token_id="{token_id}""#),
        r#"source="token_suffix""#.to_owned(),
        r#"method="DELETE""#.to_owned(),
        r#"path="/api/v1/cards/7""#.to_owned(),
    ] {
        assert!(accepted.contains(&field), "{field} missing from {accepted}");
    }
    let refused = audit(r#"outcome="refused""#);
    assert!(refused.contains(r#"reason="access_denied""#), "{refused}");
    assert!(refused.contains("status=403"), "{refused}");
    assert!(
        !logs.contains(&tokens.full),
        "the token never reaches the log"
    );
}
