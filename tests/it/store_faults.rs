//! The SQL stores under faults: every write of the `TokenStore` trait answers `Ok` only once its
//! change is committed, answers `Err` with nothing changed, and the store works again once the
//! cause is gone, without being reopened.
//!
//! SQLite: a full database (`PRAGMA max_page_count` on the store's connections), a commit that
//! fails (a deferred foreign key broken by a trigger), and another process holding the write lock
//! past the operation timeout. Postgres: a commit that fails (a deferred constraint trigger) and
//! another session holding the rows each write needs past the operation timeout, on
//! `DATABASE_URL`; a read-only server and a stopped one, on a server of the test's own
//! (tests/common/postgres_server.rs). Postgres tests are ignored unless asked for (`cargo test
//! --all-features -- --ignored`, as `.ci/run` does) and then fail without their server.
#![cfg(feature = "sqlite")]

use crate::common::world::ADA_ID;

use std::{sync::Arc, time::Duration};

use tower_impersonation::{
    MemoryStore, Roles, Timestamp, TokenPrefix, TokenRecord, TokenStore,
    jwt::{MintedJwt, UserRevocation},
    store::{CachingStore, StoreError},
};
use uuid::Uuid;

/// Longer than a store's operation timeout (2 seconds by default).
const LOCK_HELD: Duration = Duration::from_secs(3);

/// An organization no other test uses.
fn organization() -> String {
    format!("org-{}", Uuid::new_v4())
}

/// A new token of `organization`, named with `name_len` characters: a name longer than a page
/// makes storing the token need a new page.
fn issue(organization: &str, name_len: usize) -> TokenRecord {
    let (_, mut record) = TokenRecord::issue(
        &TokenPrefix::default(),
        organization,
        ADA_ID,
        Roles::full_access(),
    );
    record.name = Some("n".repeat(name_len));
    record
}

/// A JWT of `user` minted a minute ago, with a reason of `reason_len` characters.
fn minted(organization: &str, user: &str, reason_len: usize) -> MintedJwt {
    let issued_at = Timestamp::from_millis(Timestamp::now().as_millis() - 60_000);
    MintedJwt {
        jti: Uuid::new_v4(),
        organization: organization.into(),
        user_id: user.into(),
        actor: ADA_ID.into(),
        reason: "r".repeat(reason_len),
        issued_at,
        expires_at: issued_at.plus(Duration::from_secs(3600)),
    }
}

/// One write of each kind the `TokenStore` trait makes, set up on a working store so that what
/// each did can be read back afterwards.
struct Writes {
    organization: String,
    /// Created by the write.
    created: TokenRecord,
    /// Held by the store, revoked by the write.
    revoked: TokenRecord,
    /// Held by the store, whose use the write records.
    used: TokenRecord,
    used_at: Timestamp,
    /// Recorded by the write.
    recorded_jwt: MintedJwt,
    /// Held by the store, revoked by the write.
    revoked_jwt: MintedJwt,
    /// Held by the store; its user's JWTs are revoked by the write.
    users_jwt: MintedJwt,
}

/// What each write answered.
#[derive(Debug)]
struct Answers {
    create: Result<(), StoreError>,
    revoke: Result<bool, StoreError>,
    record_use: Result<(), StoreError>,
    record_jwt: Result<(), StoreError>,
    revoke_jwt: Result<bool, StoreError>,
    revoke_user_jwts: Result<(), StoreError>,
}

impl Answers {
    /// The writes that answered `Err`.
    fn failed(&self) -> Vec<&'static str> {
        let answered = [
            ("create", self.create.is_err()),
            ("revoke", self.revoke.is_err()),
            ("record_use", self.record_use.is_err()),
            ("record_jwt", self.record_jwt.is_err()),
            ("revoke_jwt", self.revoke_jwt.is_err()),
            ("revoke_user_jwts", self.revoke_user_jwts.is_err()),
        ];
        answered
            .into_iter()
            .filter_map(|(write, failed)| failed.then_some(write))
            .collect()
    }

    fn assert_all_failed(&self) {
        assert_eq!(self.failed().len(), 6, "every write fails: {self:#?}");
        for error in [
            self.create.as_ref().err(),
            self.revoke.as_ref().err(),
            self.record_use.as_ref().err(),
            self.record_jwt.as_ref().err(),
            self.revoke_jwt.as_ref().err(),
            self.revoke_user_jwts.as_ref().err(),
        ] {
            assert!(
                matches!(error, Some(StoreError::Backend(_))),
                "a backend error, answered 503: {error:?}"
            );
        }
    }

    fn assert_all_succeeded(&self) {
        assert!(self.failed().is_empty(), "every write succeeds: {self:#?}");
        assert_eq!(self.revoke, Ok(true));
        assert_eq!(self.revoke_jwt, Ok(true));
    }
}

impl Writes {
    /// Sets the writes up on `store`, which must work; with rows longer than a page when `big`,
    /// so that each insert needs a new page.
    async fn prepare<S: TokenStore>(store: &S, big: bool) -> Self {
        let size = if big { 5000 } else { 10 };
        let organization = organization();
        let writes = Self {
            created: issue(&organization, size),
            revoked: issue(&organization, 10),
            used: issue(&organization, 10),
            used_at: Timestamp::from_secs(Timestamp::now().as_millis() / 1000),
            recorded_jwt: minted(&organization, "carol", size),
            revoked_jwt: minted(&organization, "carol", 10),
            users_jwt: minted(&organization, &"u".repeat(size), 10),
            organization,
        };
        for record in [&writes.revoked, &writes.used] {
            store.create(record.clone(), usize::MAX).await.unwrap();
        }
        for jwt in [&writes.revoked_jwt, &writes.users_jwt] {
            store.record_jwt(jwt.clone()).await.unwrap();
        }
        writes
    }

    /// Makes each write once, all at the same time.
    async fn attempt<S: TokenStore>(&self, store: &S) -> Answers {
        let organization = &self.organization;
        let now = Timestamp::now();
        let user_revocation = UserRevocation {
            organization: organization.as_str().into(),
            user_id: Arc::clone(&self.users_jwt.user_id),
            cutoff: now,
            forget_at: now.plus(Duration::from_secs(3600)),
        };
        let (create, revoke, record_use, record_jwt, revoke_jwt, revoke_user_jwts) = tokio::join!(
            store.create(self.created.clone(), usize::MAX),
            store.revoke(organization, self.revoked.id),
            store.record_use(self.used.id, self.used_at),
            store.record_jwt(self.recorded_jwt.clone()),
            store.revoke_jwt(organization, self.revoked_jwt.jti, now),
            store.revoke_user_jwts(user_revocation),
        );
        Answers {
            create,
            revoke,
            record_use,
            record_jwt,
            revoke_jwt,
            revoke_user_jwts,
        }
    }

    /// Reads back, from `store` (which must work), what each write did, and checks it against
    /// what the write answered: done if it answered `Ok`, not done if it answered `Err`.
    async fn assert_answers_match_effects<S: TokenStore>(&self, answers: &Answers, store: &S) {
        let now = Timestamp::now();
        let created = store.lookup(&self.created.digest).await.unwrap();
        assert_eq!(
            created.is_some(),
            answers.create.is_ok(),
            "create: {answers:#?}"
        );
        let revoked = store.lookup(&self.revoked.digest).await.unwrap();
        assert_eq!(
            revoked.is_none(),
            answers.revoke.is_ok(),
            "revoke: {answers:#?}"
        );
        let used = store.lookup(&self.used.digest).await.unwrap().unwrap();
        let used = used.last_used.get();
        assert_eq!(
            used == Some(self.used_at),
            answers.record_use.is_ok(),
            "record_use: {answers:#?}"
        );
        let live = store.list_jwts(&self.organization, now).await.unwrap();
        let is_live = |jwt: &MintedJwt| live.iter().any(|live| live.jti == jwt.jti);
        assert_eq!(
            is_live(&self.recorded_jwt),
            answers.record_jwt.is_ok(),
            "record_jwt: {answers:#?}"
        );
        assert_eq!(
            !is_live(&self.revoked_jwt),
            answers.revoke_jwt.is_ok(),
            "revoke_jwt: {answers:#?}"
        );
        let revocations = store.jwt_revocations(now).await.unwrap();
        for (jwt, answer) in [
            (&self.revoked_jwt, answers.revoke_jwt.is_ok()),
            (&self.users_jwt, answers.revoke_user_jwts.is_ok()),
        ] {
            assert_eq!(
                revocations.is_revoked(&jwt.identity()),
                answer,
                "the revocations in force: {answers:#?}"
            );
        }
        assert_eq!(
            !is_live(&self.users_jwt),
            answers.revoke_user_jwts.is_ok(),
            "revoke_user_jwts: {answers:#?}"
        );
    }
}

/// While `fault` is on, makes each write on `store` and checks each answered `Err` (all of them
/// when `all_fail`; else at least the inserts); once it is off, that what each did matches what
/// it answered, on `store` and on `reopened` (a second store over the same database), and that
/// every write succeeds again on `store`.
async fn writes_tell_the_truth_and_heal<S: TokenStore>(
    store: &S,
    fault: impl AsyncFnOnce(),
    cure: impl AsyncFnOnce(),
    reopened: impl AsyncFnOnce() -> S,
    all_fail: bool,
) {
    let writes = Writes::prepare(store, !all_fail).await;
    fault().await;
    let answers = writes.attempt(store).await;
    if all_fail {
        answers.assert_all_failed();
    } else {
        let failed = answers.failed();
        for insert in ["create", "record_jwt", "revoke_user_jwts"] {
            assert!(failed.contains(&insert), "{insert} fails: {answers:#?}");
        }
    }
    cure().await;
    // Writes first: the store works again at once, with no reopening.
    let again = Writes::prepare(store, !all_fail).await;
    writes.assert_answers_match_effects(&answers, store).await;
    let reopened = reopened().await;
    writes
        .assert_answers_match_effects(&answers, &reopened)
        .await;

    let answers = again.attempt(store).await;
    answers.assert_all_succeeded();
    again.assert_answers_match_effects(&answers, store).await;
}

/// A failed flush keeps the last uses it could not write, and the next flush writes them.
async fn a_failed_flush_keeps_last_uses_for_the_next<S: TokenStore + Clone>(
    store: &S,
    fault: impl AsyncFnOnce(),
    cure: impl AsyncFnOnce(),
) {
    let caching = CachingStore::new(MemoryStore::new(), store.clone());
    let record = issue(&organization(), 10);
    caching.create(record.clone(), usize::MAX).await.unwrap();
    let cached = caching.lookup(&record.digest).await.unwrap().unwrap();
    // What the layer does on a cache hit between two write-backs: note the use on the record.
    let at = Timestamp::from_secs(Timestamp::now().as_millis() / 1000);
    cached.last_used.record(at);

    fault().await;
    let failed = caching.flush().await;
    assert!(matches!(failed, Err(StoreError::Backend(_))), "{failed:?}");
    cure().await;
    let stored = store.lookup(&record.digest).await.unwrap().unwrap();
    assert_eq!(
        stored.last_used.get(),
        None,
        "the failed flush wrote nothing"
    );
    caching.flush().await.unwrap();
    let stored = store.lookup(&record.digest).await.unwrap().unwrap();
    assert_eq!(
        stored.last_used.get(),
        Some(at),
        "the next flush wrote the use"
    );
}

// ---- SQLite -----------------------------------------------------------------------------------

mod with_sqlite {
    use std::{
        path::{Path, PathBuf},
        sync::{
            Arc,
            atomic::{AtomicU32, Ordering},
        },
        time::Instant,
    };

    use sqlx::{
        Connection, Executor, SqliteConnection,
        sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    };
    use tempfile::TempDir;
    use tower_impersonation::store::SqliteStore;

    use super::*;

    /// SQLite's largest `max_page_count`: no limit.
    const NO_PAGE_LIMIT: u32 = 4_294_967_294;

    fn file(dir: &TempDir) -> PathBuf {
        dir.path().join("tokens.db")
    }

    /// The store as an app opens it.
    async fn open(path: &Path) -> SqliteStore {
        let store = SqliteStore::open(path).await.unwrap();
        store.migrate().await.unwrap();
        store
    }

    /// A connection of another process's, to the same file.
    async fn other_connection(path: &Path) -> SqliteConnection {
        SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(path))
            .await
            .unwrap()
    }

    /// A store over `path` whose connections may grow the database to `max_pages` pages at most
    /// (read each time one is taken from the pool; 1 holds it at its current size): a full disk
    /// for SQLite. Its other options are those of [`SqliteStore::open`].
    async fn store_with_page_limit(path: &Path, max_pages: Arc<AtomicU32>) -> SqliteStore {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let connected = Arc::clone(&max_pages);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .after_connect(move |connection, _| {
                let pages = connected.load(Ordering::SeqCst);
                Box::pin(async move { limit_pages(connection, pages).await })
            })
            .before_acquire(move |connection, _| {
                let pages = max_pages.load(Ordering::SeqCst);
                Box::pin(async move { limit_pages(connection, pages).await.map(|()| true) })
            })
            .connect_with(options)
            .await
            .unwrap();
        let store = SqliteStore::from_pool(pool);
        store.migrate().await.unwrap();
        store
    }

    async fn limit_pages(connection: &mut SqliteConnection, pages: u32) -> sqlx::Result<()> {
        let pragma = format!("PRAGMA max_page_count = {pages}");
        connection.execute(pragma.as_str()).await.map(|_| ())
    }

    #[tokio::test]
    async fn on_a_full_database_writes_tell_the_truth_and_heal_once_there_is_room() {
        let dir = tempfile::tempdir().unwrap();
        let max_pages = Arc::new(AtomicU32::new(NO_PAGE_LIMIT));
        let store = store_with_page_limit(&file(&dir), Arc::clone(&max_pages)).await;
        writes_tell_the_truth_and_heal(
            &store,
            async || max_pages.store(1, Ordering::SeqCst),
            async || max_pages.store(NO_PAGE_LIMIT, Ordering::SeqCst),
            async || open(&file(&dir)).await,
            false,
        )
        .await;
    }

    /// Triggers on the store's tables that break a deferred foreign key on every write, so that
    /// each write fails when it commits, and not before.
    const FAIL_AT_COMMIT: &str = "
        CREATE TABLE fault_parent (id INTEGER PRIMARY KEY);
        CREATE TABLE fault_child (
            parent INTEGER REFERENCES fault_parent (id) DEFERRABLE INITIALLY DEFERRED
        );
        CREATE TRIGGER fault_token_insert AFTER INSERT ON impersonation_tokens
            BEGIN INSERT INTO fault_child VALUES (1); END;
        CREATE TRIGGER fault_token_update AFTER UPDATE ON impersonation_tokens
            BEGIN INSERT INTO fault_child VALUES (1); END;
        CREATE TRIGGER fault_token_delete AFTER DELETE ON impersonation_tokens
            BEGIN INSERT INTO fault_child VALUES (1); END;
        CREATE TRIGGER fault_jwt_insert AFTER INSERT ON impersonation_jwts
            BEGIN INSERT INTO fault_child VALUES (1); END;
        CREATE TRIGGER fault_jwt_update AFTER UPDATE ON impersonation_jwts
            BEGIN INSERT INTO fault_child VALUES (1); END;
        CREATE TRIGGER fault_user_insert AFTER INSERT ON impersonation_jwt_user_revocations
            BEGIN INSERT INTO fault_child VALUES (1); END;
        CREATE TRIGGER fault_user_update AFTER UPDATE ON impersonation_jwt_user_revocations
            BEGIN INSERT INTO fault_child VALUES (1); END;
    ";

    const CURE_COMMIT: &str = "
        DROP TRIGGER fault_token_insert; DROP TRIGGER fault_token_update;
        DROP TRIGGER fault_token_delete; DROP TRIGGER fault_jwt_insert;
        DROP TRIGGER fault_jwt_update; DROP TRIGGER fault_user_insert;
        DROP TRIGGER fault_user_update; DROP TABLE fault_child; DROP TABLE fault_parent;
    ";

    async fn run(path: &Path, sql: &str) {
        let mut connection = other_connection(path).await;
        sqlx::raw_sql(sql).execute(&mut connection).await.unwrap();
        connection.close().await.unwrap();
    }

    #[tokio::test]
    async fn writes_failing_at_commit_answer_503_change_nothing_and_heal() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(&dir);
        let store = open(&path).await;
        writes_tell_the_truth_and_heal(
            &store,
            async || run(&path, FAIL_AT_COMMIT).await,
            async || run(&path, CURE_COMMIT).await,
            async || open(&path).await,
            true,
        )
        .await;
    }

    #[tokio::test]
    async fn a_flush_failing_at_commit_keeps_the_last_uses_for_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(&dir);
        let store = open(&path).await;
        a_failed_flush_keeps_last_uses_for_the_next(
            &store,
            async || run(&path, FAIL_AT_COMMIT).await,
            async || run(&path, CURE_COMMIT).await,
        )
        .await;
    }

    /// Another process holds the write lock for longer than the operation timeout: each write
    /// waits, gives up and answers 503, and none lands once the lock is released.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_outwaited_by_another_writer_answer_503_and_never_land_later() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(&dir);
        let store = open(&path).await;
        let writes = Writes::prepare(&store, false).await;

        let mut holder = other_connection(&path).await;
        sqlx::raw_sql("BEGIN IMMEDIATE")
            .execute(&mut holder)
            .await
            .unwrap();
        let locked_at = Instant::now();
        let attempting = {
            let store = store.clone();
            tokio::spawn(async move {
                let answers = writes.attempt(&store).await;
                (writes, answers)
            })
        };
        // Each write gives up after the operation timeout; the lock outlasts it.
        tokio::time::sleep(LOCK_HELD.saturating_sub(locked_at.elapsed())).await;
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut holder)
            .await
            .unwrap();
        let (writes, answers) = attempting.await.unwrap();
        answers.assert_all_failed();
        // Past the 5 seconds a busy timeout commonly lets a write wait for the lock: a write
        // abandoned at its timeout but still waiting would have landed by then.
        tokio::time::sleep(Duration::from_secs(6).saturating_sub(locked_at.elapsed())).await;
        writes.assert_answers_match_effects(&answers, &store).await;
        let again = Writes::prepare(&store, false).await;
        let answers = again.attempt(&store).await;
        answers.assert_all_succeeded();
        again.assert_answers_match_effects(&answers, &store).await;
    }
}

// ---- Postgres ---------------------------------------------------------------------------------

#[cfg(feature = "postgres")]
mod with_postgres {
    use std::time::Instant;

    use sqlx::{Connection, PgConnection};
    use tower_impersonation::store::PostgresStore;

    use super::*;
    use crate::common::{postgres_server::PostgresServer, servers::free_port};

    /// `DATABASE_URL`; the test fails when it is unset.
    fn url() -> String {
        crate::common::servers::server_url("DATABASE_URL")
    }

    /// A server of the test's own; the test fails when Postgres is not installed.
    fn own_server() -> PostgresServer {
        PostgresServer::start(free_port()).expect(
            "Postgres (initdb, pg_ctl) is not installed: this test needs a server of its own",
        )
    }

    /// A table prefix no other test uses.
    fn prefix() -> String {
        format!("f{}_", &Uuid::new_v4().simple().to_string()[..20])
    }

    /// A migrated store at `url` under tables named with `prefix`.
    async fn store(url: &str, prefix: &str) -> PostgresStore {
        let store = PostgresStore::connect(url)
            .await
            .unwrap()
            .table_prefix(prefix)
            .unwrap();
        store.migrate().await.unwrap();
        store
    }

    async fn run(url: &str, sql: &str) {
        let mut connection = PgConnection::connect(url).await.unwrap();
        sqlx::raw_sql(sql).execute(&mut connection).await.unwrap();
        connection.close().await.unwrap();
    }

    /// Constraint triggers on the store's tables that fail every write when it commits, and not
    /// before.
    fn fail_at_commit(prefix: &str) -> String {
        let mut sql = format!(
            "CREATE FUNCTION {prefix}fail() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'failing at commit'; END $$;"
        );
        for table in ["tokens", "jwts", "jwt_user_revocations"] {
            sql.push_str(&format!(
                "CREATE CONSTRAINT TRIGGER {prefix}fail_{table} \
                 AFTER INSERT OR UPDATE OR DELETE ON {prefix}{table} \
                 DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {prefix}fail();"
            ));
        }
        sql
    }

    fn cure_commit(prefix: &str) -> String {
        format!("DROP FUNCTION {prefix}fail() CASCADE")
    }

    #[tokio::test]
    #[ignore = "needs DATABASE_URL (.ci/run runs it)"]
    async fn writes_failing_at_commit_answer_503_change_nothing_and_heal() {
        let url = url();
        let prefix = prefix();
        let store = store(&url, &prefix).await;
        writes_tell_the_truth_and_heal(
            &store,
            async || run(&url, &fail_at_commit(&prefix)).await,
            async || run(&url, &cure_commit(&prefix)).await,
            async || super::with_postgres::store(&url, &prefix).await,
            true,
        )
        .await;
    }

    #[tokio::test]
    #[ignore = "needs DATABASE_URL (.ci/run runs it)"]
    async fn a_flush_failing_at_commit_keeps_the_last_uses_for_the_next() {
        let url = url();
        let prefix = prefix();
        let store = store(&url, &prefix).await;
        a_failed_flush_keeps_last_uses_for_the_next(
            &store,
            async || run(&url, &fail_at_commit(&prefix)).await,
            async || run(&url, &cure_commit(&prefix)).await,
        )
        .await;
    }

    /// What another session writing holds that each of `writes` needs: the rows it changes, and
    /// uncommitted rows under the keys it inserts.
    fn rows_held(prefix: &str, writes: &Writes) -> String {
        let organization = &writes.organization;
        format!(
            "BEGIN;
             SELECT 1 FROM {prefix}tokens WHERE id IN ('{revoked}', '{used}') FOR UPDATE;
             SELECT 1 FROM {prefix}jwts WHERE jti = '{revoked_jwt}' FOR UPDATE;
             INSERT INTO {prefix}tokens (digest, id, organization, roles, created_at,
                 created_by, last_four) VALUES ('{created}', '{other}', 'other', '', 0, 'other',
                 'abcd');
             INSERT INTO {prefix}jwts (jti, organization, user_id, actor, reason, issued_at,
                 expires_at) VALUES ('{recorded_jwt}', 'other', 'other', 'other', '', 0,
                 9000000000000);
             INSERT INTO {prefix}jwt_user_revocations VALUES ('{organization}', '{user}', 0,
                 9000000000000);",
            revoked = writes.revoked.id,
            used = writes.used.id,
            revoked_jwt = writes.revoked_jwt.jti,
            created = writes.created.digest.to_hex(),
            other = Uuid::new_v4(),
            recorded_jwt = writes.recorded_jwt.jti,
            user = writes.users_jwt.user_id,
        )
    }

    /// Another session holds what each write needs for longer than the operation timeout: each
    /// write waits, gives up and answers 503, and none lands once the other session ends.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs DATABASE_URL (.ci/run runs it)"]
    async fn writes_outwaited_by_another_writer_answer_503_and_never_land_later() {
        let url = url();
        let prefix = prefix();
        let store = store(&url, &prefix).await;
        let writes = Writes::prepare(&store, false).await;

        let mut holder = PgConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(&rows_held(&prefix, &writes))
            .execute(&mut holder)
            .await
            .unwrap();
        let held_at = Instant::now();
        let attempting = {
            let store = store.clone();
            tokio::spawn(async move {
                let answers = writes.attempt(&store).await;
                (writes, answers)
            })
        };
        tokio::time::sleep(LOCK_HELD.saturating_sub(held_at.elapsed())).await;
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut holder)
            .await
            .unwrap();
        let (writes, answers) = attempting.await.unwrap();
        answers.assert_all_failed();
        // A write abandoned while it waited would land as soon as the other session ended.
        tokio::time::sleep(Duration::from_secs(1)).await;
        writes.assert_answers_match_effects(&answers, &store).await;
        let again = Writes::prepare(&store, false).await;
        let answers = again.attempt(&store).await;
        answers.assert_all_succeeded();
        again.assert_answers_match_effects(&answers, &store).await;
    }

    /// Sets `default_transaction_read_only` for every session of `server`, and waits until a
    /// session opened before has taken it.
    async fn set_read_only(server: &PostgresServer, on: bool) {
        let mut observer = PgConnection::connect(&server.url()).await.unwrap();
        let mut admin = PgConnection::connect(&server.url()).await.unwrap();
        let change = if on {
            "ALTER SYSTEM SET default_transaction_read_only = on"
        } else {
            "ALTER SYSTEM RESET default_transaction_read_only"
        };
        // One at a time: ALTER SYSTEM runs outside any transaction.
        for sql in [
            "SET default_transaction_read_only = off",
            change,
            "SELECT pg_reload_conf()",
        ] {
            sqlx::raw_sql(sql).execute(&mut admin).await.unwrap();
        }
        let expected = if on { "on" } else { "off" };
        let started = Instant::now();
        loop {
            let now: String = sqlx::query_scalar("SHOW default_transaction_read_only")
                .fetch_one(&mut observer)
                .await
                .unwrap();
            if now == expected {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the server never took default_transaction_read_only = {expected}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    #[ignore = "needs Postgres installed (.ci/run runs it)"]
    async fn on_a_read_only_server_writes_answer_503_change_nothing_and_heal() {
        let server = own_server();
        let prefix = prefix();
        let store = store(&server.url(), &prefix).await;
        writes_tell_the_truth_and_heal(
            &store,
            async || set_read_only(&server, true).await,
            async || set_read_only(&server, false).await,
            async || super::with_postgres::store(&server.url(), &prefix).await,
            true,
        )
        .await;
    }

    #[tokio::test]
    #[ignore = "needs Postgres installed (.ci/run runs it)"]
    async fn while_the_server_is_stopped_writes_answer_503_and_heal_once_it_is_back() {
        let server = own_server();
        let prefix = prefix();
        let store = store(&server.url(), &prefix).await;
        writes_tell_the_truth_and_heal(
            &store,
            async || server.stop(),
            async || server.start_again(),
            async || super::with_postgres::store(&server.url(), &prefix).await,
            true,
        )
        .await;
    }
}
