//! The example gateway on its default store, an SQLite file, run as a process and restarted or
//! killed: tokens and revocations outlive it, and `kill -9` in the middle of creations loses no
//! token whose creation was answered.

mod gateway_process;

use std::{
    collections::HashSet,
    sync::Arc,
    time::{Duration, Instant},
};

use http::StatusCode;
use sqlx::{Connection, SqliteConnection};
use tokio::sync::Mutex;

use gateway_process::{Gateway, free_port};

/// `sqlite://` URL of a file in `dir`.
fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("impersonation.db").display())
}

#[tokio::test]
async fn a_restarted_gateway_keeps_its_tokens_and_their_revocations() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut gateway = Gateway::start(&sqlite_url(&dir), port).await;
    let (kept, kept_id) = gateway.create_ok().await;
    let (revoked, revoked_id) = gateway.create_ok().await;
    assert_eq!(gateway.as_bob(&kept).await, StatusCode::OK);
    assert_eq!(gateway.revoke(&revoked_id).await, StatusCode::NO_CONTENT);
    assert_eq!(gateway.as_bob(&revoked).await, StatusCode::UNAUTHORIZED);
    gateway.kill_9();

    let gateway = Gateway::start(&sqlite_url(&dir), port).await;
    assert_eq!(
        gateway.as_bob(&kept).await,
        StatusCode::OK,
        "kept across the restart"
    );
    assert_eq!(
        gateway.as_bob(&revoked).await,
        StatusCode::UNAUTHORIZED,
        "still revoked after the restart"
    );
    assert_eq!(gateway.listed_ids().await, [kept_id]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_burst_of_creates_loses_no_token_answered_200() {
    const CLIENTS: usize = 4;
    const KILL_AFTER: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut gateway = Gateway::start(&sqlite_url(&dir), port).await;
    let base_client = Arc::new(gateway_process::Client::new(&gateway.base));
    let answered = Arc::new(Mutex::new(Vec::new()));

    // Clients create tokens back to back; the process is killed while they are at it.
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let (client, answered) = (Arc::clone(&base_client), Arc::clone(&answered));
        clients.spawn(async move {
            while let Ok((status, created)) = client.create().await {
                if status != StatusCode::OK {
                    break;
                }
                let token = created["token"].as_str().unwrap().to_owned();
                let id = created["id"].as_str().unwrap().to_owned();
                answered.lock().await.push((token, id));
            }
        });
    }
    let started = Instant::now();
    while answered.lock().await.len() < KILL_AFTER {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "fewer than {KILL_AFTER} creations answered within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    gateway.kill_9();
    clients.join_all().await;
    let answered = answered.lock().await.clone();

    // No half-written row: the file is consistent and every row reads back in the listing.
    let mut file = SqliteConnection::connect(&sqlite_url(&dir)).await.unwrap();
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut file)
        .await
        .unwrap();
    assert_eq!(check, "ok");
    file.close().await.unwrap();

    let gateway = Gateway::start(&sqlite_url(&dir), port).await;
    let listed: HashSet<String> = gateway.listed_ids().await.into_iter().collect();
    for (token, id) in &answered {
        assert!(
            listed.contains(id),
            "token {id} was answered 200 and is gone"
        );
        assert_eq!(gateway.as_bob(token).await, StatusCode::OK, "{id}");
    }
    // At most the creations in flight at the kill were stored without an answer.
    assert!(
        listed.len() <= answered.len() + CLIENTS,
        "{} listed, {} answered",
        listed.len(),
        answered.len()
    );
}
