//! Two app instances sharing one Redis: each an `ImpersonationLayer` and a `TokenService` over its
//! own `CachingStore<MemoryStore, RedisStore>` with a revocation listener. Requests go straight to
//! the layered services with `oneshot`.
//!
//! `a_token_works_across_instances_and_revocation_reaches_them` uses `REDIS_URL`; the others start
//! and stop a `redis-server` of their own on a free port. Each is ignored unless asked for
//! (`cargo test --all-features -- --ignored`, as `.ci/run` does) and then fails without its server.
#![cfg(feature = "redis")]

use crate::common::{
    redis_server,
    world::{ACME, ADA_ID, BOB, BOB_ID, directory},
};

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use tower::{ServiceExt, service_fn, util::BoxCloneSyncService};
use tower_impersonation::{
    ImpersonatedUser, ImpersonationLayer, MemoryStore,
    middleware::ResponseBody,
    services::{Caller, TokenService},
    store::{
        CachingStore, DEFAULT_CACHE_LIFETIME, DEFAULT_OPERATION_TIMEOUT, RedisStore,
        RevocationListener,
    },
};
use uuid::Uuid;

use redis_server::RedisServer;

const BASE: &str = "/api/v1/api-tokens/impersonation";

type Store = CachingStore<MemoryStore, RedisStore>;
type App =
    BoxCloneSyncService<Request<Full<Bytes>>, Response<ResponseBody<Full<Bytes>>>, Infallible>;

/// One app instance.
struct Instance {
    app: App,
    tokens: TokenService<Store>,
    listener: RevocationListener,
    lifetime: Duration,
}

async fn instance(url: &str, prefix: &str, lifetime: Duration) -> Instance {
    let redis = RedisStore::connect(url)
        .await
        .expect("Redis is reachable")
        .key_prefix(prefix);
    let store = CachingStore::new(MemoryStore::new(), redis).lifetime(lifetime);
    let listener = store.listen_for_revocations();
    let layer = ImpersonationLayer::new(store.clone(), directory());
    let inner = service_fn(|request: Request<Full<Bytes>>| async move {
        let who = request
            .extensions()
            .get::<ImpersonatedUser>()
            .map(|user| user.user().id.clone())
            .unwrap_or_default();
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(who))))
    });
    Instance {
        app: BoxCloneSyncService::new(tower::Layer::layer(&layer, inner)),
        tokens: TokenService::new(store, directory()),
        listener,
        lifetime,
    }
}

impl Instance {
    /// Calls the app as Bob with `token`.
    async fn call(&self, token: &str) -> (StatusCode, HeaderMap) {
        let request = Request::builder()
            .uri("/api/v1/cards")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header("X-Guru-UserID", BOB)
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        if parts.status == StatusCode::OK {
            assert_eq!(body, BOB_ID, "the request acted as Bob");
        }
        (parts.status, parts.headers)
    }

    /// Calls the token service as the organization's admin.
    async fn manage(&self, method: Method, path: &str) -> (StatusCode, HeaderMap, Value) {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .body(Full::new(Bytes::new()))
            .unwrap();
        request
            .extensions_mut()
            .insert(Caller::new(ADA_ID, ACME, true));
        let response = self.tokens.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        (parts.status, parts.headers, json)
    }

    /// Creates a token: its secret and id.
    async fn create(&self) -> (String, String) {
        let (status, _, json) = self.manage(Method::POST, BASE).await;
        assert_eq!(status, StatusCode::OK, "{json}");
        (
            json["token"].as_str().unwrap().to_owned(),
            json["id"].as_str().unwrap().to_owned(),
        )
    }

    async fn revoke(&self, id: &str) -> StatusCode {
        self.manage(Method::DELETE, &format!("{BASE}/{id}")).await.0
    }

    /// Polls until `token` is refused, for at most the cache lifetime plus a second: the
    /// documented worst-case revocation delay, with room for the request itself.
    async fn refuses_within_the_revocation_delay(&self, token: &str) -> StatusCode {
        let bound = self.lifetime + Duration::from_secs(1);
        let started = std::time::Instant::now();
        loop {
            let (status, _) = self.call(token).await;
            if status != StatusCode::OK || started.elapsed() > bound {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn wait_until_subscribed(&self, bound: Duration) {
        let started = std::time::Instant::now();
        while !self.listener.is_subscribed() && started.elapsed() < bound {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            self.listener.is_subscribed(),
            "listener subscribed within {bound:?}"
        );
    }
}

/// `REDIS_URL`; the test fails when it is unset.
fn redis_url() -> String {
    crate::common::servers::server_url("REDIS_URL")
}

fn prefix() -> String {
    format!("test-{}:", Uuid::new_v4())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs REDIS_URL (.ci/run runs it)"]
async fn a_token_works_across_instances_and_revocation_reaches_them() {
    let url = redis_url();
    let prefix = prefix();
    let a = instance(&url, &prefix, DEFAULT_CACHE_LIFETIME).await;
    let b = instance(&url, &prefix, DEFAULT_CACHE_LIFETIME).await;

    let (token, id) = a.create().await;
    assert_eq!(
        b.call(&token).await.0,
        StatusCode::OK,
        "created on A, used on B"
    );
    assert_eq!(a.call(&token).await.0, StatusCode::OK);
    let (status, _, listed) = b.manage(Method::GET, BASE).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed[0]["id"], id.as_str(), "B lists A's token");

    assert_eq!(b.revoke(&id).await, StatusCode::NO_CONTENT);
    assert_eq!(
        b.call(&token).await.0,
        StatusCode::UNAUTHORIZED,
        "refused at once where it was revoked"
    );
    assert_eq!(
        a.refuses_within_the_revocation_delay(&token).await,
        StatusCode::UNAUTHORIZED,
        "refused on A within the cache lifetime"
    );
    assert_eq!(a.revoke(&id).await, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs redis-server on PATH (.ci/run runs it)"]
async fn a_redis_outage_fails_closed_and_heals_without_restarting_the_apps() {
    let mut server = RedisServer::start_for(&[], "the Redis outage test");
    let prefix = prefix();
    // A forgets quickly; B only through announcements (its lifetime outlasts the test's steps).
    let a = instance(&server.url(), &prefix, Duration::from_secs(1)).await;
    let b = instance(&server.url(), &prefix, Duration::from_secs(30)).await;
    a.wait_until_subscribed(Duration::from_secs(5)).await;
    b.wait_until_subscribed(Duration::from_secs(5)).await;

    // A revoked token, cached on both instances before its revocation.
    let (revoked, revoked_id) = a.create().await;
    assert_eq!(a.call(&revoked).await.0, StatusCode::OK);
    assert_eq!(b.call(&revoked).await.0, StatusCode::OK);
    assert_eq!(b.revoke(&revoked_id).await, StatusCode::NO_CONTENT);
    assert_eq!(
        a.refuses_within_the_revocation_delay(&revoked).await,
        StatusCode::UNAUTHORIZED
    );
    // A token nobody has used, so no instance caches it; and one A has cached.
    let (uncached, _) = a.create().await;
    let (kept, kept_id) = a.create().await;

    // Traffic with the revoked token throughout the outage and the recovery.
    let a = Arc::new(a);
    let b = Arc::new(b);
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = tokio::spawn({
        let (a, b, stop, revoked) = (Arc::clone(&a), Arc::clone(&b), Arc::clone(&stop), revoked);
        async move {
            let mut statuses = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                for instance in [&a, &b] {
                    statuses.push(instance.call(&revoked).await.0);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            statuses
        }
    });
    assert_eq!(a.call(&kept).await.0, StatusCode::OK);

    server.stop();

    for instance in [&a, &b] {
        let (status, headers) = instance.call(&uncached).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(headers.contains_key(header::RETRY_AFTER));
    }
    let (status, headers, _) = a.manage(Method::POST, BASE).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "creating a token");
    assert!(headers.contains_key(header::RETRY_AFTER));
    assert_eq!(
        a.manage(Method::GET, BASE).await.0,
        StatusCode::SERVICE_UNAVAILABLE,
        "listing tokens"
    );
    assert_eq!(
        b.revoke(&kept_id).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "revoking a token"
    );
    // A cached token outlives the outage's start by the cache lifetime at most.
    assert_eq!(
        a.refuses_within_the_revocation_delay(&kept).await,
        StatusCode::SERVICE_UNAVAILABLE
    );

    for instance in [&a, &b] {
        for _ in 0..250 {
            if !instance.listener.is_subscribed() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            !instance.listener.is_subscribed(),
            "the listener noticed the outage within 5 s"
        );
    }

    // Same port, no new apps: the connection managers and the listeners find Redis again.
    server.start_again();
    let fresh = {
        let mut created = None;
        for _ in 0..150 {
            let (status, _, json) = a.manage(Method::POST, BASE).await;
            if status == StatusCode::OK {
                created = Some((
                    json["token"].as_str().unwrap().to_owned(),
                    json["id"].as_str().unwrap().to_owned(),
                ));
                break;
            }
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        created.expect("A creates tokens again within 15 s of Redis coming back")
    };
    let (fresh, fresh_id) = fresh;
    a.wait_until_subscribed(Duration::from_secs(15)).await;
    b.wait_until_subscribed(Duration::from_secs(15)).await;
    let mut status = StatusCode::SERVICE_UNAVAILABLE;
    for _ in 0..150 {
        status = b.call(&fresh).await.0;
        if status != StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, StatusCode::OK, "B accepts A's new token");
    // The restarted Redis kept nothing (`--save ''`): the old tokens are simply unknown now.
    assert_eq!(b.call(&kept).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(a.call(&uncached).await.0, StatusCode::UNAUTHORIZED);

    // B caches the new token for 30 s: only its resubscribed listener can tell it of this.
    assert_eq!(a.revoke(&fresh_id).await, StatusCode::NO_CONTENT);
    assert_eq!(
        b.refuses_within_the_revocation_delay(&fresh).await,
        StatusCode::UNAUTHORIZED
    );

    stop.store(true, Ordering::SeqCst);
    let statuses = traffic.await.expect("no panic in the traffic");
    assert!(statuses.len() > 2, "traffic ran");
    assert!(
        !statuses.contains(&StatusCode::OK),
        "a revoked token was never accepted"
    );
    assert!(
        statuses.iter().all(
            |status| [StatusCode::UNAUTHORIZED, StatusCode::SERVICE_UNAVAILABLE].contains(status)
        ),
        "{statuses:?}"
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server on PATH (.ci/run runs it)"]
async fn a_hung_redis_answers_503_within_the_operation_timeout() {
    let server = RedisServer::start_for(&[], "the hung Redis test");
    let a = instance(&server.url(), &prefix(), Duration::from_secs(1)).await;
    let (token, _) = a.create().await;

    server.signal("-STOP");
    let started = std::time::Instant::now();
    let (status, headers) = a.call(&token).await;
    let waited = started.elapsed();
    server.signal("-CONT");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(headers.contains_key(header::RETRY_AFTER));
    let bound = DEFAULT_OPERATION_TIMEOUT + Duration::from_secs(1);
    assert!(
        waited <= bound,
        "answered after {waited:?}, beyond {bound:?}"
    );

    let mut status = StatusCode::SERVICE_UNAVAILABLE;
    for _ in 0..150 {
        status = a.call(&token).await.0;
        if status != StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, StatusCode::OK, "accepted again once Redis answers");
}
