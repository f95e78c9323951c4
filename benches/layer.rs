//! The layer's cost per request, side by side with references, in one run.
//!
//! `cargo bench --bench layer`. Group `layer` holds the functions BENCHMARKS.md's table compares;
//! group `scaling` measures one thread against two serving `opaque_header` together.

use std::{
    convert::Infallible,
    future::Future,
    hint::black_box,
    pin::pin,
    sync::Arc,
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};

use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use dashmap::DashMap;
use http::{Request, Response, header::AUTHORIZATION};
use http_body_util::Empty;
use sha2::{Digest, Sha256};
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_http::validate_request::ValidateRequestHeaderLayer;
use tower_impersonation::{
    CachingStore, ImpersonationLayer, MemoryStore, Roles, StaticDirectory, Timestamp, TokenPrefix,
    TokenRecord, TokenStore,
    directory::{DirectoryData, MemberData, OrganizationData},
    jwt::{ImpersonationClaims, JwtKeys},
};
use uuid::Uuid;

const ORG: &str = "bench-org";
const APP_KEY: &str = "Bearer app-key-0123456789";
const JWT_SECRET: &[u8] = b"benchmark secret, 32 bytes long!";

/// Polls a future that never waits (every store here answers at once) to completion.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

/// The measured work of every `layer` function goes through here, never inlined, so
/// `scripts/bench_instructions.sh` can count its instructions per call under callgrind.
#[inline(never)]
fn measured<R>(work: impl FnOnce() -> R) -> R {
    work()
}

fn call<S, B>(service: &mut S, request: Request<()>) -> Response<B>
where
    S: Service<Request<()>, Response = Response<B>, Error = Infallible>,
{
    block_on(async { service.ready().await?.call(request).await }).unwrap()
}

fn passthrough()
-> impl Service<Request<()>, Response = Response<Empty<Bytes>>, Error = Infallible, Future: Send> + Clone
{
    service_fn(|_: Request<()>| async { Ok::<_, Infallible>(Response::new(Empty::new())) })
}

fn request(authorization: &str, user: Option<&str>) -> Request<()> {
    let mut builder = Request::get("/api/v1/cards").header(AUTHORIZATION, authorization);
    if let Some(user) = user {
        builder = builder.header("x-guru-userid", user);
    }
    builder.body(()).unwrap()
}

fn email(i: usize) -> String {
    format!("user{i}@bench.test")
}

fn directory(users: usize) -> StaticDirectory {
    let members = (0..users)
        .map(|i| MemberData {
            id: format!("user-{i}"),
            email: email(i),
            name: format!("User {i}"),
            admin: i == 0,
            aliases: Vec::new(),
        })
        .collect();
    StaticDirectory::new(DirectoryData {
        organizations: vec![OrganizationData {
            id: ORG.into(),
            name: "Bench".into(),
            members,
        }],
    })
}

/// A store of `count` tokens, and their texts.
fn store(count: usize) -> (MemoryStore, Vec<String>) {
    let store = MemoryStore::new();
    let prefix = TokenPrefix::default();
    let roles = Roles::full_access();
    let tokens = (0..count)
        .map(|_| {
            let (secret, record) = TokenRecord::issue(&prefix, ORG, "user-0", roles.clone());
            block_on(store.create(record, usize::MAX)).unwrap();
            secret.expose()
        })
        .collect();
    (store, tokens)
}

/// A cheap deterministic sequence of indexes, so random picks cost the same in every function.
struct Picker(u64);

impl Picker {
    fn next(&mut self, below: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % below as u64) as usize
    }
}

/// The floor of the opaque path, written inline: parse the header, SHA-256 of the secret, one map
/// lookup, one extension insert.
struct MinimalWork {
    map: DashMap<[u8; 32], Arc<String>>,
}

impl MinimalWork {
    fn new(tokens: &[String]) -> Self {
        let map = DashMap::new();
        for (i, token) in tokens.iter().enumerate() {
            let uuid = Uuid::parse_str(&token[9..]).unwrap();
            map.insert(Sha256::digest(uuid.as_bytes()).into(), Arc::new(email(i)));
        }
        Self { map }
    }

    fn run(&self, mut request: Request<()>) -> Request<()> {
        let header = request.headers().get(AUTHORIZATION).unwrap().as_bytes();
        let token = header.strip_prefix(b"Bearer GINT:IMP:").unwrap();
        let uuid = Uuid::try_parse_ascii(&token[..36]).unwrap();
        let digest: [u8; 32] = Sha256::digest(uuid.as_bytes()).into();
        let found = self.map.get(&digest).map(|entry| Arc::clone(entry.value()));
        request.extensions_mut().insert(found);
        request
    }
}

/// Distinct tokens past the layer's cache of verified JWTs (10,000), cycled in order: each is gone
/// from the cache by the time it comes round again, so every call is a first sight.
const FIRST_SIGHT_TOKENS: usize = 20_000;

/// A JWT for `user` expiring 50 minutes from now: within the hour a JWT may live, for a whole run.
fn jwt_for(user: &str) -> String {
    jwt_issued(user, None)
}

/// [`jwt_for`] with an `iat`, which tells apart tokens made in the same second.
fn jwt_issued(user: &str, iat: Option<u64>) -> String {
    let claims = ImpersonationClaims {
        user_id: user.into(),
        exp: Timestamp::now().as_secs() + 3000,
        iat,
        jti: None,
        org: Some(ORG.into()),
        act: None,
        roles: None,
    };
    JwtKeys::hs256(JWT_SECRET).unwrap().sign(&claims).unwrap()
}

fn layer_group(c: &mut Criterion) {
    let mut group = c.benchmark_group("layer");
    let users = directory(1000);
    let (small_store, small_tokens) = store(1000);
    let keys = JwtKeys::hs256(JWT_SECRET).unwrap();
    let layer = ImpersonationLayer::builder(small_store.clone(), users.clone())
        .jwt(keys)
        .build();

    let mut plain = passthrough();
    group.bench_function("passthrough", |b| {
        b.iter_batched(
            || request(APP_KEY, None),
            |r| measured(|| call(&mut plain, r)),
            BatchSize::SmallInput,
        )
    });

    let mut bearer = ValidateRequestHeaderLayer::has_header_value("authorization", APP_KEY)
        .unwrap()
        .layer(passthrough());
    group.bench_function("tower_http_bearer", |b| {
        b.iter_batched(
            || request(APP_KEY, None),
            |r| measured(|| call(&mut bearer, r)),
            BatchSize::SmallInput,
        )
    });

    let mut ours = layer.layer(passthrough());
    group.bench_function("no_credential", |b| {
        b.iter_batched(
            || request(APP_KEY, None),
            |r| measured(|| call(&mut ours, r)),
            BatchSize::SmallInput,
        )
    });

    let header_request =
        |i: usize| request(&format!("Bearer {}", small_tokens[i]), Some(&email(i)));
    let mut picker = Picker(7);
    group.bench_function("opaque_header", |b| {
        b.iter_batched(
            || header_request(picker.next(1000)),
            |r| measured(|| call(&mut ours, r)),
            BatchSize::SmallInput,
        )
    });

    // The gateway's default store: the tokens behind a cache, each of them cached, for longer
    // than a run so no lookup waits on the store.
    let cache = CachingStore::new(MemoryStore::new(), small_store.clone())
        .lifetime(Duration::from_secs(3600));
    let mut cached = ImpersonationLayer::new(cache, users.clone()).layer(passthrough());
    for i in 0..small_tokens.len() {
        call(&mut cached, header_request(i));
    }
    group.bench_function("opaque_cached", |b| {
        b.iter_batched(
            || header_request(picker.next(1000)),
            |r| measured(|| call(&mut cached, r)),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("opaque_cached_one", |b| {
        b.iter_batched(
            || header_request(0),
            |r| measured(|| call(&mut cached, r)),
            BatchSize::SmallInput,
        )
    });

    let suffix_request =
        |i: usize| request(&format!("Bearer {}:{}", small_tokens[i], email(i)), None);
    group.bench_function("opaque_suffix", |b| {
        b.iter_batched(
            || suffix_request(picker.next(1000)),
            |r| measured(|| call(&mut ours, r)),
            BatchSize::SmallInput,
        )
    });

    let unknown = format!("Bearer GINT:IMP:{}", Uuid::new_v4());
    group.bench_function("reject_unknown_token", |b| {
        b.iter_batched(
            || request(&unknown, Some("user1@bench.test")),
            |r| measured(|| call(&mut ours, r)),
            BatchSize::SmallInput,
        )
    });

    let jwt = format!("Bearer {}", jwt_for("user-1"));
    group.bench_function("jwt", |b| {
        b.iter_batched(
            || request(&jwt, None),
            |r| measured(|| call(&mut ours, r)),
            BatchSize::SmallInput,
        )
    });

    let many: Vec<String> = (0..1000)
        .map(|i| format!("Bearer {}", jwt_for(&format!("user-{i}"))))
        .collect();
    group.bench_function("jwt_many", |b| {
        b.iter_batched(
            || request(&many[picker.next(1000)], None),
            |r| measured(|| call(&mut ours, r)),
            BatchSize::SmallInput,
        )
    });

    let now = Timestamp::now().as_secs();
    let unseen: Vec<String> = (0..FIRST_SIGHT_TOKENS)
        .map(|i| format!("Bearer {}", jwt_issued("user-1", Some(now - i as u64))))
        .collect();
    let mut next_unseen = unseen.iter().cycle();
    group.bench_function("jwt_first_sight", |b| {
        b.iter_batched(
            || request(next_unseen.next().unwrap(), None),
            |r| measured(|| call(&mut ours, r)),
            BatchSize::SmallInput,
        )
    });

    let decoding = jsonwebtoken::DecodingKey::from_secret(JWT_SECRET);
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_required_spec_claims(&["exp"]);
    validation.leeway = 5;
    group.bench_function("jwt_raw_decode", |b| {
        b.iter_batched(
            || request(&jwt, None),
            |r| {
                measured(|| {
                    let header = r.headers()[AUTHORIZATION].to_str().unwrap();
                    let token = &header[7..];
                    jsonwebtoken::decode::<ImpersonationClaims>(token, &decoding, &validation)
                        .unwrap()
                })
            },
            BatchSize::SmallInput,
        )
    });

    let minimal = MinimalWork::new(&small_tokens);
    group.bench_function("minimal_work", |b| {
        b.iter_batched(
            || header_request(picker.next(1000)),
            |r| measured(|| minimal.run(r)),
            BatchSize::SmallInput,
        )
    });
    drop((ours, small_store));

    // Built only when a 1m function is selected: a million tokens are slow to make and large.
    let big = std::cell::OnceCell::new();
    let big = || {
        big.get_or_init(|| {
            let (store, tokens) = store(1_000_000);
            let minimal = MinimalWork::new(&tokens);
            let layer = ImpersonationLayer::new(store, users.clone());
            (layer, tokens, minimal)
        })
    };
    let big_request = |tokens: &[String], i: usize| {
        request(&format!("Bearer {}", tokens[i]), Some(&email(i % 1000)))
    };
    group.bench_function("opaque_1m", |b| {
        let (layer, tokens, _) = big();
        let mut service = layer.layer(passthrough());
        b.iter_batched(
            || big_request(tokens, picker.next(1_000_000)),
            |r| measured(|| call(&mut service, r)),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("minimal_work_1m", |b| {
        let (_, tokens, minimal) = big();
        b.iter_batched(
            || big_request(tokens, picker.next(1_000_000)),
            |r| measured(|| minimal.run(r)),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// One thread against two serving `opaque_header` together: each iteration is one request per
/// thread, so equal times mean twice the throughput.
fn scaling_group(c: &mut Criterion) {
    let mut group = c.benchmark_group("scaling");
    let (store, tokens) = store(1000);
    let layer = ImpersonationLayer::new(store, directory(1000));
    let headers: Vec<(String, String)> = (0..1000)
        .map(|i| (format!("Bearer {}", tokens[i]), email(i)))
        .collect();
    // Each thread serves its own clients: tokens 0..500 on one, 500..1000 on the other.
    let serve = |iters: u64, first: usize| {
        let mut service = layer.layer(passthrough());
        for i in 0..iters as usize {
            let (token, user) = &headers[first + i % 500];
            black_box(call(&mut service, request(token, Some(user))));
        }
    };
    group.bench_function("one_thread", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            serve(iters, 0);
            start.elapsed()
        })
    });
    group.bench_function("two_threads", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            std::thread::scope(|s| {
                s.spawn(|| serve(iters, 0));
                s.spawn(|| serve(iters, 500));
            });
            start.elapsed()
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = layer_group, scaling_group
}
criterion_main!(benches);
