//! The store conformance suite run unchanged against every backend, then what is particular to
//! the caching store and to Redis.
//!
//! Redis tests read `REDIS_URL` and Postgres tests `DATABASE_URL`: they are ignored unless asked
//! for (`cargo test --all-features -- --ignored`, as `.ci/run` does with its servers up), and then
//! fail without their server. Each test works under a key prefix of its own.

use crate::common::{gated_store, store_conformance, world::BOB_ID};

use std::{sync::Arc, time::Duration};

use tokio::task::JoinHandle;
use tower_impersonation::{
    MemoryStore, Timestamp, TokenRecord, TokenStore,
    store::{CachingStore, DEFAULT_CACHE_LIFETIME, StoreError},
};

use gated_store::GatedStore;
use store_conformance::{issue, minted, organization};

/// Generates one test per conformance case for a backend built by `$make` (an async expression
/// giving `(store, what must live as long as it)`), each case carrying the attributes given
/// before the backend's name (`#[ignore = ...]` for a backend that needs a server).
macro_rules! conformance {
    ($(#[$attr:meta])* $backend:ident, $make:expr) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;

            conformance!(@cases [$(#[$attr])*] $make;
                create_then_lookup,
                a_narrowed_token_keeps_its_members,
                list_shows_one_organization_oldest_first,
                revoke_by_another_organization_keeps_the_token,
                revoke_removes_the_token,
                record_use_sets_last_used,
                expired_tokens_are_kept_and_listed_until_revoked,
                minted_jwts_are_listed_while_live,
                revoking_a_jwt_ends_it_alone_and_needs_its_organization,
                revoking_a_users_jwts_ends_those_issued_before_and_spares_later_ones,
                an_earlier_user_revocation_arriving_late_spares_nothing,
                jwt_revocations_are_forgotten_once_their_jwts_have_expired
            );

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            $(#[$attr])*
            async fn racing_creations_never_pass_the_limit() {
                let (store, _kept) = $make;
                store_conformance::racing_creations_never_pass_the_limit(&store).await;
            }
        }
    };
    (@cases $attrs:tt $make:expr; $($case:ident),*) => {
        $(conformance!(@case $attrs $make; $case);)*
    };
    (@case [$(#[$attr:meta])*] $make:expr; $case:ident) => {
        #[tokio::test]
        $(#[$attr])*
        async fn $case() {
            let (store, _kept) = $make;
            store_conformance::$case(&store).await;
        }
    };
}

conformance!(memory, (MemoryStore::new(), ()));
conformance!(
    caching_memory_over_memory,
    (
        CachingStore::new(MemoryStore::new(), MemoryStore::new()),
        ()
    )
);
#[cfg(feature = "redis")]
conformance!(
    #[ignore = "needs REDIS_URL (.ci/run runs it)"]
    redis_store,
    (with_redis::store().await, ())
);
#[cfg(feature = "redis")]
conformance!(
    #[ignore = "needs REDIS_URL (.ci/run runs it)"]
    caching_memory_over_redis,
    (
        CachingStore::new(MemoryStore::new(), with_redis::store().await),
        ()
    )
);
#[cfg(feature = "sqlite")]
conformance!(sqlite_store, with_sqlite::store().await);
#[cfg(feature = "sqlite")]
conformance!(caching_memory_over_sqlite, {
    let (store, file) = with_sqlite::store().await;
    (CachingStore::new(MemoryStore::new(), store), file)
});
#[cfg(feature = "postgres")]
conformance!(
    #[ignore = "needs DATABASE_URL (.ci/run runs it)"]
    postgres_store,
    (with_postgres::store().await, ())
);
#[cfg(feature = "postgres")]
conformance!(
    #[ignore = "needs DATABASE_URL (.ci/run runs it)"]
    caching_memory_over_postgres,
    (
        CachingStore::new(MemoryStore::new(), with_postgres::store().await),
        ()
    )
);

// ---- The caching store ------------------------------------------------------------------------

#[test]
fn the_default_cache_lifetime_is_five_seconds() {
    assert_eq!(DEFAULT_CACHE_LIFETIME, Duration::from_secs(5));
}

#[tokio::test]
async fn cached_tokens_are_answered_from_the_cache_until_their_lifetime_ends() {
    let shared = MemoryStore::new();
    let store =
        CachingStore::new(MemoryStore::new(), shared.clone()).lifetime(Duration::from_millis(300));
    let organization = organization();
    let (_, record) = issue(&organization);
    store.create(record.clone(), usize::MAX).await.unwrap();
    assert!(store.lookup(&record.digest).await.unwrap().is_some());
    assert_eq!(store.cached_len(), 1);

    // Revoked behind the cache's back, as by another instance whose announcement was lost.
    assert!(shared.revoke(&organization, record.id).await.unwrap());
    assert!(
        store.lookup(&record.digest).await.unwrap().is_some(),
        "still cached"
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(store.lookup(&record.digest).await.unwrap(), None);
}

/// A cache whose entries live 300 ms, over a store holding one token of `organization`.
async fn cache_of_300_ms_with_a_token(
    organization: &str,
) -> (CachingStore<MemoryStore, MemoryStore>, TokenRecord) {
    let store = CachingStore::new(MemoryStore::new(), MemoryStore::new())
        .lifetime(Duration::from_millis(300));
    let (_, record) = issue(organization);
    store.create(record.clone(), usize::MAX).await.unwrap();
    (store, record)
}

#[tokio::test]
async fn only_fresh_cache_hits_answer_without_waiting() {
    let organization = organization();
    let (store, record) = cache_of_300_ms_with_a_token(&organization).await;
    assert!(store.lookup_now(&record.digest).is_none(), "not cached yet");
    store.lookup(&record.digest).await.unwrap();
    let hit = store.lookup_now(&record.digest).unwrap().unwrap();
    assert_eq!(hit.as_deref(), Some(&record));
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(store.lookup_now(&record.digest).is_none(), "expired");
    store.lookup(&record.digest).await.unwrap();
    assert!(store.lookup_now(&record.digest).is_some());
    store.revoke(&organization, record.id).await.unwrap();
    assert!(store.lookup_now(&record.digest).is_none(), "revoked");
}

/// Finds `record` in `store`'s cache often enough that this thread holds on to it.
fn until_this_thread_holds(store: &CachingStore<MemoryStore, MemoryStore>, record: &TokenRecord) {
    // Kept at the third lookup, held from the fourth.
    for _ in 0..6 {
        let hit = store.lookup_now(&record.digest).unwrap().unwrap();
        assert_eq!(hit.as_deref(), Some(record));
    }
}

#[tokio::test]
async fn a_token_this_thread_keeps_finding_is_let_go_when_invalidated_revoked_or_due() {
    let organization = organization();
    let (store, record) = cache_of_300_ms_with_a_token(&organization).await;

    store.lookup(&record.digest).await.unwrap();
    until_this_thread_holds(&store, &record);
    store.invalidate(&record.digest).await;
    assert!(store.lookup_now(&record.digest).is_none(), "invalidated");

    store.lookup(&record.digest).await.unwrap();
    until_this_thread_holds(&store, &record);
    tokio::time::sleep(Duration::from_millis(280)).await;
    assert!(
        store.lookup_now(&record.digest).is_none(),
        "due for a refresh"
    );

    store.lookup(&record.digest).await.unwrap();
    until_this_thread_holds(&store, &record);
    store.revoke(&organization, record.id).await.unwrap();
    assert!(store.lookup_now(&record.digest).is_none(), "revoked");
}

#[tokio::test]
async fn a_token_this_thread_holds_for_one_cache_is_not_answered_by_another() {
    let here = CachingStore::new(MemoryStore::new(), MemoryStore::new());
    let elsewhere = CachingStore::new(MemoryStore::new(), MemoryStore::new());
    let (_, record) = issue(&organization());
    here.create(record.clone(), usize::MAX).await.unwrap();
    here.lookup(&record.digest).await.unwrap();
    until_this_thread_holds(&here, &record);
    assert!(elsewhere.lookup_now(&record.digest).is_none());
    assert_eq!(elsewhere.lookup(&record.digest).await.unwrap(), None);
}

#[tokio::test]
async fn unknown_tokens_are_not_cached() {
    let shared = MemoryStore::new();
    let store = CachingStore::new(MemoryStore::new(), shared.clone());
    let (_, record) = issue(&organization());
    assert_eq!(store.lookup(&record.digest).await.unwrap(), None);
    // Created by another instance: found at once.
    shared.create(record.clone(), usize::MAX).await.unwrap();
    assert_eq!(
        store.lookup(&record.digest).await.unwrap().as_deref(),
        Some(&record)
    );
}

#[tokio::test]
async fn invalidate_drops_one_token_and_invalidate_all_every_token() {
    let shared = MemoryStore::new();
    let cache = MemoryStore::new();
    let store = CachingStore::new(cache.clone(), shared.clone()).lifetime(Duration::from_secs(60));
    let organization = organization();
    let (_, first) = issue(&organization);
    let (_, second) = issue(&organization);
    for record in [&first, &second] {
        store.create(record.clone(), usize::MAX).await.unwrap();
        store.lookup(&record.digest).await.unwrap();
    }
    assert_eq!((store.cached_len(), cache.len()), (2, 2));

    shared.revoke(&organization, first.id).await.unwrap();
    store.invalidate(&first.digest).await;
    assert_eq!(store.lookup(&first.digest).await.unwrap(), None);
    assert_eq!((store.cached_len(), cache.len()), (1, 1));

    store.invalidate_all().await;
    assert_eq!((store.cached_len(), cache.len()), (0, 0));
    assert!(store.lookup(&second.digest).await.unwrap().is_some());
}

#[tokio::test]
async fn the_cache_stays_within_its_bound() {
    let cache = MemoryStore::new();
    let store = CachingStore::new(cache.clone(), MemoryStore::new()).max_entries(10);
    let organization = organization();
    let mut records = Vec::new();
    for _ in 0..35 {
        let (_, record) = issue(&organization);
        store.create(record.clone(), usize::MAX).await.unwrap();
        assert!(store.lookup(&record.digest).await.unwrap().is_some());
        assert!(store.cached_len() <= 10, "{} cached", store.cached_len());
        assert!(cache.len() <= 10, "{} in the cache store", cache.len());
        records.push(record);
    }
    // Evicted tokens are still found, in the store.
    for record in &records {
        assert!(store.lookup(&record.digest).await.unwrap().is_some());
    }
}

#[tokio::test]
async fn record_use_is_written_through_to_the_cache() {
    let shared = MemoryStore::new();
    let store =
        CachingStore::new(MemoryStore::new(), shared.clone()).lifetime(Duration::from_secs(60));
    let (_, record) = issue(&organization());
    store.create(record.clone(), usize::MAX).await.unwrap();
    store.lookup(&record.digest).await.unwrap();
    let at = tower_impersonation::Timestamp::now();
    store.record_use(record.id, at).await.unwrap();
    let in_store = shared.lookup(&record.digest).await.unwrap().unwrap();
    assert_eq!(in_store.last_used.get(), Some(at));
    let cached = store.lookup(&record.digest).await.unwrap().unwrap();
    assert_eq!(cached.last_used.get(), Some(at));
}

#[tokio::test]
async fn flush_writes_uses_noted_on_cached_records_back_to_the_store() {
    let shared = MemoryStore::new();
    let store =
        CachingStore::new(MemoryStore::new(), shared.clone()).lifetime(Duration::from_secs(60));
    let (_, record) = issue(&organization());
    store.create(record.clone(), usize::MAX).await.unwrap();
    store.lookup(&record.digest).await.unwrap();
    // What the layer does on a cache hit between two write-backs: note the use on the record.
    let cached = store.lookup(&record.digest).await.unwrap().unwrap();
    let at = tower_impersonation::Timestamp::now();
    cached.last_used.record(at);
    let in_store = shared.lookup(&record.digest).await.unwrap().unwrap();
    assert_eq!(in_store.last_used.get(), None, "not written per request");

    store.flush().await.unwrap();
    let in_store = shared.lookup(&record.digest).await.unwrap().unwrap();
    assert_eq!(in_store.last_used.get(), Some(at), "written at flush");
}

// ---- The caching store's refreshes: one store read per entry, never past the lifetime ---------
//
// An entry is read again by one lookup in the last tenth of its lifetime. The lifetimes are long
// enough that a slow machine still makes each step inside the tenth it is meant for.

/// The lifetime of these tests' caches; a moment in its last tenth (which starts at 13.5 s),
/// leaving 1.4 s for a step to finish in it; and how long after that moment the lifetime has
/// surely ended (the coarse clock ages lag by up to a tick).
const LIFETIME: Duration = Duration::from_secs(15);
const IN_LAST_TENTH: Duration = Duration::from_millis(13_600);
const UNTIL_PAST_ITS_END: Duration = Duration::from_millis(1_500);

/// A caching store over a gated one, the store, and a token of `organization` it has cached and
/// that is now in the last tenth of its lifetime.
async fn cached_in_its_last_tenth(
    organization: &str,
) -> (
    CachingStore<MemoryStore, GatedStore>,
    GatedStore,
    TokenRecord,
) {
    let shared = GatedStore::default();
    let store = CachingStore::new(MemoryStore::new(), shared.clone()).lifetime(LIFETIME);
    let (_, record) = issue(organization);
    store.create(record.clone(), usize::MAX).await.unwrap();
    store.lookup(&record.digest).await.unwrap();
    assert_eq!(shared.reads(), 1);
    tokio::time::sleep(IN_LAST_TENTH).await;
    (store, shared, record)
}

/// A lookup of `record` through `store` on a task of its own.
fn spawn_lookup(
    store: &CachingStore<MemoryStore, GatedStore>,
    record: &TokenRecord,
) -> JoinHandle<Result<Option<Arc<TokenRecord>>, StoreError>> {
    let (store, digest) = (store.clone(), record.digest);
    tokio::spawn(async move { store.lookup(&digest).await })
}

/// Runs `work`, failing the test with `stuck` if it is still waiting after half a minute (it
/// never ends if it waits at a closed gate).
async fn unless_stuck(work: impl std::future::Future<Output = ()>, stuck: &str) {
    tokio::time::timeout(Duration::from_secs(30), work)
        .await
        .unwrap_or_else(|_| panic!("{stuck}"));
}

#[tokio::test]
async fn in_its_last_tenth_one_lookup_reads_a_token_again_while_the_others_are_answered() {
    let (store, shared, record) = cached_in_its_last_tenth(&organization()).await;
    let gate = shared.close().await;
    let refresh = spawn_lookup(&store, &record);
    shared.until_reads(2).await;
    // The store is held: a lookup that waited on it would not finish until the gate opens.
    let answers = async {
        for _ in 0..32 {
            let answer = store.lookup(&record.digest).await.unwrap();
            assert_eq!(answer.as_deref(), Some(&record));
            assert!(store.lookup_now(&record.digest).is_some());
        }
    };
    unless_stuck(answers, "a lookup waited on the store").await;
    assert_eq!(shared.reads(), 2, "one read refreshes the entry");

    drop(gate);
    let refreshed = refresh.await.unwrap().unwrap();
    assert_eq!(refreshed.as_deref(), Some(&record));
    assert!(store.lookup_now(&record.digest).is_some(), "young again");
    assert_eq!(shared.reads(), 2);
}

#[tokio::test]
async fn a_refresh_in_flight_never_lets_an_entry_answer_past_its_lifetime() {
    let organization = organization();
    let (store, shared, record) = cached_in_its_last_tenth(&organization).await;
    let gate = shared.close().await;
    let refresh = spawn_lookup(&store, &record);
    shared.until_reads(2).await;
    // Revoked behind the cache's back, as by another instance whose announcement was lost.
    assert!(
        shared
            .inner()
            .revoke(&organization, record.id)
            .await
            .unwrap()
    );

    tokio::time::sleep(UNTIL_PAST_ITS_END).await;
    assert!(store.lookup_now(&record.digest).is_none(), "expired");
    let late = spawn_lookup(&store, &record);
    shared.until_reads(3).await;
    drop(gate);
    assert_eq!(late.await.unwrap().unwrap(), None, "the revocation holds");
    assert_eq!(refresh.await.unwrap().unwrap(), None);
    assert_eq!(store.cached_len(), 0);
}

#[tokio::test]
async fn a_failed_refresh_answers_from_the_cache_until_the_lifetime_ends_then_fails() {
    let (store, shared, record) = cached_in_its_last_tenth(&organization()).await;
    shared.fail(true);
    for read in [2, 3] {
        let answer = store.lookup(&record.digest).await.unwrap();
        assert_eq!(answer.as_deref(), Some(&record), "answered from the cache");
        assert_eq!(
            shared.reads(),
            read,
            "each lookup after a failure tries again"
        );
    }
    tokio::time::sleep(UNTIL_PAST_ITS_END).await;
    assert!(matches!(
        store.lookup(&record.digest).await,
        Err(StoreError::Backend(_))
    ));
    shared.fail(false);
    assert!(store.lookup(&record.digest).await.unwrap().is_some());
}

#[tokio::test]
async fn in_their_last_tenth_one_check_reads_the_jwt_revocations_again() {
    let shared = GatedStore::default();
    let store = CachingStore::new(MemoryStore::new(), shared.clone()).lifetime(LIFETIME);
    let organization = organization();
    let jwt = minted(&organization, BOB_ID, Duration::ZERO);
    store.record_jwt(jwt.clone()).await.unwrap();
    store.jwt_revocations(Timestamp::now()).await.unwrap();
    assert_eq!(shared.reads(), 1);
    tokio::time::sleep(IN_LAST_TENTH).await;

    // Revoked behind the cache's back: the refresh, and only it, hears of it before the gate
    // opens.
    let revoked = shared
        .inner()
        .revoke_jwt(&organization, jwt.jti, Timestamp::now());
    assert!(revoked.await.unwrap());
    let gate = shared.close().await;
    let refresh = tokio::spawn({
        let store = store.clone();
        async move { store.jwt_revocations(Timestamp::now()).await }
    });
    shared.until_reads(2).await;
    let answers = async {
        for _ in 0..32 {
            let answer = store.jwt_revocations(Timestamp::now()).await.unwrap();
            assert!(
                !answer.is_revoked(&jwt.identity()),
                "the copy, not the store"
            );
            assert_eq!(store.jwt_revoked_now(&jwt.identity()), Some(false));
        }
    };
    unless_stuck(answers, "a check waited on the store").await;
    assert_eq!(shared.reads(), 2, "one read refreshes the revocations");

    drop(gate);
    assert!(refresh.await.unwrap().unwrap().is_revoked(&jwt.identity()));
    assert_eq!(store.jwt_revoked_now(&jwt.identity()), Some(true));
    assert_eq!(shared.reads(), 2);
}

/// Waits until `listener` is subscribed, failing the test after 10 s.
#[cfg(any(feature = "redis", feature = "postgres"))]
async fn until_subscribed(listener: &tower_impersonation::store::RevocationListener) {
    let started = std::time::Instant::now();
    while !listener.is_subscribed() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never subscribed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A caching store over `here` hears a JWT revoked through `there` (another instance on the same
/// shared store) by announcement, long before its lifetime would have it read again.
#[cfg(any(feature = "redis", feature = "postgres"))]
async fn a_cache_hears_jwt_revocations_from_another_instance<S>(here: S, there: S)
where
    S: tower_impersonation::store::RevocationFeed,
{
    use tower_impersonation::Timestamp;
    let cached = CachingStore::new(MemoryStore::new(), here).lifetime(Duration::from_secs(600));
    let listener = cached.listen_for_revocations();
    until_subscribed(&listener).await;
    let organization = organization();
    let jwt = store_conformance::minted(&organization, BOB_ID, Duration::from_secs(10));
    cached.record_jwt(jwt.clone()).await.unwrap();
    cached.jwt_revocations(Timestamp::now()).await.unwrap();
    assert_eq!(
        cached.jwt_revoked_now(&jwt.identity()),
        Some(false),
        "read and fresh"
    );

    let revoked = there.revoke_jwt(&organization, jwt.jti, Timestamp::now());
    assert!(revoked.await.unwrap());
    let revoked_at = std::time::Instant::now();
    while cached.jwt_revoked_now(&jwt.identity()) == Some(false) {
        assert!(
            revoked_at.elapsed() < Duration::from_secs(10),
            "never heard of it"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let revocations = cached.jwt_revocations(Timestamp::now()).await.unwrap();
    assert!(revocations.is_revoked(&jwt.identity()));
}

// ---- Redis ------------------------------------------------------------------------------------

#[cfg(feature = "redis")]
mod with_redis {
    use std::time::Duration;

    use tower_impersonation::{
        StoreError, TokenStore,
        store::{CachingStore, RedisStore},
    };
    use uuid::Uuid;

    use super::{issue, organization};

    /// `REDIS_URL`; the test fails when it is unset.
    pub(super) fn url() -> String {
        crate::common::servers::server_url("REDIS_URL")
    }

    /// A store under a key prefix of its own.
    pub(super) async fn store() -> RedisStore {
        let prefix = format!("test-{}:", Uuid::new_v4());
        RedisStore::connect(&url())
            .await
            .expect("Redis at REDIS_URL is reachable")
            .key_prefix(&prefix)
    }

    async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
        redis::Client::open(url)
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    async fn keys(connection: &mut redis::aio::MultiplexedConnection, prefix: &str) -> Vec<String> {
        let mut keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query_async(connection)
            .await
            .unwrap();
        keys.sort();
        keys
    }

    #[tokio::test]
    #[ignore = "needs REDIS_URL (.ci/run runs it)"]
    async fn keys_hold_digests_and_never_the_secret() {
        let url = url();
        let store = store().await;
        let organization = organization();
        let (secret, record) = issue(&organization);
        store.create(record.clone(), usize::MAX).await.unwrap();

        let prefix = store.prefix().to_owned();
        let mut connection = raw(&url).await;
        let mut expected = vec![
            format!("{prefix}id:{}", record.id),
            format!("{prefix}org:{organization}"),
            format!("{prefix}token:{}", record.digest.to_hex()),
        ];
        expected.sort();
        assert_eq!(keys(&mut connection, &prefix).await, expected);

        let exposed = secret.expose();
        let secret_part = &exposed["GINT:IMP:".len()..];
        let mut everything = expected.join(" ");
        let hash: Vec<String> = redis::cmd("HGETALL")
            .arg(&expected[2])
            .query_async(&mut connection)
            .await
            .unwrap();
        everything.push_str(&hash.join(" "));
        let id: String = redis::cmd("GET")
            .arg(&expected[0])
            .query_async(&mut connection)
            .await
            .unwrap();
        everything.push_str(&id);
        assert_eq!(id, record.digest.to_hex());
        assert!(!everything.contains(secret_part));
        assert!(!everything.contains(&secret_part.replace('-', "")));
    }

    #[tokio::test]
    #[ignore = "needs REDIS_URL (.ci/run runs it)"]
    async fn revocations_are_published_as_digest_hex() {
        let url = url();
        let store = store().await;
        let organization = organization();
        let (_, record) = issue(&organization);
        store.create(record.clone(), usize::MAX).await.unwrap();

        let client = redis::Client::open(url.as_str()).unwrap();
        let mut pubsub = client.get_async_pubsub().await.unwrap();
        pubsub.subscribe(store.revocation_channel()).await.unwrap();
        // Refused revocations announce nothing.
        assert!(!store.revoke("someone-else", record.id).await.unwrap());
        assert!(store.revoke(&organization, record.id).await.unwrap());

        let mut messages = pubsub.on_message();
        let message = tokio::time::timeout(Duration::from_secs(5), async {
            use futures_util::StreamExt as _;
            messages.next().await
        })
        .await
        .expect("a revocation message within 5 s")
        .unwrap();
        assert_eq!(
            message.get_payload::<String>().unwrap(),
            record.digest.to_hex()
        );
    }

    #[tokio::test]
    #[ignore = "needs REDIS_URL (.ci/run runs it)"]
    async fn listing_drops_ids_of_vanished_tokens() {
        let url = url();
        let store = store().await;
        let organization = organization();
        let (_, gone) = issue(&organization);
        let (_, kept) = issue(&organization);
        store.create(gone.clone(), usize::MAX).await.unwrap();
        store.create(kept.clone(), usize::MAX).await.unwrap();

        let mut connection = raw(&url).await;
        let token_key = format!("{}token:{}", store.prefix(), gone.digest.to_hex());
        let _: i64 = redis::cmd("DEL")
            .arg(&token_key)
            .query_async(&mut connection)
            .await
            .unwrap();

        let listed = store.list(&organization).await.unwrap();
        let ids: Vec<Uuid> = listed.iter().map(|record| record.id).collect();
        assert_eq!(ids, [kept.id]);
        let member: bool = redis::cmd("SISMEMBER")
            .arg(format!("{}org:{organization}", store.prefix()))
            .arg(gone.id.to_string())
            .query_async(&mut connection)
            .await
            .unwrap();
        assert!(!member, "the dangling id left the organization's set");
        let id_key_left: bool = redis::cmd("EXISTS")
            .arg(format!("{}id:{}", store.prefix(), gone.id))
            .query_async(&mut connection)
            .await
            .unwrap();
        assert!(!id_key_left);
    }

    #[tokio::test]
    #[ignore = "needs REDIS_URL (.ci/run runs it)"]
    async fn prefixes_keep_apps_apart() {
        let url = url();
        let first = store().await;
        let second = RedisStore::connect(&url)
            .await
            .unwrap()
            .key_prefix(&format!("{}other:", first.prefix()));
        let organization = organization();
        let (_, record) = issue(&organization);
        first.create(record.clone(), usize::MAX).await.unwrap();
        assert_eq!(second.lookup(&record.digest).await.unwrap(), None);
        assert!(second.list(&organization).await.unwrap().is_empty());
        assert!(!second.revoke(&organization, record.id).await.unwrap());
        assert!(first.lookup(&record.digest).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn an_unreachable_redis_is_a_backend_error_that_does_not_repeat_the_url() {
        // Port 1 on loopback: nothing listens there.
        let error = RedisStore::connect("redis://:hunter2@127.0.0.1:1/")
            .await
            .unwrap_err();
        let StoreError::Backend(message) = &error else {
            panic!("{error:?}")
        };
        assert!(!message.contains("hunter2"), "{message}");
        eprintln!("unreachable Redis: {message}");
        assert!(!error.to_string().contains("hunter2"));
        let error = RedisStore::connect("http://example.test/")
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::Backend(_)), "{error:?}");
    }

    #[tokio::test]
    #[ignore = "needs REDIS_URL (.ci/run runs it)"]
    async fn a_cache_hears_jwt_revocations_from_another_instance() {
        let url = url();
        let here = store().await;
        let there = RedisStore::connect(&url)
            .await
            .unwrap()
            .key_prefix(here.prefix());
        super::a_cache_hears_jwt_revocations_from_another_instance(here, there).await;
    }

    #[tokio::test]
    #[ignore = "needs REDIS_URL (.ci/run runs it)"]
    async fn the_caching_store_hears_revocations_from_other_instances() {
        let url = url();
        let here = store().await;
        let there = RedisStore::connect(&url)
            .await
            .unwrap()
            .key_prefix(here.prefix());
        // A lifetime far beyond the test's patience: only the announcement can evict the token.
        let cached = CachingStore::new(tower_impersonation::MemoryStore::new(), here)
            .lifetime(Duration::from_secs(600));
        let listener = cached.listen_for_revocations();
        super::until_subscribed(&listener).await;

        let organization = organization();
        let (_, record) = issue(&organization);
        there.create(record.clone(), usize::MAX).await.unwrap();
        assert!(cached.lookup(&record.digest).await.unwrap().is_some());
        assert_eq!(cached.cached_len(), 1);
        assert!(there.revoke(&organization, record.id).await.unwrap());

        let mut gone = false;
        for _ in 0..100 {
            if cached.lookup(&record.digest).await.unwrap().is_none() {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            gone,
            "the announced revocation evicted the cached token within 5 s"
        );
    }
}

// ---- SQLite -----------------------------------------------------------------------------------

#[cfg(feature = "sqlite")]
mod with_sqlite {
    use std::os::unix::fs::PermissionsExt;

    use tempfile::TempDir;
    use tower_impersonation::{Timestamp, TokenStore, store::SqliteStore};

    use super::{issue, organization};

    /// A migrated store in a file of a new temporary directory, which it must not outlive.
    pub(super) async fn store() -> (SqliteStore, TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir, "impersonation_").await;
        (store, dir)
    }

    async fn open(dir: &TempDir, prefix: &str) -> SqliteStore {
        let store = SqliteStore::open(dir.path().join("tokens.db"))
            .await
            .unwrap()
            .table_prefix(prefix)
            .unwrap();
        store.migrate().await.unwrap();
        store
    }

    #[tokio::test]
    async fn the_file_and_its_journal_are_readable_by_their_owner_alone() {
        let (store, dir) = store().await;
        store
            .create(issue(&organization()).1, usize::MAX)
            .await
            .unwrap();
        for file in ["tokens.db", "tokens.db-wal"] {
            let mode = std::fs::metadata(dir.path().join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}: {mode:o}");
        }
    }

    #[tokio::test]
    async fn tokens_uses_and_revocations_survive_reopening_the_file() {
        let (store, dir) = store().await;
        let organization = organization();
        let (_, kept) = issue(&organization);
        let (_, revoked) = issue(&organization);
        store.create(kept.clone(), usize::MAX).await.unwrap();
        store.create(revoked.clone(), usize::MAX).await.unwrap();
        let used_at = Timestamp::now();
        store.record_use(kept.id, used_at).await.unwrap();
        assert!(store.revoke(&organization, revoked.id).await.unwrap());
        store.pool().close().await;

        // Opened and migrated again, as a restarted app does.
        let reopened = open(&dir, "impersonation_").await;
        let found = reopened.lookup(&kept.digest).await.unwrap().unwrap();
        assert_eq!(found.id, kept.id);
        assert_eq!(found.last_used.get(), Some(used_at));
        assert_eq!(reopened.lookup(&revoked.digest).await.unwrap(), None);
        let listed = reopened.list(&organization).await.unwrap();
        assert_eq!(listed.len(), 1);
    }

    #[tokio::test]
    async fn the_file_holds_the_digest_and_never_the_secret() {
        let (store, dir) = store().await;
        let (secret, record) = issue(&organization());
        store.create(record.clone(), usize::MAX).await.unwrap();
        store.pool().close().await;
        let mut everything = Vec::new();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            everything.extend(std::fs::read(entry.unwrap().path()).unwrap());
        }
        let everything = String::from_utf8_lossy(&everything);
        let exposed = secret.expose();
        let uuid = exposed.rsplit(':').next().unwrap();
        assert!(everything.contains(&record.digest.to_hex()));
        assert!(!everything.contains(uuid));
        assert!(!everything.contains(&uuid.replace('-', "")));
    }

    #[tokio::test]
    async fn table_prefixes_keep_apps_apart_in_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let first = open(&dir, "first_").await;
        let second = open(&dir, "second_").await;
        let (_, record) = issue(&organization());
        first.create(record.clone(), usize::MAX).await.unwrap();
        assert!(first.lookup(&record.digest).await.unwrap().is_some());
        assert_eq!(second.lookup(&record.digest).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_schema_newer_than_the_crate_is_refused_not_guessed_at() {
        let (store, _dir) = store().await;
        store
            .migrate()
            .await
            .expect("migrating twice changes nothing");
        sqlx::query("INSERT INTO impersonation_schema_versions VALUES (999, 'future', 0)")
            .execute(store.pool())
            .await
            .unwrap();
        let refused = store.migrate().await.unwrap_err().to_string();
        assert!(refused.contains("version 999"), "{refused}");
    }
}

// ---- Postgres ---------------------------------------------------------------------------------

#[cfg(feature = "postgres")]
mod with_postgres {
    use std::time::{Duration, Instant};

    use tower_impersonation::{
        MemoryStore, StoreError, TokenStore,
        store::{
            Announcement, CachingStore, PostgresStore, RevocationFeed, RevocationSubscription,
        },
    };
    use uuid::Uuid;

    use super::{issue, organization};

    /// `DATABASE_URL`; the test fails when it is unset.
    pub(super) fn url() -> String {
        crate::common::servers::server_url("DATABASE_URL")
    }

    /// A table prefix no other test uses.
    pub(super) fn prefix() -> String {
        format!("t{}_", &Uuid::new_v4().simple().to_string()[..20])
    }

    /// A migrated store under tables of its own.
    pub(super) async fn store() -> PostgresStore {
        store_with(&url(), &prefix()).await
    }

    async fn store_with(url: &str, prefix: &str) -> PostgresStore {
        let store = PostgresStore::connect(url)
            .await
            .expect("Postgres at DATABASE_URL is reachable")
            .table_prefix(prefix)
            .unwrap();
        store.migrate().await.unwrap();
        store
    }

    #[tokio::test]
    #[ignore = "needs DATABASE_URL (.ci/run runs it)"]
    async fn a_revocation_is_announced_with_the_digest() {
        let store = store().await;
        let mut announcements = store.subscribe().await.unwrap();
        let organization = organization();
        let (_, record) = issue(&organization);
        store.create(record.clone(), usize::MAX).await.unwrap();
        assert!(store.revoke(&organization, record.id).await.unwrap());
        let heard = tokio::time::timeout(Duration::from_secs(10), announcements.next())
            .await
            .expect("announced")
            .unwrap();
        assert_eq!(heard, Announcement::Token(record.digest));
    }

    #[tokio::test]
    #[ignore = "needs DATABASE_URL (.ci/run runs it)"]
    async fn the_caching_store_hears_revocations_from_other_instances() {
        let url = url();
        let prefix = prefix();
        let lifetime = Duration::from_secs(300);
        let here = CachingStore::new(MemoryStore::new(), store_with(&url, &prefix).await)
            .lifetime(lifetime);
        let elsewhere = store_with(&url, &prefix).await;
        let listener = here.listen_for_revocations();
        super::until_subscribed(&listener).await;
        let organization = organization();
        let (_, record) = issue(&organization);
        here.create(record.clone(), usize::MAX).await.unwrap();
        here.lookup(&record.digest).await.unwrap();
        assert!(here.lookup_now(&record.digest).is_some(), "cached");

        assert!(elsewhere.revoke(&organization, record.id).await.unwrap());
        let revoked_at = Instant::now();
        while here.lookup_now(&record.digest).is_some() {
            assert!(
                revoked_at.elapsed() < Duration::from_secs(10),
                "still cached long after the revocation (lifetime {lifetime:?})"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(here.lookup(&record.digest).await.unwrap(), None);
    }

    #[tokio::test]
    #[ignore = "needs DATABASE_URL (.ci/run runs it)"]
    async fn a_cache_hears_jwt_revocations_from_another_instance() {
        let url = url();
        let prefix = prefix();
        let (here, there) = (
            store_with(&url, &prefix).await,
            store_with(&url, &prefix).await,
        );
        super::a_cache_hears_jwt_revocations_from_another_instance(here, there).await;
    }

    #[tokio::test]
    #[ignore = "needs DATABASE_URL (.ci/run runs it)"]
    async fn instances_migrating_together_apply_each_migration_once() {
        let url = url();
        let prefix = prefix();
        let mut starting = tokio::task::JoinSet::new();
        for _ in 0..4 {
            let (url, prefix) = (url.clone(), prefix.clone());
            starting.spawn(async move { store_with(&url, &prefix).await });
        }
        let stores = starting.join_all().await;
        let versions: i64 =
            sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {prefix}schema_versions"))
                .fetch_one(stores[0].pool())
                .await
                .unwrap();
        let migrations = std::fs::read_dir("migrations").unwrap().count();
        assert_eq!(
            versions,
            i64::try_from(migrations).unwrap(),
            "each applied once"
        );
    }

    #[tokio::test]
    async fn an_unreachable_postgres_is_a_backend_error_that_does_not_repeat_the_url() {
        let refused = PostgresStore::connect("postgres://app:hunter2@127.0.0.1:1/app")
            .await
            .unwrap_err();
        let StoreError::Backend(message) = &refused else {
            panic!("{refused:?}")
        };
        assert!(!message.contains("hunter2"), "{message}");
        assert!(
            message.starts_with("PostgreSQL: could not connect"),
            "{message}"
        );
    }
}
