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

mod cli;
mod open_files;
mod signals;

use std::{path::Path, process::ExitCode, sync::Arc};

use clap::Parser;
use tokio::net::TcpListener;
use tower_impersonation::{Audit, MemoryStore, TokenStore, TracingAudit, store::CachingStore};
use tower_layer::Layer;

use impersonation_gateway::{app, audit_log};

use app::{Gateway, Limits, accounts::Accounts, store_url::StoreUrl};
use audit_log::AuditLog;
use cli::Options;
use signals::{Reload, UsersFile, shutdown_signal};

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
        // client. Not through `Router::layer`, which wraps each route and costs every request
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
