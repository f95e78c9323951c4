//! The token and JWT services mounted in a real axum app on loopback, the way a newcomer mounts
//! them first: `Router::nest_service` at their paths (which strips the prefix), beside the layer
//! and the app's own authentication that says who the `Caller` is.

use crate::common::{http_cases, servers, world};

use axum::{
    Router,
    extract::Request,
    middleware::{self, Next},
    response::Response,
    routing::get,
};
use http::{Method, StatusCode};
use tower_impersonation::{
    ImpersonatedUser, ImpersonationLayer, MemoryStore,
    jwt::JwtKeys,
    services::{Caller, OrganizationImpersonationService, TokenService},
};

use http_cases::HttpClient;
use world::{ACME, BOB, BOB_ID, directory};

const ADMIN_KEY: &[u8] = b"Bearer ada-key";
const SECRET: &[u8] = b"a test secret that is 32 bytes!!";
const JSON_API: &[u8] = b"application/vnd.api+json";

/// The app's own authentication: Ada's key makes her the caller, an admin of acme.
async fn authenticate(mut request: Request, next: Next) -> Response {
    if request.headers().get("authorization").map(|v| v.as_bytes()) == Some(ADMIN_KEY) {
        request
            .extensions_mut()
            .insert(Caller::new("a-1", ACME, true));
    }
    next.run(request).await
}

/// The app: `whoami` behind the layer, the token service nested at `tokens_at`, the JWT service
/// at its default base.
async fn serve(tokens_at: &str) -> HttpClient {
    let store = MemoryStore::new();
    let keys = JwtKeys::hs256(SECRET).unwrap();
    let layer = ImpersonationLayer::builder(store.clone(), directory())
        .jwt(keys.clone())
        .build();
    let tokens = TokenService::new(store.clone(), directory());
    let jwts = OrganizationImpersonationService::new(directory(), keys, store);
    let app = Router::new()
        .route(
            "/api/v1/whoami",
            get(|user: ImpersonatedUser| async move { user.user().id.clone() }),
        )
        .nest_service(tokens_at, tokens)
        .nest_service("/api/v2/organizations", jwts)
        .layer(middleware::from_fn(authenticate))
        .layer(layer);
    servers::serve(app).await
}

/// `whoami` as Bob with this bearer credential: the status.
async fn whoami_as_bob(client: &HttpClient, bearer: &str) -> StatusCode {
    let authorization = format!("Bearer {bearer}");
    let headers = [
        ("authorization", authorization.as_bytes()),
        ("x-guru-userid", BOB.as_bytes()),
    ];
    client.get("/api/v1/whoami", &headers).await.status
}

/// Creates, lists, uses and revokes a token through the service nested at `at`.
async fn token_round_trip(client: &HttpClient, at: &str) {
    let admin = [("authorization", ADMIN_KEY)];
    let created = client
        .send_body(Method::POST, at, &admin, r#"{"roles": ["read:*"]}"#)
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let token = created.body["token"].as_str().unwrap().to_owned();
    let id = created.body["id"].as_str().unwrap().to_owned();

    let listed = client.get(at, &admin).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
    assert_eq!(listed.body[0]["id"], id.as_str());
    assert_eq!(whoami_as_bob(client, &token).await, StatusCode::OK);

    let revoked = client
        .send(Method::DELETE, &format!("{at}/{id}"), &admin)
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.body);
    assert_eq!(
        whoami_as_bob(client, &token).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn token_service_nested_at_its_default_path_serves_every_operation() {
    let at = "/api/v1/api-tokens/impersonation";
    let client = serve(at).await;
    token_round_trip(&client, at).await;
    let trailing_slash = client
        .get(&format!("{at}/"), &[("authorization", ADMIN_KEY)])
        .await;
    assert_eq!(trailing_slash.status, StatusCode::OK);
}

#[tokio::test]
async fn token_service_nested_elsewhere_needs_no_base_path() {
    let client = serve("/admin/tokens").await;
    token_round_trip(&client, "/admin/tokens").await;
    let admin = [("authorization", ADMIN_KEY)];
    let not_an_id = client.get("/admin/tokens/elsewhere", &admin).await;
    assert_eq!(not_an_id.status, StatusCode::NOT_FOUND);
    let deeper = client.get("/admin/tokens/a/b", &admin).await;
    assert_eq!(deeper.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn nested_token_service_still_needs_an_admin_caller() {
    let at = "/api/v1/api-tokens/impersonation";
    let client = serve(at).await;
    let anonymous = client.send(Method::POST, at, &[]).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn jwt_service_nested_at_the_organizations_mints_lists_and_ends_jwts() {
    let client = serve("/api/v1/api-tokens/impersonation").await;
    let at = format!("/api/v2/organizations/{ACME}/impersonation");
    let admin = [("authorization", ADMIN_KEY), ("content-type", JSON_API)];
    let ask = format!(
        r#"{{"data": {{"type": "impersonation", "attributes": {{"reason": "ticket 7", "user": "{BOB}"}}}}}}"#
    );
    let minted = client.send_body(Method::POST, &at, &admin, &ask).await;
    assert_eq!(minted.status, StatusCode::OK, "{}", minted.body);
    assert_eq!(minted.body["data"]["id"], BOB_ID);
    let jwt = minted.body["data"]["attributes"]["json_web_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let jti = minted.body["data"]["attributes"]["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    let authorization = format!("Bearer {jwt}");
    let bearer = [("authorization", authorization.as_bytes())];
    assert_eq!(
        client.get("/api/v1/whoami", &bearer).await.status,
        StatusCode::OK
    );

    let listed = client.get(&at, &admin).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(listed.body["data"][0]["id"], jti.as_str());

    let ended = client
        .send(Method::DELETE, &format!("{at}/{jti}"), &admin)
        .await;
    assert_eq!(ended.status, StatusCode::NO_CONTENT, "{}", ended.body);
    assert_eq!(
        client.get("/api/v1/whoami", &bearer).await.status,
        StatusCode::UNAUTHORIZED
    );
}
