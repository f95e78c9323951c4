//! The gateway's own users and their plain API keys: the app's authentication, which the
//! impersonation layer sits in front of.

use std::{collections::HashMap, sync::Arc};

use arc_swap::ArcSwap;
use axum::{
    extract::{Request, State},
    middleware::Next,
    response::Response,
};
use http::header::AUTHORIZATION;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tower_impersonation::{
    ImpersonatedUser, StaticDirectory, User,
    directory::{DirectoryData, UserDirectory},
    services::Caller,
};

/// The demo organization's id, as in the JSON:API endpoint's examples.
pub const DEMO_ORGANIZATION: &str = "4ab7e40b-6b30-4a50-9fc8-873c3dca9d37";
/// The demo admin's plain API key.
pub const DEMO_ADMIN_KEY: &str = "demo-admin-key";

/// The built-in users when no `--users` file is given: one organization with an admin, a member
/// known by a relay alias, a read-only auditor; and a second organization whose member the first
/// one's tokens must not reach.
pub const DEMO_USERS: &str = r#"{"organizations": [
  {"id": "4ab7e40b-6b30-4a50-9fc8-873c3dca9d37", "name": "Demo", "members": [
    {"id": "0f5d3c1e-8a2b-4e7f-9c6d-1b2a3c4d5e6f", "email": "ada@example.com", "name": "Ada Admin",
     "admin": true, "api_key": "demo-admin-key"},
    {"id": "7cdb765a-3251-483f-9193-249a5e472fcb", "email": "bob@example.com", "name": "Bob Builder",
     "api_key": "demo-bob-key", "aliases": ["bob.relay@relay.example.com"]}
  ]},
  {"id": "b3a1f0e2-5c4d-4e6f-8a7b-9c0d1e2f3a4b", "name": "Elsewhere", "members": [
    {"id": "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9", "email": "eve@elsewhere.example", "name": "Eve",
     "admin": true, "api_key": "elsewhere-admin-key"}
  ]}
]}"#;

/// The members a `--users` file describes, with their plain keys. Both can be replaced while
/// serving ([`Accounts::replace_from_json`]): the directory for the layer and the services, which
/// hold clones of [`Accounts::directory`], and the keys for [`authenticate`].
pub struct Accounts {
    /// The members, for the layer and the services; replaced in place on a reload.
    pub directory: Arc<StaticDirectory>,
    keys: ArcSwap<Keys>,
}

/// The members signed in by plain key, by the key's digest.
type Keys = HashMap<[u8; 32], SignedIn>;

/// A member signed in with a plain key: who, and as which caller the services see them.
#[derive(Clone, Debug)]
pub struct SignedIn {
    pub user: Arc<User>,
    pub caller: Caller,
}

#[derive(Deserialize)]
struct KeysFile {
    organizations: Vec<KeysOrganization>,
}

#[derive(Deserialize)]
struct KeysOrganization {
    id: String,
    #[serde(default)]
    members: Vec<KeysMember>,
}

#[derive(Deserialize)]
struct KeysMember {
    id: String,
    #[serde(default)]
    admin: bool,
    api_key: Option<String>,
}

impl Accounts {
    /// Reads the users file format: the directory's, each member with an optional `api_key`.
    pub fn from_json(json: &str) -> Result<Self, String> {
        let (data, keys) = parse(json)?;
        Ok(Self {
            directory: Arc::new(StaticDirectory::new(data)),
            keys: ArcSwap::from_pointee(keys),
        })
    }

    /// Replaces the members and their keys with those of another users file, for every request
    /// from now on. A file that is refused leaves both as they were.
    pub fn replace_from_json(&self, json: &str) -> Result<(), String> {
        let (data, keys) = parse(json)?;
        // The keys first: from then on a removed member's key signs nobody in, and a demoted
        // admin's signs in no admin, even in the moment before the directory follows.
        self.keys.store(Arc::new(keys));
        self.directory.replace(data);
        Ok(())
    }

    /// The member whose key this is. Keys are looked up by digest, as tokens are.
    pub fn signed_in(&self, key: &str) -> Option<SignedIn> {
        self.keys.load().get(&digest(key)).cloned()
    }
}

/// The directory and the keys a users file describes; each key's member as the directory finds
/// them.
fn parse(json: &str) -> Result<(DirectoryData, Keys), String> {
    let data: DirectoryData = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let file: KeysFile = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let directory = StaticDirectory::new(data.clone());
    let mut keys = HashMap::new();
    for organization in file.organizations {
        for member in organization.members {
            let Some(key) = member.api_key else { continue };
            let user = directory
                .user_by_id_now(&member.id)
                .and_then(Result::ok)
                .flatten()
                .ok_or_else(|| format!("member {} is not in the directory", member.id))?
                .user;
            let caller = Caller::new(member.id.as_str(), organization.id.as_str(), member.admin);
            if keys
                .insert(digest(&key), SignedIn { user, caller })
                .is_some()
            {
                return Err(format!("two members share the api_key of {}", member.id));
            }
        }
    }
    Ok((data, keys))
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Signs in a request's plain key: puts [`SignedIn`] and its [`Caller`] in the extensions. An
/// impersonated request is never signed in as well, so the services see impersonation for what
/// it is. Routes decide what to do with a request that is neither.
pub async fn authenticate(
    State(accounts): State<Arc<Accounts>>,
    mut request: Request,
    next: Next,
) -> Response {
    if request.extensions().get::<ImpersonatedUser>().is_none() {
        let member = bearer(&request).and_then(|key| accounts.signed_in(key));
        if let Some(member) = member {
            request.extensions_mut().insert(member.caller.clone());
            request.extensions_mut().insert(member);
        }
    }
    next.run(request).await
}

fn bearer(request: &Request) -> Option<&str> {
    let value = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(key.trim())
}
