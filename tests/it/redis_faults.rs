//! `RedisStore` answers what happened when Redis refuses or loses writes: out of memory, a
//! read-only replica, a failed snapshot, an answer that comes too late, a restart. A write
//! answered `Ok` has happened and stays; one Redis refused changed nothing; and the same store
//! object works again once the cause is gone.
//!
//! Each test starts `redis-server`s of its own on free loopback ports, so its `CONFIG SET`s
//! disturb no other test. They are ignored unless asked for (`cargo test --all-features --
//! --ignored`, as `.ci/run` does) and then fail without `redis-server` on `PATH`.
#![cfg(feature = "redis")]

use crate::common::{
    redis_server,
    world::{ADA_ID, BOB_ID},
};

use std::{collections::BTreeMap, time::Duration};

use redis::aio::MultiplexedConnection;
use tower_impersonation::{
    Roles, StoreError, Timestamp, TokenPrefix, TokenRecord, TokenStore,
    jwt::{MintedJwt, UserRevocation},
    store::{DEFAULT_KEY_PREFIX, RedisStore},
};
use uuid::Uuid;

use redis_server::RedisServer;

const ORG: &str = "acme";

/// What the store holds before the fault.
struct World {
    /// A token that stays.
    kept: TokenRecord,
    /// A token revoked during the fault where Redis allows it.
    doomed: TokenRecord,
    /// A recorded JWT of Bob's.
    jwt: MintedJwt,
}

fn token() -> TokenRecord {
    let (_, record) =
        TokenRecord::issue(&TokenPrefix::default(), ORG, ADA_ID, Roles::full_access());
    record
}

/// A JWT of `user`'s, minted a minute ago, valid for an hour.
fn minted(user: &str) -> MintedJwt {
    let issued_at = Timestamp::from_millis(Timestamp::now().as_millis() - 60_000);
    MintedJwt {
        jti: Uuid::new_v4(),
        organization: ORG.into(),
        user_id: user.into(),
        actor: ADA_ID.into(),
        reason: "ticket 42".to_owned(),
        issued_at,
        expires_at: issued_at.plus(Duration::from_secs(3600)),
    }
}

/// Revokes every JWT `user` holds now.
fn user_revocation(user: &str) -> UserRevocation {
    let cutoff = Timestamp::now();
    UserRevocation {
        organization: ORG.into(),
        user_id: user.into(),
        cutoff,
        forget_at: cutoff.plus(Duration::from_secs(3600)),
    }
}

async fn connect(server: &RedisServer) -> RedisStore {
    RedisStore::connect(&server.url())
        .await
        .expect("the test's Redis is reachable")
}

async fn raw(server: &RedisServer) -> MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn command(connection: &mut MultiplexedConnection, args: &[&str]) -> redis::Value {
    let mut command = redis::cmd(args[0]);
    for arg in &args[1..] {
        command.arg(*arg);
    }
    command
        .query_async(connection)
        .await
        .unwrap_or_else(|error| panic!("{args:?}: {error}"))
}

/// One field of `INFO`, such as `rdb_last_bgsave_status`.
async fn info(connection: &mut MultiplexedConnection, field: &str) -> String {
    let text: String = redis::cmd("INFO").query_async(connection).await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_default()
        .to_owned()
}

/// Waits, for 10 seconds at most, until `INFO` shows `field` as `value`.
async fn wait_for_info(connection: &mut MultiplexedConnection, field: &str, value: &str) {
    for _ in 0..200 {
        if info(connection, field).await == value {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("INFO never showed {field}:{value}");
}

/// Every key with its value (a hash as `field=value`s, a set's members, sorted): what "nothing
/// changed" compares.
async fn snapshot(connection: &mut MultiplexedConnection) -> BTreeMap<String, Vec<String>> {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(connection)
        .await
        .unwrap();
    let mut values = BTreeMap::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(connection)
            .await
            .unwrap();
        let read = match kind.as_str() {
            "string" => "GET",
            "hash" => "HGETALL",
            "set" => "SMEMBERS",
            other => panic!("{key} is a {other}"),
        };
        let mut value: Vec<String> = redis::cmd(read)
            .arg(&key)
            .query_async(connection)
            .await
            .unwrap();
        if kind == "hash" {
            value = value.chunks(2).map(|pair| pair.join("=")).collect();
        }
        value.sort();
        values.insert(key, value);
    }
    values
}

async fn seed(store: &RedisStore, admin: &mut MultiplexedConnection) -> World {
    let world = World {
        kept: token(),
        doomed: token(),
        jwt: minted(BOB_ID),
    };
    store.create(world.kept.clone(), usize::MAX).await.unwrap();
    store
        .create(world.doomed.clone(), usize::MAX)
        .await
        .unwrap();
    store.record_jwt(world.jwt.clone()).await.unwrap();
    // Every script loaded, so a paused Redis holds the scripts themselves, not their loading.
    assert!(!store.revoke(ORG, Uuid::new_v4()).await.unwrap());
    assert!(
        !store
            .revoke_jwt(ORG, Uuid::new_v4(), Timestamp::now())
            .await
            .unwrap()
    );
    store
        .record_use(Uuid::new_v4(), Timestamp::now())
        .await
        .unwrap();
    store.list(ORG).await.unwrap();
    // The id of a token deleted by hand, left in the organization's set for a create to clear.
    let set = format!("{DEFAULT_KEY_PREFIX}org:{ORG}");
    command(admin, &["SADD", &set, &Uuid::new_v4().to_string()]).await;
    world
}

#[track_caller]
fn assert_refused<T: std::fmt::Debug>(what: &str, result: Result<T, StoreError>, code: &str) {
    match result {
        Err(StoreError::Backend(message)) if message.contains(code) => {}
        other => panic!("{what}: expected a refusal with {code}, got {other:?}"),
    }
}

/// Tries every write but revoking a token, each of which Redis refuses with `code`.
async fn growing_writes_are_refused(store: &RedisStore, world: &World, code: &str) {
    let fresh = token();
    assert_refused(
        "create",
        store.create(fresh.clone(), usize::MAX).await,
        code,
    );
    assert_refused(
        "create at a limit, clearing a vanished id",
        store.create(token(), 3).await,
        code,
    );
    assert_refused(
        "record a JWT",
        store.record_jwt(minted("carol")).await,
        code,
    );
    assert_refused(
        "revoke a JWT",
        store.revoke_jwt(ORG, world.jwt.jti, Timestamp::now()).await,
        code,
    );
    assert_refused(
        "revoke a user's JWTs",
        store.revoke_user_jwts(user_revocation(BOB_ID)).await,
        code,
    );
    assert_refused(
        "record a use",
        store.record_use(world.kept.id, Timestamp::now()).await,
        code,
    );
    assert_eq!(store.lookup(&fresh.digest).await.unwrap(), None);
    assert!(store.lookup(&world.kept.digest).await.unwrap().is_some());
}

/// Every write succeeds again on the same store object, and each is seen.
async fn every_write_works(store: &RedisStore, world: &World) {
    let fresh = token();
    store.create(fresh.clone(), 3).await.unwrap();
    assert!(store.lookup(&fresh.digest).await.unwrap().is_some());

    let carols = minted("carol");
    store.record_jwt(carols.clone()).await.unwrap();
    let now = Timestamp::now();
    let listed = store.list_jwts(ORG, now).await.unwrap();
    assert!(listed.iter().any(|jwt| jwt.jti == carols.jti));
    assert!(store.revoke_jwt(ORG, carols.jti, now).await.unwrap());
    assert!(!store.revoke_jwt(ORG, carols.jti, now).await.unwrap());

    store
        .revoke_user_jwts(user_revocation(BOB_ID))
        .await
        .unwrap();
    let revocations = store.jwt_revocations(Timestamp::now()).await.unwrap();
    assert!(revocations.is_revoked(&carols.identity()));
    assert!(revocations.is_revoked(&world.jwt.identity()));

    let used = Timestamp::now();
    store.record_use(world.kept.id, used).await.unwrap();
    let kept = store.lookup(&world.kept.digest).await.unwrap().unwrap();
    assert_eq!(
        kept.last_used.get().map(Timestamp::as_millis),
        Some(used.as_millis())
    );

    assert!(store.revoke(ORG, world.kept.id).await.unwrap());
    assert!(!store.revoke(ORG, world.kept.id).await.unwrap());
    assert_eq!(store.lookup(&world.kept.digest).await.unwrap(), None);
}

#[tokio::test]
#[ignore = "needs redis-server on PATH (.ci/run runs it)"]
async fn a_full_redis_refuses_what_would_grow_changes_nothing_and_still_revokes() {
    let server = RedisServer::start_for(&[], "the out-of-memory test");
    let store = connect(&server).await;
    let mut admin = raw(&server).await;
    let world = seed(&store, &mut admin).await;
    let before = snapshot(&mut admin).await;

    command(
        &mut admin,
        &["CONFIG", "SET", "maxmemory-policy", "noeviction"],
    )
    .await;
    command(&mut admin, &["CONFIG", "SET", "maxmemory", "1"]).await;
    growing_writes_are_refused(&store, &world, "OOM").await;
    assert_eq!(snapshot(&mut admin).await, before, "nothing changed");

    // Revoking only frees memory: Redis lets it through, and it holds.
    assert!(store.revoke(ORG, world.doomed.id).await.unwrap());
    assert_eq!(store.lookup(&world.doomed.digest).await.unwrap(), None);
    assert!(!store.revoke(ORG, world.doomed.id).await.unwrap());

    command(&mut admin, &["CONFIG", "SET", "maxmemory", "0"]).await;
    every_write_works(&store, &world).await;
}

#[tokio::test]
#[ignore = "needs redis-server on PATH (.ci/run runs it)"]
async fn a_read_only_replica_refuses_every_write_and_changes_nothing() {
    let primary = RedisServer::start_for(
        &["--repl-diskless-sync-delay", "0"],
        "the read-only replica test",
    );
    let port = primary.port().to_string();
    let replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &port])
        .expect("redis-server is on PATH");
    let (mut on_primary, mut on_replica) = (raw(&primary).await, raw(&replica).await);
    let world = seed(&connect(&primary).await, &mut on_primary).await;
    wait_for_info(&mut on_replica, "master_link_status", "up").await;
    let before = snapshot(&mut on_primary).await;
    for _ in 0..200 {
        if snapshot(&mut on_replica).await == before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        snapshot(&mut on_replica).await,
        before,
        "the replica synced"
    );

    // An app pointed at the replica, as after a failover that demoted its Redis.
    let store = connect(&replica).await;
    growing_writes_are_refused(&store, &world, "READONLY").await;
    assert_refused(
        "revoke",
        store.revoke(ORG, world.doomed.id).await,
        "READONLY",
    );
    assert_eq!(snapshot(&mut on_replica).await, before, "nothing changed");
    assert_eq!(snapshot(&mut on_primary).await, before);

    command(&mut on_replica, &["REPLICAOF", "NO", "ONE"]).await;
    every_write_works(&store, &world).await;
    assert!(store.revoke(ORG, world.doomed.id).await.unwrap());
}

#[tokio::test]
#[ignore = "needs redis-server on PATH (.ci/run runs it)"]
async fn a_redis_that_cannot_save_refuses_every_write_until_it_saves_again() {
    let server = RedisServer::start_for(
        &["--save", "3600 1", "--dbfilename", "dump.rdb"],
        "the failed snapshot test",
    );
    let store = connect(&server).await;
    let mut admin = raw(&server).await;
    let world = seed(&store, &mut admin).await;
    let before = snapshot(&mut admin).await;

    // A folder where the snapshot goes: the save fails as it renames its file, even as root.
    let obstacle = server.dir().join("dump.rdb");
    std::fs::create_dir(&obstacle).unwrap();
    command(&mut admin, &["BGSAVE"]).await;
    wait_for_info(&mut admin, "rdb_last_bgsave_status", "err").await;

    growing_writes_are_refused(&store, &world, "MISCONF").await;
    assert_refused(
        "revoke",
        store.revoke(ORG, world.doomed.id).await,
        "MISCONF",
    );
    assert_eq!(snapshot(&mut admin).await, before, "nothing changed");

    std::fs::remove_dir(&obstacle).unwrap();
    wait_for_info(&mut admin, "rdb_bgsave_in_progress", "0").await;
    command(&mut admin, &["BGSAVE"]).await;
    wait_for_info(&mut admin, "rdb_last_bgsave_status", "ok").await;
    every_write_works(&store, &world).await;
    assert!(store.revoke(ORG, world.doomed.id).await.unwrap());
}

#[tokio::test]
#[ignore = "needs redis-server on PATH (.ci/run runs it)"]
async fn a_revoke_answered_too_late_may_still_apply_and_a_retry_answers_that_it_did() {
    let server = RedisServer::start_for(&[], "the late answer test");
    let store = connect(&server)
        .await
        .operation_timeout(Duration::from_millis(300));
    let mut admin = raw(&server).await;
    let world = seed(&store, &mut admin).await;

    // Redis holds writes (and scripts) until unpaused: the revoke reaches it, its answer is late.
    command(&mut admin, &["CLIENT", "PAUSE", "30000", "WRITE"]).await;
    assert_refused(
        "revoke while paused",
        store.revoke(ORG, world.doomed.id).await,
        "timed out",
    );
    assert_refused(
        "revoke a JWT while paused",
        store.revoke_jwt(ORG, world.jwt.jti, Timestamp::now()).await,
        "timed out",
    );
    command(&mut admin, &["CLIENT", "UNPAUSE"]).await;

    // The revoke that failed is applied once Redis goes on.
    let mut gone = false;
    for _ in 0..100 {
        gone = store.lookup(&world.doomed.digest).await.unwrap().is_none();
        if gone {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "the timed-out revoke was applied late");
    assert!(
        !store.revoke(ORG, world.doomed.id).await.unwrap(),
        "a retry answers that the token was already revoked"
    );

    // Whether the JWT's revoke went through or not, a retry leaves it revoked, then says so.
    store
        .revoke_jwt(ORG, world.jwt.jti, Timestamp::now())
        .await
        .unwrap();
    let revocations = store.jwt_revocations(Timestamp::now()).await.unwrap();
    assert!(revocations.is_revoked(&world.jwt.identity()));
    assert!(
        !store
            .revoke_jwt(ORG, world.jwt.jti, Timestamp::now())
            .await
            .unwrap()
    );

    // The late answers were not taken for later commands' answers.
    let kept = store.lookup(&world.kept.digest).await.unwrap().unwrap();
    assert_eq!(*kept, world.kept);
    every_write_works(&store, &world).await;
}

#[tokio::test]
#[ignore = "needs redis-server on PATH (.ci/run runs it)"]
async fn after_a_restart_the_first_write_succeeds_on_the_same_store() {
    let mut server = RedisServer::start_for(&[], "the restart test");
    let store = connect(&server).await;
    let world = seed(&store, &mut raw(&server).await).await;

    server.stop();
    assert!(matches!(
        store.create(token(), usize::MAX).await,
        Err(StoreError::Backend(_))
    ));
    assert!(matches!(
        store.revoke(ORG, world.doomed.id).await,
        Err(StoreError::Backend(_))
    ));
    assert!(matches!(
        store.record_use(world.kept.id, Timestamp::now()).await,
        Err(StoreError::Backend(_))
    ));
    // Long enough for the connection manager to give up reconnecting in the background.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // A restarted Redis that kept nothing (no snapshot): the same store writes at once.
    server.start_again();
    let fresh = token();
    store.create(fresh.clone(), usize::MAX).await.unwrap();
    assert!(store.lookup(&fresh.digest).await.unwrap().is_some());
    assert!(store.revoke(ORG, fresh.id).await.unwrap());
    store.record_jwt(minted("carol")).await.unwrap();
    store
        .revoke_user_jwts(user_revocation("carol"))
        .await
        .unwrap();
}
