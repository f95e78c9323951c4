//! The example gateway: an axum app with Guru-style workspace impersonation tokens, JWTs from the
//! JSON:API impersonation endpoint, role scopes and gRPC health on one port.
//!
//! ```text
//! cargo run -p impersonation-gateway [-- --addr HOST:PORT] [--store URL] [--audit-log FILE] ...
//! cargo run -p impersonation-gateway -- --help
//! cargo run -p impersonation-gateway --features postgres -- --store postgres://127.0.0.1/app
//! ```
//!
//! With no `--users` it serves a demo organization and prints `curl` commands for every flow.
//! With no `--store` it keeps tokens in the SQLite file `impersonation.db` in the working
//! directory.

mod app;
mod audit_log;
mod open_files;
mod signals;

use std::{
    net::SocketAddr,
    num::NonZeroU32,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
    time::Duration,
};

use clap::{Parser, builder::TypedValueParser};
use tokio::net::TcpListener;
use tower_impersonation::{
    Audit, MemoryStore, TokenStore, TracingAudit,
    jwt::{JwtAlgorithm, JwtKeys},
    policy::ProtectedRoute,
    store::CachingStore,
};
use tower_layer::Layer;

use app::{
    Gateway, Limits,
    accounts::{Accounts, DEMO_USERS},
    jwt_key::{self, GENERATED_KEY_FILE, KeySource, SECRET_VARIABLE},
    server::{
        DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
    },
    store_url::{DEFAULT_STORE, StoreUrl},
};
use audit_log::{AuditLog, LogFormat};
use signals::{Reload, UsersFile, shutdown_signal};

/// The longest timeout a flag takes, a day: hyper adds a timeout to the time now, which a far larger
/// one would overflow.
const MAX_TIMEOUT_SECS: u64 = 86_400;

/// The example gateway of tower-impersonation: an axum app with impersonation tokens, organization
/// impersonation JWTs, role scopes and gRPC health on one port.
///
/// Every accepted and refused impersonation is an audit event, written by a thread of its own:
/// a request never waits on the log.
// No `Debug`: the options hold the JWT secret.
#[derive(Parser)]
#[command(name = "impersonation-gateway", version)]
struct Options {
    /// Where to listen
    #[arg(
        long,
        env = "GATEWAY_ADDR",
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:3000"
    )]
    addr: SocketAddr,
    /// Where tokens are kept: memory, sqlite://PATH, postgres://... (needs --features postgres)
    /// or redis://... (needs --features redis); a relative PATH is in the working directory
    #[arg(long, env = "GATEWAY_STORE", value_name = "URL", default_value = DEFAULT_STORE)]
    store: StoreUrl,
    /// Organizations and members, with their plain api_key, as JSON (default: a demo); read
    /// again on SIGHUP
    #[arg(long, env = "GATEWAY_USERS", value_name = "FILE")]
    users: Option<PathBuf>,
    /// A request no impersonated caller may make, whatever its roles: an HTTP method or * for
    /// any, and a path, with a trailing /* for a subtree (repeatable). The token and JWT services
    /// are always protected
    #[arg(long, value_name = "METHOD /PATH")]
    protect: Vec<ProtectedRoute>,
    /// How impersonation JWTs are signed: HS256, EdDSA or ES256
    #[arg(long, value_name = "ALG", default_value = "HS256")]
    jwt_algorithm: JwtAlgorithm,
    /// The JWT key: the HS256 secret (at least 32 bytes), or a PKCS#8 PEM private key for EdDSA
    /// and ES256. Without it: $IMPERSONATION_JWT_SECRET, else --jwt-secret, else a key generated
    /// on the first start and kept beside the token database (impersonation.jwt-key, mode 0600)
    #[arg(long, value_name = "FILE")]
    jwt_key_file: Option<PathBuf>,
    /// The JWT key on the command line, which a process listing shows (prefer
    /// $IMPERSONATION_JWT_SECRET or --jwt-key-file)
    #[arg(long, value_name = "SECRET")]
    jwt_secret: Option<String>,
    /// Most requests a second from one client address, 0 for none
    #[arg(
        long,
        env = "GATEWAY_RATE_LIMIT",
        value_name = "N",
        default_value_t = 100
    )]
    rate_limit: u32,
    /// Seconds a client has to send a request's head, from when its connection opens or its
    /// previous answer was sent: also how long an idle HTTP/1 connection is kept open
    #[arg(
        long,
        env = "GATEWAY_HEADER_TIMEOUT",
        value_name = "SECONDS",
        default_value_t = DEFAULT_HEADER_TIMEOUT.as_secs(),
        value_parser = clap::value_parser!(u64).range(1..=MAX_TIMEOUT_SECS)
    )]
    header_timeout: u64,
    /// Seconds a request's body may pause before the request is ended
    #[arg(
        long,
        env = "GATEWAY_BODY_TIMEOUT",
        value_name = "SECONDS",
        default_value_t = DEFAULT_BODY_TIMEOUT.as_secs(),
        value_parser = clap::value_parser!(u64).range(1..=MAX_TIMEOUT_SECS)
    )]
    body_timeout: u64,
    /// Seconds an HTTP/2 connection may be silent before the gateway pings its client, and then
    /// waits for the answer before closing it
    #[arg(
        long,
        env = "GATEWAY_IDLE_TIMEOUT",
        value_name = "SECONDS",
        default_value_t = DEFAULT_IDLE_TIMEOUT.as_secs(),
        value_parser = clap::value_parser!(u64).range(1..=MAX_TIMEOUT_SECS)
    )]
    idle_timeout: u64,
    /// Most connections open at once; past it new ones wait until one closes
    #[arg(
        long,
        env = "GATEWAY_MAX_CONNECTIONS",
        value_name = "N",
        default_value_t = DEFAULT_MAX_CONNECTIONS,
        value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize)
    )]
    max_connections: usize,
    /// The same as --store URL, for a redis:// URL
    #[arg(long, value_name = "URL", conflicts_with = "store")]
    redis: Option<String>,
    /// Write the log, audit events included, to FILE (appended to) instead of standard output
    #[arg(long, env = "GATEWAY_AUDIT_LOG", value_name = "FILE")]
    audit_log: Option<PathBuf>,
    /// How log lines are written
    #[arg(long, env = "GATEWAY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// No log at all, audit events included
    #[arg(long, conflicts_with = "audit_log")]
    quiet: bool,
}

impl Options {
    fn accounts(&self) -> Result<Accounts, String> {
        let Some(path) = &self.users else {
            return Ok(Accounts::from_json(DEMO_USERS).expect("the demo users are well formed"));
        };
        std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|json| Accounts::from_json(&json))
            .map_err(|e| format!("--users {}: {e}", path.display()))
    }

    /// The gateway's parts around `store`.
    fn gateway<St>(
        &self,
        accounts: Arc<Accounts>,
        keys: JwtKeys,
        audit: Arc<dyn Audit>,
        store: St,
    ) -> Gateway<St> {
        Gateway {
            accounts,
            store,
            keys,
            rate_limit: NonZeroU32::new(self.rate_limit),
            protected: self.protect.clone(),
            audit,
        }
    }

    /// What a connection may take, its cap lowered if the process may not open that many files.
    fn limits(&self) -> Limits {
        let max_connections = open_files::make_room_for(self.max_connections);
        if max_connections < self.max_connections {
            eprintln!(
                "gateway: --max-connections {} lowered to {max_connections}: the process may not \
                 open more files (ulimit -n)",
                self.max_connections
            );
        }
        Limits {
            header_timeout: Duration::from_secs(self.header_timeout),
            body_timeout: Duration::from_secs(self.body_timeout),
            idle_timeout: Duration::from_secs(self.idle_timeout),
            max_connections,
        }
    }

    /// Where tokens are kept: `--redis` stands for `--store` with a redis:// URL.
    fn store(&self) -> Result<StoreUrl, String> {
        match &self.redis {
            None => Ok(self.store.clone()),
            Some(url) => match url.parse()? {
                redis @ StoreUrl::Redis(_) => Ok(redis),
                _ => Err("--redis needs a redis:// URL".into()),
            },
        }
    }

    /// Where tokens are kept, as the banner says it.
    fn store_banner(store: &StoreUrl) -> String {
        match store {
            StoreUrl::Memory => "Tokens are kept in memory: gone when the gateway stops.".into(),
            StoreUrl::Sqlite(path) => format!(
                "Tokens are kept in the SQLite file {} (--store memory for none).",
                path.display()
            ),
            shared => format!("Tokens are kept in {shared}, shared with every gateway using it."),
        }
    }

    /// The JWT keys, from the first place that has one (`jwt_key.rs`).
    fn keys(&self, store: &StoreUrl) -> Result<(JwtKeys, KeySource), String> {
        let env_secret = match std::env::var(SECRET_VARIABLE) {
            Ok(secret) => Some(secret),
            Err(std::env::VarError::NotPresent) => None,
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(format!("${SECRET_VARIABLE} is not UTF-8"));
            }
        };
        // A generated key is kept beside the token database, if that is a file.
        let generated = match store {
            StoreUrl::Sqlite(database) => database.with_file_name(GENERATED_KEY_FILE),
            _ => PathBuf::from(GENERATED_KEY_FILE),
        };
        jwt_key::load_or_generate(
            self.jwt_algorithm,
            self.jwt_key_file.as_deref(),
            env_secret,
            self.jwt_secret.clone(),
            &generated,
        )
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = Options::parse();
    let accounts = match options.accounts() {
        Ok(accounts) => Arc::new(accounts),
        Err(why) => {
            eprintln!("gateway: {why}");
            return ExitCode::FAILURE;
        }
    };
    let log = if options.quiet {
        None
    } else {
        match AuditLog::install(options.log_format, options.audit_log.as_deref()) {
            Ok(log) => Some(log),
            Err(e) => {
                let path = options.audit_log.as_deref().unwrap_or(Path::new("-"));
                eprintln!("gateway: --audit-log {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
    };
    let reporter = log.as_ref().map(AuditLog::report_drops);
    let reloader = Reload {
        log_file: log.as_ref().and_then(AuditLog::file),
        users: options.users.clone().map(|path| UsersFile {
            path,
            accounts: Arc::clone(&accounts),
        }),
    }
    .on_hangup();
    // With a log, the layer's decisions and the admins' changes are written straight into it;
    // quiet, they are tracing events nobody listens to.
    let audit: Arc<dyn Audit> = match &log {
        Some(log) => Arc::new(log.decision_lines(options.log_format)),
        None => Arc::new(TracingAudit),
    };
    let outcome = run(options, accounts, audit).await;
    if let Some(reporter) = reporter {
        reporter.abort();
    }
    if let Some(reloader) = reloader {
        reloader.abort();
    }
    // Every line logged until now reaches the log before the process exits.
    if let Some(log) = log {
        log.finish(); // says how many lines were dropped, if any
    }
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("gateway: {why}");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    options: Options,
    accounts: Arc<Accounts>,
    audit: Arc<dyn Audit>,
) -> Result<(), String> {
    let store = options.store()?;
    let (keys, key_source) = options.keys(&store)?;
    let limits = options.limits();
    let listener = TcpListener::bind(options.addr)
        .await
        .map_err(|e| format!("--addr {}: {e}", options.addr))?;
    let base = format!(
        "http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    println!("tower-impersonation example gateway on {base}");
    println!("{}", Options::store_banner(&store));
    println!("{}", key_source.describe(&keys));
    if options.users.is_none() {
        println!("{}", app::banner::text(&base));
    }
    let store_error = |e: tower_impersonation::StoreError| format!("--store: {e}");
    let logged = !options.quiet;
    match store {
        StoreUrl::Memory => {
            serve(
                listener,
                options.gateway(accounts, keys, audit, MemoryStore::new()),
                limits,
                logged,
            )
            .await
        }
        StoreUrl::Sqlite(path) => {
            let file = tower_impersonation::store::SqliteStore::open(&path)
                .await
                .map_err(store_error)?;
            file.migrate().await.map_err(store_error)?;
            let store = CachingStore::new(MemoryStore::new(), file.clone());
            let served = serve(
                listener,
                options.gateway(accounts, keys, audit, store),
                limits,
                logged,
            )
            .await;
            // The last connection to close folds SQLite's write-ahead log back into the file: a
            // clean exit leaves the database in one file, not beside an `-wal` and `-shm`.
            file.pool().close().await;
            served
        }
        #[cfg(feature = "postgres")]
        StoreUrl::Postgres(url) => {
            let shared = tower_impersonation::store::PostgresStore::connect(&url)
                .await
                .map_err(store_error)?;
            shared.migrate().await.map_err(store_error)?;
            let store = CachingStore::new(MemoryStore::new(), shared);
            let _revocations = store.listen_for_revocations();
            serve(
                listener,
                options.gateway(accounts, keys, audit, store),
                limits,
                logged,
            )
            .await
        }
        #[cfg(feature = "redis")]
        StoreUrl::Redis(url) => {
            let shared = tower_impersonation::store::RedisStore::connect(&url)
                .await
                .map_err(store_error)?;
            let store = CachingStore::new(MemoryStore::new(), shared);
            let _revocations = store.listen_for_revocations();
            serve(
                listener,
                options.gateway(accounts, keys, audit, store),
                limits,
                logged,
            )
            .await
        }
        #[allow(
            unreachable_patterns,
            reason = "reached when a store's feature is not built"
        )]
        unbuilt => Err(unbuilt.not_built()),
    }
}

/// Serves until SIGTERM or Ctrl-C, lets the requests in flight finish, then writes back the last
/// uses the store holds only in memory. With a log, each request's client is known to it.
async fn serve<St: TokenStore + Clone>(
    listener: TcpListener,
    gateway: Gateway<St>,
    limits: Limits,
    logged: bool,
) -> Result<(), String> {
    let store = gateway.store.clone();
    let router = app::router(gateway);
    let served = if logged {
        // Around the whole app, so every line logged while a request is served names its
        // client; not through `Router::layer`, which wraps each route and costs every request
        // a clone of the route's boxed service.
        let app = audit_log::request_client::WithClientLayer.layer(router);
        app::serve(listener, app, limits, shutdown_signal()).await
    } else {
        app::serve(listener, router, limits, shutdown_signal()).await
    };
    served.map_err(|e| e.to_string())?;
    store
        .flush()
        .await
        .map_err(|e| format!("writing back last uses: {e}"))
}
