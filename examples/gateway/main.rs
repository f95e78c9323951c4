//! The example gateway: an axum app with impersonation tokens (seed 003), organization
//! impersonation JWTs (seed 000), role scopes and gRPC health on one port.
//!
//! ```text
//! cargo run --example gateway [-- --addr HOST:PORT] [--audit-log FILE] [--log-format json] ...
//! cargo run --example gateway -- --help
//! cargo run --example gateway --features redis -- --redis redis://127.0.0.1:6379/
//! ```
//!
//! With no `--users` it serves a demo organization and prints `curl` commands for every flow.

mod app;
mod audit_log;

use std::{
    net::SocketAddr,
    num::NonZeroU32,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
};

use clap::Parser;

use tokio::net::TcpListener;
#[cfg(feature = "redis")]
use tower_impersonation::store::{CachingStore, RedisStore, RevocationListener};
use tower_impersonation::{MemoryStore, TokenStore, jwt::JwtKeys};
use uuid::Uuid;

use audit_log::{AuditLog, LogFormat};

use app::{
    Gateway,
    accounts::{Accounts, DEMO_USERS},
};

/// The example gateway of tower-impersonation: an axum app with impersonation tokens, organization
/// impersonation JWTs, role scopes and gRPC health on one port.
///
/// Every accepted and refused impersonation is an audit event, written by a thread of its own:
/// a request never waits on the log.
// No `Debug`: the options hold the JWT secret.
#[derive(Parser)]
#[command(name = "gateway", version)]
struct Options {
    /// Where to listen
    #[arg(
        long,
        env = "GATEWAY_ADDR",
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:3000"
    )]
    addr: SocketAddr,
    /// Organizations and members, with their plain api_key, as JSON (default: a demo)
    #[arg(long, env = "GATEWAY_USERS", value_name = "FILE")]
    users: Option<PathBuf>,
    /// HS256 key of impersonation JWTs, at least 32 bytes (default: random at start)
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
    /// Share tokens with other instances through Redis (needs --features redis)
    #[arg(long, value_name = "URL")]
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
        let json = match &self.users {
            Some(path) => {
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?
            }
            None => DEMO_USERS.to_owned(),
        };
        Accounts::from_json(&json).map_err(|e| format!("users: {e}"))
    }

    /// The gateway's parts around `store`.
    fn gateway<St>(&self, accounts: Arc<Accounts>, keys: JwtKeys, store: St) -> Gateway<St> {
        Gateway {
            accounts,
            store,
            keys,
            rate_limit: NonZeroU32::new(self.rate_limit),
        }
    }

    fn keys(&self) -> Result<JwtKeys, String> {
        // Two v4 UUIDs: 244 bits from the OS random generator.
        let random = || format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
        let secret = self.jwt_secret.clone().unwrap_or_else(random);
        JwtKeys::hs256(secret.as_bytes()).map_err(|e| format!("--jwt-secret: {e}"))
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = Options::parse();
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
    let outcome = run(options).await;
    if let Some(reporter) = reporter {
        reporter.abort();
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

async fn run(options: Options) -> Result<(), String> {
    let accounts = Arc::new(options.accounts()?);
    let keys = options.keys()?;
    let listener = TcpListener::bind(options.addr)
        .await
        .map_err(|e| format!("--addr {}: {e}", options.addr))?;
    let base = format!(
        "http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    println!("tower-impersonation example gateway on {base}");
    if options.users.is_none() {
        println!("{}", app::banner::text(&base));
    }
    match &options.redis {
        None => {
            serve(
                listener,
                options.gateway(accounts, keys, MemoryStore::new()),
            )
            .await
        }
        #[cfg(feature = "redis")]
        Some(url) => {
            let (store, _revocations) = shared_store(url).await?;
            serve(listener, options.gateway(accounts, keys, store)).await
        }
        #[cfg(not(feature = "redis"))]
        Some(_) => Err("--redis needs: cargo run --example gateway --features redis".into()),
    }
}

/// Serves until SIGTERM or Ctrl-C, lets the requests in flight finish, then writes back the last
/// uses the store holds only in memory.
async fn serve<St: TokenStore + Clone>(
    listener: TcpListener,
    gateway: Gateway<St>,
) -> Result<(), String> {
    let store = gateway.store.clone();
    let router = app::router(gateway);
    app::serve(listener, router, shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    store
        .flush()
        .await
        .map_err(|e| format!("writing back last uses: {e}"))
}

/// Completes on the first SIGTERM or Ctrl-C (SIGINT).
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            eprintln!("gateway: cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(e) => {
                eprintln!("gateway: cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!(
        target: "gateway",
        "shutting down: no new connections; finishing the requests in flight"
    );
}

/// Tokens in Redis, cached in memory, with revocations made by other instances applied as they
/// are announced, for as long as the listener is kept.
#[cfg(feature = "redis")]
async fn shared_store(url: &str) -> Result<(SharedStore, RevocationListener), String> {
    let redis = RedisStore::connect(url)
        .await
        .map_err(|e| format!("--redis: {e}"))?;
    let store = CachingStore::new(MemoryStore::new(), redis);
    let revocations = store.listen_for_revocations();
    println!("tokens shared through Redis at {url}");
    Ok((store, revocations))
}

#[cfg(feature = "redis")]
type SharedStore = CachingStore<MemoryStore, RedisStore>;
