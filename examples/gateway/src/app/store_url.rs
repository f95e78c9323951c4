//! `--store URL`: where the gateway keeps its tokens.

use std::{fmt, path::PathBuf, str::FromStr};

/// The default: an SQLite file in the working directory, so tokens survive a restart.
pub const DEFAULT_STORE: &str = "sqlite://impersonation.db";

/// A parsed `--store` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreUrl {
    /// `memory`: this process alone, gone at exit.
    Memory,
    /// `sqlite://PATH`: a file, relative to the working directory unless absolute.
    Sqlite(PathBuf),
    /// `postgres://…` or `postgresql://…`: shared by every instance using it.
    Postgres(String),
    /// `redis://…` or `rediss://…`: shared by every instance using it.
    Redis(String),
}

impl FromStr for StoreUrl {
    type Err = String;

    fn from_str(url: &str) -> Result<Self, String> {
        if url == "memory" {
            return Ok(Self::Memory);
        }
        let (scheme, rest) = url.split_once("://").ok_or_else(|| unknown(url))?;
        match scheme {
            "sqlite" if !rest.is_empty() => Ok(Self::Sqlite(PathBuf::from(rest))),
            "sqlite" => Err("--store sqlite:// needs a file: sqlite://impersonation.db".into()),
            "postgres" | "postgresql" => Ok(Self::Postgres(url.to_owned())),
            "redis" | "rediss" => Ok(Self::Redis(url.to_owned())),
            _ => Err(unknown(url)),
        }
    }
}

impl StoreUrl {
    /// The gateway's cargo feature the store needs, if any: memory and SQLite are always built.
    pub fn feature(&self) -> Option<&'static str> {
        match self {
            Self::Memory | Self::Sqlite(_) => None,
            Self::Postgres(_) => Some("postgres"),
            Self::Redis(_) => Some("redis"),
        }
    }

    /// The refusal for a store whose feature this build lacks.
    pub fn not_built(&self) -> String {
        let feature = self.feature().unwrap_or_default();
        format!(
            "--store {self}: this gateway was built without the `{feature}` feature; run \
             cargo run -p impersonation-gateway --features {feature} -- --store ..."
        )
    }
}

/// Shows where tokens are kept without a password the URL may hold.
impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory => f.write_str("memory"),
            Self::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            Self::Postgres(url) | Self::Redis(url) => f.write_str(&without_password(url)),
        }
    }
}

fn unknown(url: &str) -> String {
    let shown = without_password(url);
    format!("--store {shown}: expected memory, sqlite://PATH, postgres://... or redis://...")
}

/// `scheme://user:secret@host/...` as `scheme://user:***@host/...`.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((credentials, host)) => {
            let user = credentials
                .split_once(':')
                .map_or(credentials, |(user, _)| user);
            let hidden = if credentials.contains(':') {
                ":***"
            } else {
                ""
            };
            format!("{scheme}://{user}{hidden}@{host}{path}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_parses_and_others_are_refused() {
        assert_eq!("memory".parse(), Ok(StoreUrl::Memory));
        assert_eq!(
            DEFAULT_STORE.parse(),
            Ok(StoreUrl::Sqlite("impersonation.db".into()))
        );
        assert_eq!(
            "sqlite:///var/lib/app/tokens.db".parse(),
            Ok(StoreUrl::Sqlite("/var/lib/app/tokens.db".into()))
        );
        assert!(matches!(
            "postgresql://db/app".parse(),
            Ok(StoreUrl::Postgres(_))
        ));
        assert!(matches!(
            "redis://127.0.0.1/".parse(),
            Ok(StoreUrl::Redis(_))
        ));
        for bad in ["", "sqlite://", "mysql://db", "impersonation.db"] {
            assert!(bad.parse::<StoreUrl>().is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_are_not_shown() {
        let url: StoreUrl = "postgres://app:hunter2@db:5432/app?sslmode=require"
            .parse()
            .unwrap();
        assert_eq!(
            url.to_string(),
            "postgres://app:***@db:5432/app?sslmode=require"
        );
        let refused = "mysql://app:hunter2@db/app"
            .parse::<StoreUrl>()
            .unwrap_err();
        assert!(!refused.contains("hunter2"), "{refused}");
    }
}
