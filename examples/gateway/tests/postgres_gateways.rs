//! Example gateways on Postgres, run as processes: two instances share tokens and revocations,
//! and an outage answers 503, never 200, and heals without a restart.
//!
//! `two_gateways_share_tokens_and_revocations` uses `DATABASE_URL` (a database of its own is
//! created there); the outage test starts and stops a Postgres server of its own. Each is
//! ignored unless asked for (`-- --ignored`, as `.ci/run` does), and then fails without its
//! server.
#![cfg(feature = "postgres")]

mod gateway_process;
#[path = "../../../tests/common/postgres_server.rs"]
mod postgres_server;

use std::time::{Duration, Instant};

use http::StatusCode;
use sqlx::{Connection, PgConnection};
use tower_impersonation::store::DEFAULT_CACHE_LIFETIME;
use uuid::Uuid;

use gateway_process::{Gateway, free_port};
use postgres_server::PostgresServer;

/// A new, empty database on the server at `DATABASE_URL`: its URL.
async fn new_database() -> String {
    let url = std::env::var("DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .expect("DATABASE_URL is not set: this test needs the Postgres it names");
    let name = format!("gateways_{}", Uuid::new_v4().simple());
    let mut server = PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&mut server)
        .await
        .unwrap();
    let (without_query, _) = url.split_once('?').unwrap_or((&url, ""));
    let (server_url, _) = without_query.rsplit_once('/').unwrap();
    format!("{server_url}/{name}")
}

/// Asks `gateway` as Bob with `token` until the answer is `expected`, for at most `bound`;
/// answers how long it took.
async fn until_status(
    gateway: &Gateway,
    token: &str,
    expected: StatusCode,
    bound: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        let status = gateway.as_bob(token).await;
        if status == expected {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < bound,
            "still {status} after {bound:?}, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
#[ignore = "needs DATABASE_URL (.ci/run runs it)"]
async fn two_gateways_share_tokens_and_revocations() {
    let database = new_database().await;
    let a = Gateway::start(&database, free_port()).await;
    let b = Gateway::start(&database, free_port()).await;

    let (token, id) = a.create_ok().await;
    assert_eq!(
        b.as_bob(&token).await,
        StatusCode::OK,
        "created on A, used on B"
    );
    assert_eq!(a.as_bob(&token).await, StatusCode::OK, "and cached on A");

    assert_eq!(b.revoke(&id).await, StatusCode::NO_CONTENT);
    assert_eq!(
        b.as_bob(&token).await,
        StatusCode::UNAUTHORIZED,
        "at once on B"
    );
    // The documented bound: the cache lifetime, even if the announcement were lost.
    let took = until_status(&a, &token, StatusCode::UNAUTHORIZED, DEFAULT_CACHE_LIFETIME).await;
    eprintln!("A refused the token {took:?} after B revoked it");
    assert!(a.listed_ids().await.is_empty());
}

#[tokio::test]
#[ignore = "needs DATABASE_URL (.ci/run runs it)"]
async fn a_jwt_revoked_on_one_gateway_is_refused_by_the_other() {
    let database = new_database().await;
    let a = Gateway::start(&database, free_port()).await;
    let b = Gateway::start(&database, free_port()).await;
    let (jwt, jti) = a.mint_jwt().await;
    assert_eq!(a.with_jwt(&jwt).await, StatusCode::OK);
    assert_eq!(b.with_jwt(&jwt).await, StatusCode::OK, "both hold the key");

    assert_eq!(b.revoke_jwt(&jti).await, StatusCode::NO_CONTENT);
    assert_eq!(
        b.with_jwt(&jwt).await,
        StatusCode::UNAUTHORIZED,
        "at once on B"
    );
    let started = Instant::now();
    while a.with_jwt(&jwt).await != StatusCode::UNAUTHORIZED {
        assert!(
            started.elapsed() < DEFAULT_CACHE_LIFETIME,
            "A still accepts it"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "A refused the JWT {:?} after B revoked it",
        started.elapsed()
    );
}

#[tokio::test]
#[ignore = "needs Postgres's initdb and pg_ctl (.ci/run runs it)"]
async fn a_postgres_outage_answers_503_and_heals_without_restarting_the_gateway() {
    let server = PostgresServer::start(free_port())
        .expect("Postgres (initdb, pg_ctl) is not installed: this test needs it");
    let gateway = Gateway::start(&server.url(), free_port()).await;
    let (used, _) = gateway.create_ok().await;
    let (unused, _) = gateway.create_ok().await;
    assert_eq!(gateway.as_bob(&used).await, StatusCode::OK, "now cached");

    server.stop();
    let (status, retry_after) = gateway.as_bob_retry_after(&unused).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "a token the cache does not hold cannot be checked: 503, never 200"
    );
    assert!(retry_after.is_some(), "503 says when to retry");
    let (status, refused) = gateway.create().await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{refused}");
    // A cached token works for at most the cache lifetime, then fails closed too.
    let bound = DEFAULT_CACHE_LIFETIME + Duration::from_secs(5);
    until_status(&gateway, &used, StatusCode::SERVICE_UNAVAILABLE, bound).await;

    server.start_again();
    let bound = Duration::from_secs(20);
    until_status(&gateway, &unused, StatusCode::OK, bound).await;
    assert_eq!(gateway.as_bob(&used).await, StatusCode::OK);
    gateway.create_ok().await;
}
