//! Impersonation never outlives or exceeds its grant: a credential dies with its admin's role, a
//! narrowed token acts as its members only, and protected routes are never made while
//! impersonating. Real axum servers on loopback, with tokens and JWTs, on the memory store and on
//! a cache over SQLite, with a directory that answers at once and one that has to be waited on.

use crate::common::{http_cases, world};

use std::sync::{Arc, Mutex};

use http::{Method, StatusCode};
use serde_json::Value;
use tower_impersonation::{
    Actor, AuditEvent, AuditOutcome, ImpersonationBuilder, ImpersonationLayer, MemoryStore, Roles,
    StaticDirectory, Timestamp, TokenPrefix, TokenRecord, TokenStore, UserDirectory,
    directory::{DirectoryError, Member, UserWithMemberships},
    jwt::{ActorClaim, ImpersonationClaims, JwtKeys},
    policy::{AccessPolicy, ImpersonationPolicy, ProtectedRoute},
    store::{CachingStore, SqliteStore},
};

use http_cases::{HttpClient, Reply, serve_behind};
use world::{ACME, ADA_ID, ANN_ID, Ada, BOB, BOB_ID, directory, directory_json};

const SECRET: &[u8] = b"a test secret of at least thirty-two bytes";

/// A directory that answers nothing at once, so every check takes the layer's waiting path and
/// `UserDirectory`'s default `is_admin`.
#[derive(Clone)]
struct Waiting(StaticDirectory);

impl UserDirectory for Waiting {
    async fn resolve(
        &self,
        organization: &str,
        who: &str,
    ) -> Result<Option<Member>, DirectoryError> {
        tokio::task::yield_now().await;
        self.0.resolve(organization, who).await
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<UserWithMemberships>, DirectoryError> {
        tokio::task::yield_now().await;
        self.0.user_by_id(id).await
    }
}

/// What the audit heard: each refusal's reason, each acceptance as `accepted`.
#[derive(Clone, Default)]
struct Heard(Arc<Mutex<Vec<String>>>);

impl Heard {
    fn audit(&self) -> impl Fn(&AuditEvent<'_>) + Send + Sync + 'static {
        let heard = Arc::clone(&self.0);
        move |event: &AuditEvent<'_>| {
            let what = match event.outcome {
                AuditOutcome::Refused(rejection) => rejection.reason().to_owned(),
                AuditOutcome::Accepted(user) => match user.actor() {
                    Actor::Token(record) if record.is_narrowed() => "accepted narrowed".to_owned(),
                    _ => "accepted".to_owned(),
                },
                other => other.as_str().to_owned(),
            };
            heard.lock().unwrap().push(what);
        }
    }

    fn last(&self) -> String {
        self.0.lock().unwrap().last().cloned().unwrap_or_default()
    }
}

fn keys() -> JwtKeys {
    JwtKeys::hs256(SECRET).unwrap()
}

/// A JWT for Bob in Acme, naming `actor` as the admin behind it.
fn jwt_for_bob(actor: Option<&str>, organization: Option<&str>) -> String {
    let now = Timestamp::now().as_secs();
    let claims = ImpersonationClaims {
        user_id: BOB_ID.to_owned(),
        exp: now + 600,
        iat: Some(now),
        jti: Some(uuid::Uuid::new_v4().to_string()),
        org: organization.map(str::to_owned),
        act: actor.map(|sub| ActorClaim {
            sub: sub.to_owned(),
        }),
        roles: None,
    };
    keys().sign(&claims).unwrap()
}

/// A full-access token of Acme created by `admin`, as clients send it.
async fn token_by(store: &impl TokenStore, admin: &str) -> String {
    let (secret, record) =
        TokenRecord::issue(&TokenPrefix::default(), ACME, admin, Roles::full_access());
    store.create(record, usize::MAX).await.unwrap();
    secret.expose()
}

async fn as_bob(client: &HttpClient, method: Method, path: &str, credential: &str) -> Reply {
    let authorization = format!("Bearer {credential}");
    let mut headers: Vec<(&str, &[u8])> = vec![("authorization", authorization.as_bytes())];
    if credential.starts_with("GINT:IMP:") {
        headers.push(("x-guru-userid", BOB.as_bytes()));
    }
    client.send(method, path, &headers).await
}

fn assert_invalid_token(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{:?}", reply.body);
    assert_eq!(reply.body["error"], "invalid_token");
    assert_eq!(
        reply.body["error_description"],
        "the impersonation token is malformed, unknown, expired or revoked"
    );
}

/// The layer over `store` and `directory`, with JWTs and the audit heard.
fn layer<St, D>(store: St, directory: D, heard: &Heard) -> ImpersonationBuilder<St, D>
where
    St: TokenStore,
    D: UserDirectory,
{
    ImpersonationLayer::builder(store, directory)
        .jwt(keys())
        .audit(heard.audit())
}

/// Ada's credentials work. Once she is demoted, and again once she is removed, they are refused
/// as invalid with the reason `actor_not_admin` while Ann's keep working. Once she is an admin
/// again, they work again.
async fn credentials_die_with_their_admin_s_role<St, D, A, P>(
    store: St,
    directory: StaticDirectory,
    build: impl FnOnce(St, StaticDirectory, &Heard) -> ImpersonationBuilder<St, D, A, P>,
) where
    St: TokenStore + Clone,
    D: UserDirectory,
    A: AccessPolicy,
    P: ImpersonationPolicy,
{
    let heard = Heard::default();
    let adas_token = token_by(&store, ADA_ID).await;
    let anns_token = token_by(&store, ANN_ID).await;
    let adas_jwt = jwt_for_bob(Some(ADA_ID), Some(ACME));
    let anns_jwt = jwt_for_bob(Some(ANN_ID), Some(ACME));
    let client = serve_behind(build(store, directory.clone(), &heard).build()).await;
    let adas = [&adas_token, &adas_jwt];
    let anns = [&anns_token, &anns_jwt];

    for credential in adas.iter().chain(&anns) {
        let reply = as_bob(&client, Method::GET, "/api/v1/cards", credential).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        assert_eq!(reply.body["impersonated"]["email"], BOB);
    }
    for demotion in [directory_json(Ada::Member), directory_json(Ada::Gone)] {
        directory.replace_from_json(&demotion).unwrap();
        for credential in adas {
            assert_invalid_token(&as_bob(&client, Method::GET, "/api/v1/cards", credential).await);
            assert_eq!(heard.last(), "actor_not_admin");
        }
        for credential in anns {
            let reply = as_bob(&client, Method::GET, "/api/v1/cards", credential).await;
            assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        }
    }
    directory
        .replace_from_json(&directory_json(Ada::Admin))
        .unwrap();
    for credential in adas {
        let reply = as_bob(&client, Method::GET, "/api/v1/cards", credential).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        assert_eq!(heard.last(), "accepted");
    }
}

#[tokio::test]
async fn credentials_die_with_their_admin_s_role_on_the_memory_store() {
    let directory = directory();
    credentials_die_with_their_admin_s_role(MemoryStore::new(), directory, layer).await;
}

#[tokio::test]
async fn credentials_die_with_their_admin_s_role_on_a_cache_over_sqlite() {
    let folder = tempfile::tempdir().unwrap();
    let file = SqliteStore::open(folder.path().join("tokens.db"))
        .await
        .unwrap();
    file.migrate().await.unwrap();
    let store = CachingStore::new(MemoryStore::new(), file);
    let directory = directory();
    credentials_die_with_their_admin_s_role(store, directory, layer).await;
}

#[tokio::test]
async fn credentials_die_with_their_admin_s_role_with_a_directory_that_has_to_be_waited_on() {
    let directory = directory();
    credentials_die_with_their_admin_s_role(MemoryStore::new(), directory, |store, d, heard| {
        layer(store, Waiting(d), heard)
    })
    .await;
}

#[tokio::test]
async fn a_jwt_naming_no_admin_is_not_checked_and_one_naming_no_organization_is_refused() {
    let heard = Heard::default();
    let directory = StaticDirectory::from_json(&directory_json(Ada::Member)).unwrap();
    let client = serve_behind(layer(MemoryStore::new(), directory, &heard).build()).await;
    let bare = jwt_for_bob(None, None);
    let reply = as_bob(&client, Method::GET, "/api/v1/cards", &bare).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let no_organization = jwt_for_bob(Some(ANN_ID), None);
    assert_invalid_token(&as_bob(&client, Method::GET, "/api/v1/cards", &no_organization).await);
    assert_eq!(heard.last(), "actor_not_admin");
}

#[tokio::test]
async fn organization_owned_credentials_outlive_their_admin_s_role() {
    let heard = Heard::default();
    let store = MemoryStore::new();
    let token = token_by(&store, ADA_ID).await;
    let jwt = jwt_for_bob(Some(ADA_ID), Some(ACME));
    let directory = StaticDirectory::from_json(&directory_json(Ada::Gone)).unwrap();
    let layer = layer(store, directory, &heard).organization_owned_credentials();
    let client = serve_behind(layer.build()).await;
    for credential in [&token, &jwt] {
        let reply = as_bob(&client, Method::GET, "/api/v1/cards", credential).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    }
}

#[tokio::test]
async fn protected_routes_are_never_made_while_impersonating() {
    let heard = Heard::default();
    let store = MemoryStore::new();
    let token = token_by(&store, ADA_ID).await;
    let jwt = jwt_for_bob(Some(ADA_ID), Some(ACME));
    let directory = directory();
    let layer = layer(store, directory, &heard)
        .protect("POST /api/v1/account/password".parse().unwrap())
        .protect("* /api/v1/account/mfa/*".parse().unwrap())
        .protect(ProtectedRoute::grpc("acme.Accounts/ChangePassword").unwrap());
    let client = serve_behind(layer.build()).await;
    let protected = [
        (Method::POST, "/api/v1/account/password"),
        (Method::POST, "/api/v1/account//password/"),
        (Method::DELETE, "/api/v1/account/mfa/totp"),
        (Method::GET, "/api/v1/account/mfa"),
        (Method::POST, "/acme.Accounts/ChangePassword"),
    ];
    for credential in [&token, &jwt] {
        for (method, path) in &protected {
            let reply = as_bob(&client, method.clone(), path, credential).await;
            assert_eq!(reply.status, StatusCode::FORBIDDEN, "{method} {path}");
            assert_eq!(reply.body["error"], "access_denied");
            assert_eq!(
                reply.body["error_description"],
                "this request cannot be made while impersonating"
            );
            assert_eq!(heard.last(), "protected_route");
        }
        for (method, path) in [
            (Method::GET, "/api/v1/account/password"),
            (Method::POST, "/api/v1/account/passwords"),
        ] {
            let reply = as_bob(&client, method.clone(), path, credential).await;
            assert_eq!(reply.status, StatusCode::OK, "{method} {path}");
        }
    }
    for (method, path) in &protected {
        let reply = client
            .send(
                method.clone(),
                path,
                &[("authorization", b"Bearer the-apps-own-key")],
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{method} {path} without impersonation"
        );
        assert_eq!(reply.body["impersonated"], Value::Null);
    }
}

#[tokio::test]
async fn an_invalid_credential_on_a_protected_route_is_still_invalid() {
    let heard = Heard::default();
    let directory = directory();
    let layer = layer(MemoryStore::new(), directory, &heard)
        .protect("POST /api/v1/account/password".parse().unwrap());
    let client = serve_behind(layer.build()).await;
    let unknown = "GINT:IMP:00000000-0000-4000-8000-000000000000";
    let reply = as_bob(&client, Method::POST, "/api/v1/account/password", unknown).await;
    assert_invalid_token(&reply);
}

/// A token narrowed to Bob acts as Bob alone: Ann gets the answer an unknown member gets, with the
/// reason `user_not_allowed`; the acceptance says the token was narrowed.
async fn a_narrowed_token_acts_as_its_members_only(store: impl TokenStore + Clone) {
    let heard = Heard::default();
    let (secret, mut record) =
        TokenRecord::issue(&TokenPrefix::default(), ACME, ADA_ID, Roles::full_access());
    record.users = Some([BOB_ID.to_owned()].into());
    store.create(record, usize::MAX).await.unwrap();
    let token = secret.expose();
    let directory = directory();
    let client = serve_behind(layer(store, directory, &heard).build()).await;

    let reply = as_bob(&client, Method::GET, "/api/v1/cards", &token).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(heard.last(), "accepted narrowed");

    let authorization = format!("Bearer {token}");
    let as_member = |who: &'static str| {
        let authorization = authorization.clone();
        let client = &client;
        async move {
            let headers: [(&str, &[u8]); 2] = [
                ("authorization", authorization.as_bytes()),
                ("x-guru-userid", who.as_bytes()),
            ];
            client.send(Method::GET, "/api/v1/cards", &headers).await
        }
    };
    let ann = as_member("ann@acme.test").await;
    assert_eq!(heard.last(), "user_not_allowed");
    let unknown = as_member("nobody@acme.test").await;
    assert_eq!(heard.last(), "access_denied");
    assert_eq!(ann.status, StatusCode::FORBIDDEN);
    assert_eq!(
        ann.body, unknown.body,
        "the same answer as an unknown member"
    );
}

#[tokio::test]
async fn a_narrowed_token_acts_as_its_members_only_on_the_memory_store() {
    a_narrowed_token_acts_as_its_members_only(MemoryStore::new()).await;
}

#[tokio::test]
async fn a_narrowed_token_acts_as_its_members_only_on_a_cache_over_sqlite() {
    let folder = tempfile::tempdir().unwrap();
    let file = SqliteStore::open(folder.path().join("tokens.db"))
        .await
        .unwrap();
    file.migrate().await.unwrap();
    a_narrowed_token_acts_as_its_members_only(CachingStore::new(MemoryStore::new(), file)).await;
}
