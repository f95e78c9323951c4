//! Servers on loopback, written once: a free port, an axum app served for a test, and the URL of
//! a server a test needs.

use std::net::TcpListener;

use axum::Router;

use super::http_cases::HttpClient;

/// A loopback port free at the time of asking.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Serves `router` on a loopback port for as long as the test runs, and a client for it.
pub async fn serve(router: Router) -> HttpClient {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    HttpClient::new(base)
}

/// The URL of the test server named by environment `variable`. The tests that call it are
/// ignored unless asked for, so an unset variable fails the test that was asked to run.
pub fn server_url(variable: &str) -> String {
    match std::env::var(variable) {
        Ok(url) if !url.is_empty() => url,
        _ => panic!("{variable} is not set: this test needs the server it names"),
    }
}
