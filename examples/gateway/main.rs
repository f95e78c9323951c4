//! The example gateway: an axum app with impersonation tokens (seed 003), organization
//! impersonation JWTs (seed 000), role scopes and gRPC health on one port.
//!
//! ```text
//! cargo run --example gateway [-- --addr HOST:PORT] [--users FILE] [--jwt-secret SECRET] [--quiet]
//! cargo run --example gateway --features redis -- --redis redis://127.0.0.1:6379/
//! ```
//!
//! With no `--users` it serves a demo organization and prints `curl` commands for every flow.

mod app;

use std::{net::SocketAddr, process::ExitCode, sync::Arc};

use tokio::net::TcpListener;
use tower_impersonation::{MemoryStore, jwt::JwtKeys};
use tracing::Level;
use uuid::Uuid;

use app::{
    Gateway,
    accounts::{Accounts, DEMO_USERS},
};

const USAGE: &str = "\
usage: gateway [--addr HOST:PORT] [--users FILE] [--jwt-secret SECRET] [--redis URL] [--quiet]

  --addr HOST:PORT     where to listen (default 127.0.0.1:3000)
  --users FILE         organizations and members, with their plain api_key (default: a demo)
  --jwt-secret SECRET  HS256 key of impersonation JWTs, at least 32 bytes (default: random)
  --redis URL          share tokens with other instances through Redis (needs --features redis)
  --quiet              no audit log on standard output";

/// The command line.
struct Options {
    addr: SocketAddr,
    users: Option<String>,
    jwt_secret: Option<String>,
    redis: Option<String>,
    quiet: bool,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut options = Options {
            addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            users: None,
            jwt_secret: None,
            redis: None,
            quiet: false,
        };
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or(format!("{flag} needs a value"));
            match flag.as_str() {
                "--addr" => {
                    let addr = value()?;
                    options.addr = addr.parse().map_err(|e| format!("--addr {addr}: {e}"))?;
                }
                "--users" => options.users = Some(value()?),
                "--jwt-secret" => options.jwt_secret = Some(value()?),
                "--redis" => options.redis = Some(value()?),
                "--quiet" => options.quiet = true,
                "-h" | "--help" => return Err(String::new()),
                other => return Err(format!("unknown argument {other}")),
            }
        }
        Ok(options)
    }

    fn accounts(&self) -> Result<Accounts, String> {
        let json = match &self.users {
            Some(path) => std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?,
            None => DEMO_USERS.to_owned(),
        };
        Accounts::from_json(&json).map_err(|e| format!("users: {e}"))
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
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(why) => {
            if !why.is_empty() {
                eprintln!("gateway: {why}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    if !options.quiet {
        tracing_subscriber::fmt().with_max_level(Level::INFO).init();
    }
    match run(options).await {
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
            let store = MemoryStore::new();
            let router = app::router(Gateway {
                accounts,
                store,
                keys,
            });
            app::serve(listener, router)
                .await
                .map_err(|e| e.to_string())
        }
        Some(url) => serve_shared(url, listener, accounts, keys).await,
    }
}

/// Serves with tokens in Redis, cached in memory, and revocations from other instances heard
/// at once.
#[cfg(feature = "redis")]
async fn serve_shared(
    url: &str,
    listener: TcpListener,
    accounts: Arc<Accounts>,
    keys: JwtKeys,
) -> Result<(), String> {
    use tower_impersonation::store::{CachingStore, RedisStore};
    let redis = RedisStore::connect(url)
        .await
        .map_err(|e| format!("--redis: {e}"))?;
    let store = CachingStore::new(MemoryStore::new(), redis);
    let _revocations = store.listen_for_revocations();
    println!("tokens shared through Redis at {url}");
    let router = app::router(Gateway {
        accounts,
        store,
        keys,
    });
    app::serve(listener, router)
        .await
        .map_err(|e| e.to_string())
}

#[cfg(not(feature = "redis"))]
async fn serve_shared(
    _url: &str,
    _listener: TcpListener,
    _accounts: Arc<Accounts>,
    _keys: JwtKeys,
) -> Result<(), String> {
    Err("--redis needs the redis feature: cargo run --example gateway --features redis".into())
}
