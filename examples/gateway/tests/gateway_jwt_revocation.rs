//! Ending impersonation JWTs through the example gateway, served on loopback: one by its `jti`,
//! all of a user's (the bare form among them), and the organization's live ones listed.

mod gateway_app;
#[path = "../../../tests/common/independent_jwt.rs"]
mod independent_jwt;

use std::{sync::Arc, time::Duration};

use http::{Method, StatusCode};
use serde_json::{Value, json};
use tower_impersonation::{MemoryStore, Timestamp, jwt::JwtKeys};

use gateway_app::Running;

use impersonation_gateway::app::{
    Gateway,
    accounts::{Accounts, DEMO_ADMIN_KEY, DEMO_ORGANIZATION, DEMO_USERS},
};
use independent_jwt::bare_jwt;

const SECRET: &[u8] = b"the revocation test's secret, 32B";
const BOB: &str = "bob@example.com";
const BOB_ID: &str = "7cdb765a-3251-483f-9193-249a5e472fcb";
const ADA_ID: &str = "0f5d3c1e-8a2b-4e7f-9c6d-1b2a3c4d5e6f";

async fn start() -> Running {
    gateway_app::serve(Gateway {
        accounts: Arc::new(Accounts::from_json(DEMO_USERS).unwrap()),
        store: MemoryStore::new(),
        keys: JwtKeys::hs256(SECRET).unwrap(),
        rate_limit: None,
        protected: Vec::new(),
        audit: Arc::new(tower_impersonation::TracingAudit),
    })
    .await
}

fn impersonation(rest: &str) -> String {
    format!("/api/v2/organizations/{DEMO_ORGANIZATION}/impersonation{rest}")
}

impl Running {
    async fn with_key(
        &self,
        method: Method,
        path: &str,
        authorization: &str,
    ) -> (StatusCode, Value) {
        self.send(method, path, &[("authorization", authorization)], "")
            .await
    }

    async fn as_admin(&self, method: Method, path: &str) -> (StatusCode, Value) {
        let authorization = format!("Bearer {DEMO_ADMIN_KEY}");
        self.with_key(method, path, &authorization).await
    }

    /// A JWT for Bob from the mint endpoint: the JWT and its `jti`.
    async fn mint(&self) -> (String, String) {
        let body = json!({"data": {"type": "impersonation",
            "attributes": {"reason": "ticket 42", "user": BOB}}});
        let authorization = format!("Bearer {DEMO_ADMIN_KEY}");
        let headers = [
            ("authorization", authorization.as_str()),
            ("content-type", "application/vnd.api+json"),
        ];
        let (status, document) = self
            .send(
                Method::POST,
                &impersonation(""),
                &headers,
                &body.to_string(),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let attributes = &document["data"]["attributes"];
        let text = |name: &str| attributes[name].as_str().unwrap().to_owned();
        (text("json_web_token"), text("jti"))
    }

    async fn whoami(&self, jwt: &str) -> StatusCode {
        self.with_key(Method::GET, "/api/v1/whoami", &format!("Bearer {jwt}"))
            .await
            .0
    }
}

#[tokio::test]
async fn revoking_one_jwt_ends_it_at_once_and_spares_the_others() {
    let gateway = start().await;
    let (revoked, jti) = gateway.mint().await;
    let (kept, _) = gateway.mint().await;
    assert_eq!(gateway.whoami(&revoked).await, StatusCode::OK);

    let (status, _) = gateway
        .as_admin(Method::DELETE, &impersonation(&format!("/{jti}")))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(gateway.whoami(&revoked).await, StatusCode::UNAUTHORIZED);
    assert_eq!(gateway.whoami(&kept).await, StatusCode::OK);

    let again = gateway
        .as_admin(Method::DELETE, &impersonation(&format!("/{jti}")))
        .await;
    assert_eq!(
        again.0,
        StatusCode::NOT_FOUND,
        "revoked already: {}",
        again.1
    );
    let unknown = format!("/{}", uuid::Uuid::new_v4());
    let (status, _) = gateway
        .as_admin(Method::DELETE, &impersonation(&unknown))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, error) = gateway
        .as_admin(Method::DELETE, &impersonation("/not-a-uuid"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
}

#[tokio::test]
async fn only_an_admin_of_the_organization_and_never_an_impersonated_caller_revokes() {
    let gateway = start().await;
    let (jwt, jti) = gateway.mint().await;
    let path = impersonation(&format!("/{jti}"));
    let (status, _) = gateway
        .with_key(Method::DELETE, &path, "Bearer demo-bob-key")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "Bob is no admin");
    let (status, refused) = gateway
        .with_key(Method::DELETE, &path, &format!("Bearer {jwt}"))
        .await;
    assert_eq!(
        (status, &refused["error"]),
        (StatusCode::FORBIDDEN, &json!("access_denied")),
        "not with an impersonation JWT: the service is a protected route"
    );
    let elsewhere = format!(
        "/api/v2/organizations/{}/impersonation/{jti}",
        uuid::Uuid::new_v4()
    );
    let (status, _) = gateway.as_admin(Method::DELETE, &elsewhere).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "another organization's");
    assert_eq!(gateway.whoami(&jwt).await, StatusCode::OK, "still live");
}

#[tokio::test]
async fn revoking_a_users_jwts_ends_the_bare_form_too_and_spares_later_ones() {
    let gateway = start().await;
    let (minted, _) = gateway.mint().await;
    // A JWT in the bare form (header `{"alg":"HS256"}`, claims `user_id` and `exp` only), minted
    // elsewhere with the same secret.
    let exp = Timestamp::now().as_secs() + 1800;
    let bare_form = bare_jwt(&json!({"user_id": BOB_ID, "exp": exp}), SECRET);
    assert_eq!(gateway.whoami(&bare_form).await, StatusCode::OK);

    let (status, _) = gateway
        .as_admin(Method::DELETE, &impersonation("?user=bob%40example.com"))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(gateway.whoami(&minted).await, StatusCode::UNAUTHORIZED);
    assert_eq!(gateway.whoami(&bare_form).await, StatusCode::UNAUTHORIZED);

    // Issue times are in whole seconds: a JWT of the same second counts as revoked.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (later, _) = gateway.mint().await;
    assert_eq!(
        gateway.whoami(&later).await,
        StatusCode::OK,
        "minted afterwards"
    );

    let (status, _) = gateway
        .as_admin(Method::DELETE, &impersonation("?user=nobody"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = gateway.as_admin(Method::DELETE, &impersonation("")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "no user named");
}

#[tokio::test]
async fn the_live_jwts_are_listed_without_the_jwts_themselves() {
    let gateway = start().await;
    let (first, first_jti) = gateway.mint().await;
    let (_, second_jti) = gateway.mint().await;
    let (status, _) = gateway
        .as_admin(Method::DELETE, &impersonation(&format!("/{second_jti}")))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let (status, listed) = gateway.as_admin(Method::GET, &impersonation("")).await;
    assert_eq!(status, StatusCode::OK);
    let data = listed["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "the revoked one is gone: {listed}");
    let attributes = &data[0]["attributes"];
    assert_eq!(attributes["jti"], first_jti.as_str());
    assert_eq!(attributes["user"], BOB_ID);
    assert_eq!(attributes["actor"], ADA_ID);
    assert_eq!(attributes["reason"], "ticket 42");
    assert!(attributes["created_at"].is_string() && attributes["expires_at"].is_string());
    assert!(!listed.to_string().contains(&first), "never the JWT");

    let (status, _) = gateway
        .with_key(Method::GET, &impersonation(""), "Bearer demo-bob-key")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
