//! The example gateway's app: the routes, the app's own authentication, and the impersonation
//! layer in front of both. `main.rs` serves it as the flags `cli.rs` reads say, and
//! `tests/gateway.rs` drives it.

pub mod accounts;
pub mod banner;
mod cards;
mod client_slots;
pub mod jwt_key;
mod principal;
mod rate_limit;
pub mod server;
pub mod store_url;

use std::{num::NonZeroU32, sync::Arc};

use axum::{Json, Router, middleware::from_fn_with_state, response::IntoResponse, routing::get};
use bytes::Bytes;
use http::{StatusCode, header::CONTENT_TYPE};
use serde_json::{Value, json};
use tower_impersonation::{
    Access, Audit, ImpersonationLayer, TokenStore,
    jwt::JwtKeys,
    policy::{GrpcPolicy, MixedPolicy, PathPolicy, ProtectedRoute},
    services::{JwksService, OrganizationImpersonationService, TokenService},
};

use accounts::{Accounts, authenticate};
use principal::Principal;
pub use server::{Limits, serve};

/// Where the token service is mounted: the workspace tokens' path.
pub const TOKENS_PATH: &str = "/api/v1/api-tokens/impersonation";

/// The gateway's own services, which no impersonation credential may call whatever its roles, so
/// impersonation never manages impersonation: the token service and, under
/// `/api/v2/organizations`, the JWT service (`{org}/impersonation[/{jti}]`). `--protect` adds
/// routes to these.
pub const PROTECTED_SERVICES: [&str; 2] = [
    "* /api/v1/api-tokens/impersonation/*",
    "* /api/v2/organizations/*",
];

/// Where the public keys of impersonation JWTs are served, as a JWK Set.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// The OpenAPI document of the services and the gateway, served as JSON at `/openapi.json`: the
/// repository's own file, so the document and what is served cannot drift apart.
pub const OPENAPI_YAML: &str = include_str!("../../../../openapi.yaml");

/// What the gateway is built from.
pub struct Gateway<St> {
    /// The members and their plain keys.
    pub accounts: Arc<Accounts>,
    /// Where impersonation tokens are kept.
    pub store: St,
    /// The key that signs and verifies impersonation JWTs.
    pub keys: JwtKeys,
    /// Most requests a second from one client address; `None`: no limit.
    pub rate_limit: Option<NonZeroU32>,
    /// Routes no impersonated request may take, besides [`PROTECTED_SERVICES`].
    pub protected: Vec<ProtectedRoute>,
    /// Where the impersonation layer reports what it accepted and refused, and the services
    /// the tokens and JWTs admins created and ended.
    pub audit: Arc<dyn Audit>,
}

/// The whole app: `/healthz`, `/openapi.json` and the JWK Set open to all; behind the
/// impersonation layer and the plain-key authentication, `/api/v1/whoami`, `/api/v1/cards`, the
/// token service, the organization impersonation service and gRPC health; in front of all, the
/// per-client rate limit. The layer refuses impersonation on the two services and on the
/// `protected` routes.
pub fn router<St: TokenStore + Clone>(gateway: Gateway<St>) -> Router {
    let Gateway {
        accounts,
        store,
        keys,
        rate_limit,
        protected,
        audit,
    } = gateway;
    let directory = Arc::clone(&accounts.directory);
    let impersonation = ImpersonationLayer::builder(store.clone(), Arc::clone(&directory))
        .jwt(keys.clone())
        .access_policy(access_policy())
        .audit(Arc::clone(&audit));
    let impersonation = protected_services()
        .chain(protected)
        .fold(impersonation, |builder, route| builder.protect(route))
        .build();
    let organizations =
        OrganizationImpersonationService::new(Arc::clone(&directory), keys.clone(), store.clone())
            .audit(Arc::clone(&audit));
    let tokens = TokenService::new(store, directory).audit(audit);
    let jwks = JwksService::new(&keys);
    let openapi = openapi_json();
    let app = Router::new()
        .route("/api/v1/whoami", get(whoami))
        .merge(cards::routes())
        .route_service(TOKENS_PATH, tokens.clone())
        .route_service(&format!("{TOKENS_PATH}/{{id}}"), tokens)
        .route_service(
            "/api/v2/organizations/{org}/impersonation",
            organizations.clone(),
        )
        .route_service(
            "/api/v2/organizations/{org}/impersonation/{jti}",
            organizations,
        )
        .merge(grpc_health())
        .fallback(not_found)
        .layer(from_fn_with_state(accounts, authenticate))
        .layer(impersonation)
        .route("/healthz", get(healthz))
        .route_service(JWKS_PATH, jwks)
        .route(
            "/openapi.json",
            get(move || async move { ([(CONTENT_TYPE, "application/json")], openapi) }),
        );
    let app = match rate_limit {
        Some(per_second) => rate_limit::limit(app, per_second),
        None => app,
    };
    // Made into routes once, here: a router served as a plain service without this makes its
    // handlers into routes on every request.
    app.with_state(())
}

/// [`PROTECTED_SERVICES`] as routes.
fn protected_services() -> impl Iterator<Item = ProtectedRoute> {
    PROTECTED_SERVICES.into_iter().map(|route| {
        route
            .parse()
            .expect("the gateway's own protected routes are well formed")
    })
}

/// Paths for plain HTTP, `/pkg.Service/Method` for gRPC; a health check only reads.
fn access_policy() -> MixedPolicy {
    let grpc = GrpcPolicy::new().method("/grpc.health.v1.Health/Check", Access::Read);
    MixedPolicy::new(grpc, PathPolicy::default())
}

/// `grpc.health.v1.Health`, reporting SERVING, as axum routes: [`serve`] speaks HTTP/2
/// without TLS, so gRPC clients share the port.
fn grpc_health() -> Router {
    let (_reporter, health) = tonic_health::server::health_reporter();
    tonic::service::Routes::new(health).into_axum_router()
}

/// [`OPENAPI_YAML`] as JSON, converted once when the app is built.
fn openapi_json() -> Bytes {
    let document: Value =
        serde_norway::from_str(OPENAPI_YAML).expect("openapi.yaml is a valid YAML document");
    serde_json::to_vec(&document)
        .expect("a YAML document of strings, numbers and maps is valid JSON")
        .into()
}

async fn healthz() -> &'static str {
    "ok"
}

async fn whoami(who: Principal) -> axum::response::Response {
    match who.whoami() {
        Ok(body) => ([(CONTENT_TYPE, "application/json")], body).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn not_found() -> impl IntoResponse {
    let body = json!({"error": "not_found", "error_description": "no such route"});
    (StatusCode::NOT_FOUND, Json(body))
}
