//! The audit events of the layer, captured from a real axum server on loopback. This test has its
//! binary to itself: tracing caches which callsites are enabled process-wide, and tests running
//! beside it without a subscriber would race it.

mod common;

use common::{captured_logs, http_cases, servers::serve, world};

use std::sync::{Arc, Mutex};

use axum::{Extension, Router, routing::any};
use http::StatusCode;
use tower_impersonation::{
    Audit, AuditEvent, AuditOutcome, ImpersonationLayer, MemoryStore, StaticDirectory,
    UserDirectory,
    directory::{DirectoryError, Member, UserWithMemberships},
    jwt::JwtKeys,
    services::{Caller, OrganizationImpersonationService, TokenService},
};

use captured_logs::Captured;
use http_cases::{echo, serve_behind};
use world::{ACME, BOB, directory, tokens};

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

/// What an outer layer put in the request's extensions, for the audit to read.
#[derive(Clone)]
struct RequestTag(&'static str);

/// The test directory, made to answer only by waiting: the layer's decisions then take the path
/// of backends that cannot answer at once.
struct WaitingDirectory(StaticDirectory);

impl UserDirectory for WaitingDirectory {
    async fn resolve(
        &self,
        organization: &str,
        who: &str,
    ) -> Result<Option<Member>, DirectoryError> {
        self.0.resolve(organization, who).await
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<UserWithMemberships>, DirectoryError> {
        self.0.user_by_id(id).await
    }
}

/// One line per decision: outcome, method, path, the outer layer's tag, and the user or error.
fn describe(event: &AuditEvent<'_>) -> String {
    let tag = event
        .extensions
        .get::<RequestTag>()
        .map_or("untagged", |tag| tag.0);
    let about = match event.outcome {
        AuditOutcome::Accepted(user) => user.user().id.clone(),
        AuditOutcome::Refused(rejection) => rejection.error_code().to_owned(),
        other => describe_admin_change(&other),
    };
    let (outcome, method, path) = (event.outcome.as_str(), event.method, event.uri.path());
    format!("{outcome} {method} {path} {tag} {about}")
}

/// An admin's change: who, where, and the token, JWT or user it concerns.
fn describe_admin_change(outcome: &AuditOutcome<'_>) -> String {
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
        } => format!("{admin}@{organization} token {token_id}"),
        AuditOutcome::JwtIssued {
            admin,
            organization,
            user,
            jti,
            reason,
        } => format!("{admin}@{organization} jwt {jti} for {user} ({reason:?})"),
        AuditOutcome::JwtRevoked {
            admin,
            organization,
            jti,
        } => format!("{admin}@{organization} jwt {jti}"),
        AuditOutcome::UserJwtsRevoked {
            admin,
            organization,
            user,
        } => format!("{admin}@{organization} jwts of {user}"),
        _ => "unknown".to_owned(),
    }
}

#[tokio::test]
async fn an_audit_of_ones_own_hears_what_admins_create_and_end_through_the_services() {
    let (captured, _guard) = Captured::start();
    let heard = Arc::new(Mutex::new(Vec::new()));
    let audit: Arc<dyn Audit> = {
        let heard = Arc::clone(&heard);
        Arc::new(move |event: &AuditEvent<'_>| heard.lock().unwrap().push(describe(event)))
    };
    let store = MemoryStore::new();
    let keys = JwtKeys::hs256(b"the audit test's secret, 32 bytes").unwrap();
    let tokens = TokenService::new(store.clone(), directory()).audit(Arc::clone(&audit));
    let organizations =
        OrganizationImpersonationService::new(directory(), keys, store).audit(audit);
    let router = Router::new()
        .route_service("/api/v1/api-tokens/impersonation", tokens.clone())
        .route_service("/api/v1/api-tokens/impersonation/{id}", tokens)
        .route_service(
            "/api/v2/organizations/{org}/impersonation",
            organizations.clone(),
        )
        .route_service(
            "/api/v2/organizations/{org}/impersonation/{jti}",
            organizations,
        )
        .layer(Extension(Caller::new("a-1", ACME, true)))
        .layer(Extension(RequestTag("outer")));
    let client = serve(router).await;
    let json_api: &[(&str, &[u8])] = &[("content-type", b"application/vnd.api+json")];

    let tokens_path = "/api/v1/api-tokens/impersonation";
    let created = client
        .send_body(http::Method::POST, tokens_path, &[], "{}")
        .await;
    assert_eq!(created.status, StatusCode::OK);
    let token_id = created.body["id"].as_str().unwrap().to_owned();
    let revoke_token = format!("{tokens_path}/{token_id}");
    assert_eq!(
        client
            .send(http::Method::DELETE, &revoke_token, &[])
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let not_found = client.send(http::Method::DELETE, &revoke_token, &[]).await;
    assert_eq!(not_found.status, StatusCode::NOT_FOUND, "nothing to audit");

    let jwts_path = format!("/api/v2/organizations/{ACME}/impersonation");
    let ask = r#"{"data": {"type": "impersonation", "attributes": {"reason": "ticket 7", "user": "bob@acme.test"}}}"#;
    let minted = client
        .send_body(http::Method::POST, &jwts_path, json_api, ask)
        .await;
    assert_eq!(minted.status, StatusCode::OK, "{}", minted.body);
    let live = client.get(&jwts_path, &[]).await;
    assert_eq!(live.status, StatusCode::OK);
    let jti = live.body["data"][0]["id"].as_str().unwrap().to_owned();
    let revoke_jwt = format!("{jwts_path}/{jti}");
    assert_eq!(
        client
            .send(http::Method::DELETE, &revoke_jwt, &[])
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let revoke_users = format!("{jwts_path}?user=bob%40acme.test");
    assert_eq!(
        client
            .send(http::Method::DELETE, &revoke_users, &[])
            .await
            .status,
        StatusCode::NO_CONTENT
    );

    assert_eq!(
        *heard.lock().unwrap(),
        [
            format!("token_created POST {tokens_path} outer a-1@acme token {token_id}"),
            format!("token_revoked DELETE {revoke_token} outer a-1@acme token {token_id}"),
            format!(
                "jwt_issued POST {jwts_path} outer a-1@acme jwt {jti} for b-1 (Some(\"ticket 7\"))"
            ),
            format!("jwt_revoked DELETE {revoke_jwt} outer a-1@acme jwt {jti}"),
            format!("user_jwts_revoked DELETE {jwts_path} outer a-1@acme jwts of b-1"),
        ]
    );
    let logs = captured.text();
    assert!(
        !logs.contains("tower_impersonation::audit"),
        "the default tracing audit is replaced, not doubled:\n{logs}"
    );
}

#[tokio::test]
async fn an_audit_of_ones_own_hears_every_decision_with_the_requests_extensions_instead_of_tracing()
{
    let (captured, _guard) = Captured::start();
    let tokens = tokens().await;
    let credential = format!("Bearer {}:{BOB}", tokens.full).into_bytes();
    let read_only = format!("Bearer {}:{BOB}", tokens.read_only).into_bytes();
    for waiting in [false, true] {
        let heard = Arc::new(Mutex::new(Vec::new()));
        let audit = {
            let heard = Arc::clone(&heard);
            move |event: &AuditEvent<'_>| heard.lock().unwrap().push(describe(event))
        };
        let store = tokens.store.clone();
        let layer = if waiting {
            ImpersonationLayer::builder(store, WaitingDirectory(directory()))
                .audit(audit)
                .build()
        } else {
            ImpersonationLayer::builder(store, directory())
                .audit(audit)
                .build()
        };
        let router = Router::new()
            .fallback(any(echo))
            .layer(layer)
            .layer(Extension(RequestTag("outer")));
        let client = serve(router).await;

        let accepted = client
            .send(
                http::Method::DELETE,
                "/api/v1/cards/7",
                &[("authorization", &credential)],
            )
            .await;
        assert_eq!(accepted.status, StatusCode::OK);
        let refused = client
            .send(
                http::Method::POST,
                "/api/v1/cards",
                &[("authorization", &read_only)],
            )
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        client.get("/api/v1/cards", &[]).await;

        assert_eq!(
            *heard.lock().unwrap(),
            [
                "accepted DELETE /api/v1/cards/7 outer b-1",
                "refused POST /api/v1/cards outer insufficient_scope",
            ],
            "waiting directory: {waiting}"
        );
    }
    let logs = captured.text();
    assert!(
        !logs.contains("tower_impersonation::audit"),
        "the default tracing audit is replaced, not doubled:\n{logs}"
    );
}
