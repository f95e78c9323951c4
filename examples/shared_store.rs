//! Many instances of one app sharing a store: each keeps a cache in memory in front of Postgres or
//! Redis, and hears the others' revocations at once.
//!
//! `DATABASE_URL=postgres://… cargo run --example shared_store --features postgres,redis`, or
//! `REDIS_URL=redis://…` instead.
//!
//! Two instances, A and B, run in this one process for the demonstration: A issues a token, B
//! accepts it, A revokes it, and B refuses it as soon as the announcement arrives, long before its
//! cache lifetime would have it read the store again.

use std::{
    convert::Infallible,
    time::{Duration, Instant},
};

use http::{Request, Response, StatusCode};
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_impersonation::{
    ImpersonationLayer, MemoryStore, Roles, StaticDirectory, TokenPrefix, TokenRecord, TokenStore,
    store::{CachingStore, PostgresStore, RedisStore, RevocationFeed, RevocationListener},
};

type Error = Box<dyn std::error::Error + Send + Sync>;

const DIRECTORY: &str = r#"{"organizations": [{"id": "acme", "members": [
    {"id": "a-1", "email": "ada@acme.test", "name": "Ada", "admin": true},
    {"id": "b-1", "email": "bob@acme.test", "name": "Bob"}]}]}"#;

#[tokio::main]
async fn main() -> Result<(), Error> {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        let connect = async || -> Result<PostgresStore, Error> {
            let store = PostgresStore::connect(&url).await?;
            store.migrate().await?; // creates or updates the tables, once, whoever runs it first
            Ok(store)
        };
        return run("Postgres", connect().await?, connect().await?).await;
    }
    if let Ok(url) = std::env::var("REDIS_URL") {
        let (a, b) = (
            RedisStore::connect(&url).await?,
            RedisStore::connect(&url).await?,
        );
        return run("Redis", a, b).await;
    }
    eprintln!("Set DATABASE_URL to a Postgres or REDIS_URL to a Redis the instances can share.");
    std::process::exit(2);
}

/// One instance of the app: its cache over the shared store, and the listener that keeps it told.
struct Instance<S> {
    store: CachingStore<MemoryStore, S>,
    _revocations: RevocationListener,
}

impl<S: RevocationFeed> Instance<S> {
    async fn start(shared: S) -> Result<Self, Error> {
        // A long lifetime, so that only the announcement can explain a revocation heard at once.
        let store = CachingStore::new(MemoryStore::new(), shared).lifetime(Duration::from_secs(60));
        let revocations = store.listen_for_revocations(); // keep it as long as the store
        let started = Instant::now();
        while !revocations.is_subscribed() {
            if started.elapsed() > Duration::from_secs(10) {
                return Err("the instance never subscribed to revocations".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Self {
            store,
            _revocations: revocations,
        })
    }

    /// Calls the app through this instance's layer with `authorization`: the status it answers.
    async fn call(&self, authorization: &str) -> Result<StatusCode, Error> {
        let directory = StaticDirectory::from_json(DIRECTORY)?;
        let app = ServiceBuilder::new()
            .layer(ImpersonationLayer::new(self.store.clone(), directory))
            .service(service_fn(|_: Request<String>| async {
                Ok::<_, Infallible>(Response::new(String::new()))
            }));
        let request = Request::get("/api/v1/cards")
            .header("authorization", authorization)
            .body(String::new())?;
        Ok(app.oneshot(request).await?.status())
    }
}

async fn run<S: RevocationFeed>(backend: &str, a: S, b: S) -> Result<(), Error> {
    let (a, b) = (Instance::start(a).await?, Instance::start(b).await?);
    println!("two instances over {backend}, both listening for revocations");

    let roles = Roles::parse(&["read:*"])?;
    let (secret, record) = TokenRecord::issue(&TokenPrefix::default(), "acme", "a-1", roles);
    let id = record.id;
    a.store.create(record, usize::MAX).await?;
    let as_bob = format!("Bearer {}:bob@acme.test", secret.expose());
    let status = b.call(&as_bob).await?;
    println!("A issues a token; B answers {status}");
    assert_eq!(status, StatusCode::OK, "a token works on every instance");

    a.store.revoke("acme", id).await?;
    println!("A revokes it; A answers {}", a.call(&as_bob).await?);
    let revoked = Instant::now();
    while b.call(&as_bob).await? == StatusCode::OK {
        if revoked.elapsed() > Duration::from_secs(10) {
            return Err("B never heard of the revocation".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let after = revoked.elapsed();
    println!("B refuses it {after:.1?} later, though its cache would keep it for 60 s");
    Ok(())
}
