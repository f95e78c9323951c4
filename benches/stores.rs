//! A token lookup in each store, made the way the layer makes it: `lookup_now` (an answer at hand
//! in memory), else `lookup` awaited. `MemoryStore` alone is the reference; beside it the durable
//! and shared stores with a `CachingStore` in front (what the example gateway runs), and without
//! one (a disk or network round trip per request).
//!
//! `cargo bench --bench stores` runs `memory` and the SQLite stores (a temporary file); with
//! `--features postgres,redis` and `DATABASE_URL` or `REDIS_URL` set, the Postgres and Redis
//! stores too, under tables or keys of their own, revoked after.

use std::{sync::Arc, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use tokio::runtime::Runtime;
use tower_impersonation::{
    MemoryStore, Roles, TokenDigest, TokenPrefix, TokenRecord, TokenStore,
    store::{CachingStore, SqliteStore},
};
use uuid::Uuid;

const ORG: &str = "bench-org";
const TOKENS: usize = 1000;

/// Fills `store` with tokens and answers their digests and ids.
fn fill(runtime: &Runtime, store: &impl TokenStore) -> Vec<(TokenDigest, Uuid)> {
    let prefix = TokenPrefix::default();
    let organization: Arc<str> = ORG.into();
    let admin: Arc<str> = "bench-admin".into();
    (0..TOKENS)
        .map(|_| {
            let roles = Roles::full_access();
            let (_, record) = TokenRecord::issue(
                &prefix,
                Arc::clone(&organization),
                Arc::clone(&admin),
                roles,
            );
            let key = (record.digest, record.id);
            runtime
                .block_on(store.create(record, usize::MAX))
                .expect("stored");
            key
        })
        .collect()
}

/// Looks the tokens up in turn as the layer does, each lookup one iteration.
fn bench_lookups(
    c: &mut Criterion,
    name: &str,
    runtime: &Runtime,
    store: &impl TokenStore,
    tokens: &[(TokenDigest, Uuid)],
) {
    let mut next = tokens.iter().cycle();
    c.benchmark_group("store").bench_function(name, |b| {
        b.iter(|| {
            let (digest, _) = next.next().unwrap();
            let found = match store.lookup_now(digest) {
                Some(answer) => answer,
                None => runtime.block_on(store.lookup(digest)),
            };
            assert!(found.expect("answered").is_some());
        })
    });
}

/// `store` alone, then with a memory cache in front.
fn bench_with_and_without_cache<St: TokenStore + Clone>(
    c: &mut Criterion,
    name: &str,
    runtime: &Runtime,
    store: &St,
) -> Vec<(TokenDigest, Uuid)> {
    let tokens = fill(runtime, store);
    bench_lookups(c, name, runtime, store, &tokens);
    let caching = CachingStore::new(MemoryStore::new(), store.clone());
    bench_lookups(
        c,
        &format!("caching_over_{name}"),
        runtime,
        &caching,
        &tokens,
    );
    tokens
}

fn stores(c: &mut Criterion) {
    let runtime = Runtime::new().expect("a tokio runtime");
    let memory = MemoryStore::new();
    let tokens = fill(&runtime, &memory);
    bench_lookups(c, "memory", &runtime, &memory, &tokens);

    let dir = tempfile::tempdir().expect("a temporary folder");
    let sqlite = runtime.block_on(async {
        let store = SqliteStore::open(dir.path().join("bench.db")).await?;
        store.migrate().await.map(|()| store)
    });
    bench_with_and_without_cache(c, "sqlite", &runtime, &sqlite.expect("SQLite opens"));

    #[cfg(feature = "postgres")]
    postgres(c, &runtime);
    #[cfg(feature = "redis")]
    redis(c, &runtime);
}

#[cfg(feature = "postgres")]
fn postgres(c: &mut Criterion, runtime: &Runtime) {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!("DATABASE_URL is not set: the Postgres lookups are skipped");
        return;
    };
    let prefix = format!("bench{}_", &Uuid::new_v4().simple().to_string()[..12]);
    let postgres = runtime.block_on(async {
        let store = tower_impersonation::store::PostgresStore::connect(&url)
            .await?
            .table_prefix(&prefix)
            .expect("a valid prefix");
        store.migrate().await.map(|()| store)
    });
    let postgres = postgres.expect("Postgres is reachable");
    let tokens = bench_with_and_without_cache(c, "postgres", runtime, &postgres);
    for (_, id) in &tokens {
        let _ = runtime.block_on(postgres.revoke(ORG, *id));
    }
}

#[cfg(feature = "redis")]
fn redis(c: &mut Criterion, runtime: &Runtime) {
    let Ok(url) = std::env::var("REDIS_URL") else {
        eprintln!("REDIS_URL is not set: the Redis lookups are skipped");
        return;
    };
    let redis = runtime
        .block_on(tower_impersonation::store::RedisStore::connect(&url))
        .expect("Redis is reachable")
        .key_prefix(&format!("bench:{}:", Uuid::new_v4().simple()));
    let tokens = bench_with_and_without_cache(c, "redis", runtime, &redis);
    for (_, id) in &tokens {
        let _ = runtime.block_on(redis.revoke(ORG, *id));
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = stores
}
criterion_main!(benches);
