//! A tonic server with impersonation: the layer in front of every gRPC service (here the standard
//! health service), refusals answered as gRPC status codes.
//!
//! `cargo run --example tonic`
//!
//! A service of your own reads the user from its request:
//! `request.extensions().get::<ImpersonatedUser>()`. This example stores two tokens for Ada, an
//! admin, serves on a free loopback port, and calls `Check` with the token in the metadata.

use tonic::{
    Code, Request,
    transport::{Channel, Server, server::TcpIncoming},
};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use tower_impersonation::{
    ImpersonationLayer, MemoryStore, Roles, StaticDirectory, TokenPrefix, TokenRecord, TokenStore,
    policy::GrpcPolicy,
};

type Error = Box<dyn std::error::Error + Send + Sync>;

const DIRECTORY: &str = r#"{"organizations": [{"id": "acme", "members": [
    {"id": "a-1", "email": "ada@acme.test", "name": "Ada", "admin": true},
    {"id": "b-1", "email": "bob@acme.test", "name": "Bob"}]}]}"#;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let directory = StaticDirectory::from_json(DIRECTORY)?;
    let store = MemoryStore::new();
    let full = issue(&store, "*:*").await?;
    let read_only = issue(&store, "read:*").await?;

    // gRPC methods are reads when named like one (Get…, List…, Watch…); `Check` is a write.
    let layer = ImpersonationLayer::builder(store, directory)
        .access_policy(GrpcPolicy::new())
        .build();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let server = Server::builder()
        .layer(layer)
        .add_service(health)
        .serve_with_incoming(TcpIncoming::from(listener));
    tokio::spawn(server);

    let channel = Channel::from_shared(format!("http://{address}"))?
        .connect()
        .await?;
    let mut client = HealthClient::new(channel);
    for (what, token, expected) in [
        ("full access, as Bob", &full, Code::Ok),
        ("read-only, as Bob", &read_only, Code::PermissionDenied),
    ] {
        let mut request = Request::new(HealthCheckRequest::default());
        let value = format!("Bearer {token}:bob@acme.test").parse()?;
        request.metadata_mut().insert("authorization", value);
        let code = match client.check(request).await {
            Ok(response) => {
                println!("{what}: {:?}", response.into_inner().status());
                Code::Ok
            }
            Err(status) => {
                println!("{what}: {:?} {}", status.code(), status.message());
                status.code()
            }
        };
        assert_eq!(code, expected, "{what}");
    }
    Ok(())
}

/// Stores a token of Ada's with these roles, as the token service would, and returns it.
async fn issue(store: &MemoryStore, role: &str) -> Result<String, Error> {
    let roles = Roles::parse(&[role])?;
    let (secret, record) = TokenRecord::issue(&TokenPrefix::default(), "acme", "a-1", roles);
    store.create(record, usize::MAX).await?;
    Ok(secret.expose())
}
