//! The command line: the gateway's flags, the environment variables that stand for them, their
//! defaults and `--help` text, and what each means for the gateway it starts.

use std::{net::SocketAddr, num::NonZeroU32, path::PathBuf, sync::Arc, time::Duration};

use clap::{Parser, builder::TypedValueParser};
use tower_impersonation::{
    Audit,
    jwt::{JwtAlgorithm, JwtKeys},
    policy::ProtectedRoute,
};

use crate::{
    app::{
        Gateway, Limits,
        accounts::{Accounts, DEMO_USERS},
        jwt_key::{self, GENERATED_KEY_FILE, KeySource, SECRET_VARIABLE},
        server::{
            DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_TIMEOUT, DEFAULT_IDLE_TIMEOUT,
            DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
        },
        store_url::{DEFAULT_STORE, StoreUrl},
    },
    audit_log::LogFormat,
    open_files,
};

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
pub struct Options {
    /// Where to listen
    #[arg(
        long,
        env = "GATEWAY_ADDR",
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:3000"
    )]
    pub addr: SocketAddr,
    /// Where tokens are kept: memory, sqlite://PATH, postgres://... (needs --features postgres)
    /// or redis://... (needs --features redis); a relative PATH is in the working directory
    #[arg(long, env = "GATEWAY_STORE", value_name = "URL", default_value = DEFAULT_STORE)]
    store: StoreUrl,
    /// Organizations and members, with their plain api_key, as JSON (default: a demo); read
    /// again on SIGHUP
    #[arg(long, env = "GATEWAY_USERS", value_name = "FILE")]
    pub users: Option<PathBuf>,
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
    /// Most connections one client address may have open at once; past it a new one is closed
    /// at once
    #[arg(
        long,
        env = "GATEWAY_MAX_CONNECTIONS_PER_CLIENT",
        value_name = "N",
        default_value_t = DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
        value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize)
    )]
    max_connections_per_client: usize,
    /// The same as --store URL, for a redis:// URL
    #[arg(long, value_name = "URL", conflicts_with = "store")]
    redis: Option<String>,
    /// Write the log, audit events included, to FILE (appended to) instead of standard output
    #[arg(long, env = "GATEWAY_AUDIT_LOG", value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// How log lines are written
    #[arg(long, env = "GATEWAY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// No log at all, audit events included
    #[arg(long, conflicts_with = "audit_log")]
    pub quiet: bool,
}

impl Options {
    pub fn accounts(&self) -> Result<Accounts, String> {
        let Some(path) = &self.users else {
            return Ok(Accounts::from_json(DEMO_USERS).expect("the demo users are well formed"));
        };
        std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|json| Accounts::from_json(&json))
            .map_err(|e| format!("--users {}: {e}", path.display()))
    }

    /// The gateway's parts around `store`.
    pub fn gateway<St>(
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
    pub fn limits(&self) -> Limits {
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
            max_connections_per_client: self.max_connections_per_client,
        }
    }

    /// Where tokens are kept: `--redis` stands for `--store` with a redis:// URL.
    pub fn store(&self) -> Result<StoreUrl, String> {
        match &self.redis {
            None => Ok(self.store.clone()),
            Some(url) => match url.parse()? {
                redis @ StoreUrl::Redis(_) => Ok(redis),
                _ => Err("--redis needs a redis:// URL".into()),
            },
        }
    }

    /// Where tokens are kept, as the banner says it.
    pub fn store_banner(store: &StoreUrl) -> String {
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
    pub fn keys(&self, store: &StoreUrl) -> Result<(JwtKeys, KeySource), String> {
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
