//! A token lookup in each store: `MemoryStore` alone, `CachingStore<MemoryStore, RedisStore>` (what
//! every instance of a shared deployment does per request), and `RedisStore` with no cache (a
//! network round trip per request).
//!
//! `REDIS_URL=redis://127.0.0.1:6379/ cargo bench --features redis --bench stores`. Without
//! `REDIS_URL` only `memory` runs. The tokens go under a fresh key prefix and are revoked after.

use std::{sync::Arc, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use tokio::runtime::Runtime;
use tower_impersonation::{
    MemoryStore, Roles, TokenDigest, TokenPrefix, TokenRecord, TokenStore,
    store::{CachingStore, RedisStore},
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

/// Looks the tokens up in turn, each lookup one iteration.
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
            let found = runtime.block_on(store.lookup(digest)).expect("answered");
            assert!(found.is_some());
        })
    });
}

fn stores(c: &mut Criterion) {
    let runtime = Runtime::new().expect("a tokio runtime");
    let memory = MemoryStore::new();
    let tokens = fill(&runtime, &memory);
    bench_lookups(c, "memory", &runtime, &memory, &tokens);

    let Ok(url) = std::env::var("REDIS_URL") else {
        eprintln!("REDIS_URL is not set: the Redis lookups are skipped");
        return;
    };
    let redis = runtime
        .block_on(RedisStore::connect(&url))
        .expect("Redis is reachable")
        .key_prefix(&format!("bench:{}:", Uuid::new_v4().simple()));
    let tokens = fill(&runtime, &redis);
    bench_lookups(c, "redis", &runtime, &redis, &tokens);
    let caching = CachingStore::new(MemoryStore::new(), redis.clone());
    bench_lookups(c, "caching_over_redis", &runtime, &caching, &tokens);
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
