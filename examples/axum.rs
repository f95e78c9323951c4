//! An axum app with impersonation: the layer in front of every route, the token service mounted
//! for admins, and the app's own authentication saying who calls it.
//!
//! `cargo run --example axum --features axum`
//!
//! It serves on a free loopback port and then acts as its own client: Ada, an admin, creates a
//! read-only token, reads `/api/v1/whoami` as Bob with it, is refused a write, revokes the token,
//! and is refused from then on.

use axum::{
    Router,
    extract::Request,
    middleware::{self, Next},
    response::Response,
    routing::get,
};
use bytes::Bytes;
use http::{Method, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use serde_json::Value;
use tokio::net::TcpListener;
use tower_impersonation::{
    ImpersonatedUser, ImpersonationLayer, MemoryStore, StaticDirectory,
    services::{Caller, TokenService},
};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Who may be impersonated: in a real app, a `UserDirectory` over the app's own users.
const DIRECTORY: &str = r#"{"organizations": [{"id": "acme", "members": [
    {"id": "a-1", "email": "ada@acme.test", "name": "Ada", "admin": true},
    {"id": "b-1", "email": "bob@acme.test", "name": "Bob"}]}]}"#;
/// The token service's default base path.
const TOKENS: &str = "/api/v1/api-tokens/impersonation";
/// The key this app's own authentication knows Ada by.
const ADA_KEY: &str = "Bearer ada-secret-key";

#[tokio::main]
async fn main() -> Result<(), Error> {
    let directory = StaticDirectory::from_json(DIRECTORY)?;
    let store = MemoryStore::new(); // clones share the tokens
    let tokens = TokenService::new(store.clone(), directory.clone());
    let app = Router::new()
        .route("/api/v1/whoami", get(whoami).post(whoami))
        .route_service(TOKENS, tokens.clone())
        .route_service(&format!("{TOKENS}/{{id}}"), tokens)
        .layer(ImpersonationLayer::new(store, directory))
        .layer(middleware::from_fn(authenticate));

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();

    let create = r#"{"name": "support", "roles": ["read:*"]}"#;
    let (status, created) = send(
        &client,
        Method::POST,
        &format!("{base}{TOKENS}"),
        ADA_KEY,
        create,
    )
    .await?;
    println!("Ada creates a read-only token: {status}");
    let token = created["token"].as_str().ok_or("no token in the answer")?;
    let id = created["id"].as_str().ok_or("no id in the answer")?;
    let as_bob = format!("Bearer {token}:bob@acme.test");

    let whoami = format!("{base}/api/v1/whoami");
    let (status, body) = send(&client, Method::GET, &whoami, &as_bob, "").await?;
    println!("GET  /api/v1/whoami as Bob: {status} {body}");
    assert_eq!(status, StatusCode::OK);
    let (status, body) = send(&client, Method::POST, &whoami, &as_bob, "").await?;
    println!("POST /api/v1/whoami as Bob: {status} {}", body["error"]);
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a read-only token cannot write"
    );

    let (status, _) = send(
        &client,
        Method::DELETE,
        &format!("{base}{TOKENS}/{id}"),
        ADA_KEY,
        "",
    )
    .await?;
    println!("Ada revokes the token: {status}");
    let (status, body) = send(&client, Method::GET, &whoami, &as_bob, "").await?;
    println!("GET  /api/v1/whoami as Bob: {status} {}", body["error"]);
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a revoked token stops at once"
    );
    Ok(())
}

/// A route that answers who it is called as; the extractor refuses requests not impersonated.
async fn whoami(user: ImpersonatedUser) -> String {
    let actor = user.actor().user_id().unwrap_or("unknown");
    format!(
        "{} ({}), on behalf of {actor}",
        user.user().name,
        user.user().email
    )
}

/// The app's own authentication: it knows Ada by her key and tells the token service who calls.
/// Requests with an impersonation token pass untouched; the layer checks those.
async fn authenticate(mut request: Request, next: Next) -> Response {
    let authorization = request.headers().get(header::AUTHORIZATION);
    if authorization.is_some_and(|value| value == ADA_KEY) {
        request
            .extensions_mut()
            .insert(Caller::new("a-1", "acme", true));
    }
    next.run(request).await
}

/// Sends one request and reads its JSON (or text) answer.
async fn send(
    client: &Client<HttpConnector, Full<Bytes>>,
    method: Method,
    uri: &str,
    authorization: &str,
    body: &'static str,
) -> Result<(StatusCode, Value), Error> {
    let request = http::Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, authorization)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from_static(body.as_bytes())))?;
    let response = client.request(request).await?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    let text = String::from_utf8_lossy(&bytes);
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text.into())),
    ))
}
