//! The example gateway: an axum app with impersonation tokens (seed 003), organization
//! impersonation JWTs (seed 000), role scopes and gRPC health on one port.
//!
//! ```text
//! cargo run --example gateway [-- --addr HOST:PORT] [--store URL] [--users FILE]
//!     [--jwt-algorithm ALG] [--jwt-key-file FILE] [--quiet]
//! cargo run --example gateway --features postgres -- --store postgres://127.0.0.1/app
//! ```
//!
//! With no `--users` it serves a demo organization and prints `curl` commands for every flow.
//! With no `--store` it keeps tokens in the SQLite file `impersonation.db` in the working
//! directory.

mod app;

use std::{net::SocketAddr, num::NonZeroU32, path::PathBuf, process::ExitCode, sync::Arc};

use tokio::net::TcpListener;
use tower_impersonation::{
    MemoryStore, TokenStore,
    jwt::{JwtAlgorithm, JwtKeys},
    store::CachingStore,
};
use tracing::Level;

use app::{
    Gateway,
    accounts::{Accounts, DEMO_USERS},
    jwt_key::{self, GENERATED_KEY_FILE, KeySource, SECRET_VARIABLE},
    store_url::{DEFAULT_STORE, StoreUrl},
};

const USAGE: &str = "\
usage: gateway [--addr HOST:PORT] [--store URL] [--users FILE] [--jwt-algorithm ALG]
               [--jwt-key-file FILE] [--jwt-secret SECRET] [--rate-limit N] [--redis URL]
               [--quiet]

  --addr HOST:PORT     where to listen (default 127.0.0.1:3000)
  --store URL          where tokens are kept: memory, sqlite://PATH, postgres://... (needs
                       --features postgres) or redis://... (needs --features redis)
                       (default sqlite://impersonation.db, in the working directory)
  --users FILE         organizations and members, with their plain api_key (default: a demo)
  --jwt-algorithm ALG  HS256, EdDSA or ES256: how impersonation JWTs are signed (default HS256)
  --jwt-key-file FILE  the JWT key: the HS256 secret (32 bytes or more), or a PKCS#8 PEM
                       private key for EdDSA and ES256. Without it: $IMPERSONATION_JWT_SECRET,
                       else --jwt-secret, else a key generated on the first start and kept in
                       impersonation.jwt-key (mode 0600), so JWTs survive a restart
  --jwt-secret SECRET  the JWT key on the command line, which a process listing shows
  --rate-limit N       most requests a second from one client address, 0 for none (default 100)
  --redis URL          the same as --store URL, for a redis:// URL
  --quiet              no audit log on standard output";

/// The command line.
struct Options {
    addr: SocketAddr,
    users: Option<String>,
    jwt_algorithm: JwtAlgorithm,
    jwt_key_file: Option<PathBuf>,
    jwt_secret: Option<String>,
    rate_limit: Option<NonZeroU32>,
    store: StoreUrl,
    quiet: bool,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut options = Options {
            addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            users: None,
            jwt_algorithm: JwtAlgorithm::Hs256,
            jwt_key_file: None,
            jwt_secret: None,
            rate_limit: NonZeroU32::new(100),
            store: DEFAULT_STORE.parse()?,
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
                "--jwt-algorithm" => {
                    let algorithm = value()?;
                    options.jwt_algorithm = algorithm
                        .parse()
                        .map_err(|e| format!("--jwt-algorithm: {e}"))?;
                }
                "--jwt-key-file" => options.jwt_key_file = Some(value()?.into()),
                "--jwt-secret" => options.jwt_secret = Some(value()?),
                "--rate-limit" => {
                    let rate = value()?;
                    let rate = rate
                        .parse()
                        .map_err(|e| format!("--rate-limit {rate}: {e}"))?;
                    options.rate_limit = NonZeroU32::new(rate);
                }
                "--store" => options.store = value()?.parse()?,
                "--redis" => {
                    options.store = value()?.parse()?;
                    if !matches!(options.store, StoreUrl::Redis(_)) {
                        return Err("--redis needs a redis:// URL".into());
                    }
                }
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

    /// The gateway's parts around `store`.
    fn gateway<St>(&self, accounts: Arc<Accounts>, keys: JwtKeys, store: St) -> Gateway<St> {
        Gateway {
            accounts,
            store,
            keys,
            rate_limit: self.rate_limit,
        }
    }

    /// Where tokens are kept, as the banner says it.
    fn store_banner(&self) -> String {
        match &self.store {
            StoreUrl::Memory => "Tokens are kept in memory: gone when the gateway stops.".into(),
            StoreUrl::Sqlite(path) => format!(
                "Tokens are kept in the SQLite file {} (--store memory for none).",
                path.display()
            ),
            shared => format!("Tokens are kept in {shared}, shared with every gateway using it."),
        }
    }

    /// The JWT keys, from the first place that has one (`jwt_key.rs`).
    fn keys(&self) -> Result<(JwtKeys, KeySource), String> {
        let env_secret = match std::env::var(SECRET_VARIABLE) {
            Ok(secret) => Some(secret),
            Err(std::env::VarError::NotPresent) => None,
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(format!("${SECRET_VARIABLE} is not UTF-8"));
            }
        };
        jwt_key::load_or_generate(
            self.jwt_algorithm,
            self.jwt_key_file.as_deref(),
            env_secret,
            self.jwt_secret.clone(),
            &self.generated_key_path(),
        )
    }

    /// Where a generated JWT key is kept: beside the token database, if it is a file.
    fn generated_key_path(&self) -> PathBuf {
        match &self.store {
            StoreUrl::Sqlite(database) => database.with_file_name(GENERATED_KEY_FILE),
            _ => PathBuf::from(GENERATED_KEY_FILE),
        }
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
    let (keys, key_source) = options.keys()?;
    let listener = TcpListener::bind(options.addr)
        .await
        .map_err(|e| format!("--addr {}: {e}", options.addr))?;
    let base = format!(
        "http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    println!("tower-impersonation example gateway on {base}");
    println!("{}", options.store_banner());
    println!("{}", key_source.describe(&keys));
    if options.users.is_none() {
        println!("{}", app::banner::text(&base));
    }
    match options.store.clone() {
        StoreUrl::Memory => {
            serve(
                listener,
                options.gateway(accounts, keys, MemoryStore::new()),
            )
            .await
        }
        #[cfg(feature = "sqlite")]
        StoreUrl::Sqlite(path) => {
            let file = tower_impersonation::store::SqliteStore::open(&path)
                .await
                .map_err(|e| format!("--store: {e}"))?;
            file.migrate().await.map_err(|e| format!("--store: {e}"))?;
            let store = CachingStore::new(MemoryStore::new(), file);
            serve(listener, options.gateway(accounts, keys, store)).await
        }
        #[cfg(feature = "postgres")]
        StoreUrl::Postgres(url) => {
            let shared = tower_impersonation::store::PostgresStore::connect(&url)
                .await
                .map_err(|e| format!("--store: {e}"))?;
            shared
                .migrate()
                .await
                .map_err(|e| format!("--store: {e}"))?;
            let store = CachingStore::new(MemoryStore::new(), shared);
            let _revocations = store.listen_for_revocations();
            serve(listener, options.gateway(accounts, keys, store)).await
        }
        #[cfg(feature = "redis")]
        StoreUrl::Redis(url) => {
            let shared = tower_impersonation::store::RedisStore::connect(&url)
                .await
                .map_err(|e| format!("--store: {e}"))?;
            let store = CachingStore::new(MemoryStore::new(), shared);
            let _revocations = store.listen_for_revocations();
            serve(listener, options.gateway(accounts, keys, store)).await
        }
        #[allow(
            unreachable_patterns,
            reason = "reached when a store's feature is not built"
        )]
        unbuilt => Err(unbuilt.not_built()),
    }
}

async fn serve<St: TokenStore + Clone>(
    listener: TcpListener,
    gateway: Gateway<St>,
) -> Result<(), String> {
    let router = app::router(gateway);
    app::serve(listener, router)
        .await
        .map_err(|e| e.to_string())
}
