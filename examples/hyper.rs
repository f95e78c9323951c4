//! A plain hyper 1 server with impersonation: `tower::ServiceBuilder` puts the layer in front of
//! a `service_fn`, and hyper-util serves it.
//!
//! `cargo run --example hyper`
//!
//! It stores a token for Ada, an admin, serves on a free loopback port, and then acts as its own
//! client: a request as Bob, one without a user, and one without any credential.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response, header};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::{
    client::legacy::Client,
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
    service::TowerToHyperService,
};
use tokio::net::TcpListener;
use tower::{ServiceBuilder, service_fn};
use tower_impersonation::{
    ImpersonatedUser, ImpersonationLayer, MemoryStore, Roles, StaticDirectory, TokenPrefix,
    TokenRecord, TokenStore,
};

type Error = Box<dyn std::error::Error + Send + Sync>;

const DIRECTORY: &str = r#"{"organizations": [{"id": "acme", "members": [
    {"id": "a-1", "email": "ada@acme.test", "name": "Ada", "admin": true},
    {"id": "b-1", "email": "bob@acme.test", "name": "Bob"}]}]}"#;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let directory = StaticDirectory::from_json(DIRECTORY)?;
    let store = MemoryStore::new();
    // A token issued straight into the store, as the token service would for Ada.
    let roles = Roles::parse(&["*:*"])?;
    let (secret, record) = TokenRecord::issue(&TokenPrefix::default(), "acme", "a-1", roles);
    store.create(record, usize::MAX).await?;

    let service = ServiceBuilder::new()
        .layer(ImpersonationLayer::new(store, directory))
        .service(service_fn(app));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let connection = auto::Builder::new(TokioExecutor::new());
                let _ = connection
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });

    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let token = secret.expose();
    // What each request shows, and the status it must get.
    for (what, authorization, user, expected) in [
        (
            "as Bob",
            format!("Bearer {token}"),
            Some("bob@acme.test"),
            200,
        ),
        ("without a user", format!("Bearer {token}"), None, 400),
        ("without a credential", String::new(), None, 200),
    ] {
        let mut request = Request::get(format!("{base}/api/v1/whoami"));
        if !authorization.is_empty() {
            request = request.header(header::AUTHORIZATION, authorization);
        }
        if let Some(user) = user {
            request = request.header("x-guru-userid", user);
        }
        let response = client.request(request.body(Empty::new())?).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        println!("{what}: {status} {}", String::from_utf8_lossy(&body));
        assert_eq!(status, expected, "{what}");
    }
    Ok(())
}

/// The app: says who the request acts as, if anyone.
async fn app(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let answer = match request.extensions().get::<ImpersonatedUser>() {
        Some(user) => format!("acting as {}", user.user().name),
        None => "not impersonated".to_owned(),
    };
    Ok(Response::new(Full::new(Bytes::from(answer))))
}
