//! Every `tracing` line of a full flow (create, use in both forms, JWT, revoke, every rejection),
//! and the `Debug` form of every type holding a secret, is captured and searched for secrets.

mod common;

use common::{
    captured_logs,
    world::{ACME, ADA_ID, BOB_ID, directory},
};

use std::convert::Infallible;

use bytes::Bytes;
use captured_logs::Captured;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tower::{Layer, ServiceExt, service_fn};
use tower_impersonation::{
    ImpersonatedUser, ImpersonationLayer, MemoryStore, TokenPrefix, TokenSecret,
    jwt::JwtKeys,
    services::{Caller, OrganizationImpersonationService, TokenService},
};

const JWT_SECRET: &str = "the jwt secret, 32 bytes or more!";

/// Headers sent, method, and the status expected back.
type Attempt<'a> = (&'a [(&'a str, &'a str)], Method, StatusCode);

fn request(
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Request<Full<Bytes>> {
    let mut builder = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let mut request = builder
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    request
        .extensions_mut()
        .insert(Caller::new(ADA_ID, ACME, true));
    request
}

async fn body_of<B: http_body::Body>(response: Response<B>) -> (StatusCode, Value)
where
    B::Error: std::fmt::Debug,
{
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn no_secret_reaches_logs_or_debug_output() {
    let (captured, _guard) = Captured::start();

    let store = MemoryStore::new();
    let keys = JwtKeys::hs256(JWT_SECRET.as_bytes()).unwrap();
    let tokens = TokenService::new(store.clone(), directory());
    let orgs = OrganizationImpersonationService::new(directory(), keys.clone(), store.clone());
    let layer = ImpersonationLayer::builder(store.clone(), directory())
        .jwt(keys.clone())
        .build();
    let app = layer.layer(service_fn(|request: Request<Full<Bytes>>| async move {
        let who = request
            .extensions()
            .get::<ImpersonatedUser>()
            .map(|u| u.user().id.clone());
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(
            json!(who).to_string(),
        ))))
    }));
    let call = |headers: &[(&str, &str)], method: Method| {
        app.clone()
            .oneshot(request(method, "/api/v1/cards", headers, ""))
    };

    // Create two tokens, one read-only.
    let base = "/api/v1/api-tokens/impersonation";
    let (_, created) = body_of(
        tokens
            .clone()
            .oneshot(request(Method::POST, base, &[], ""))
            .await
            .unwrap(),
    )
    .await;
    let token = created["token"].as_str().unwrap().to_owned();
    let (_, read_only) = body_of(
        tokens
            .clone()
            .oneshot(request(Method::POST, base, &[], r#"{"roles": ["read:*"]}"#))
            .await
            .unwrap(),
    )
    .await;
    let read_only = read_only["token"].as_str().unwrap().to_owned();

    // Use it in both forms, and mint and use a JWT.
    let bearer = format!("Bearer {token}");
    let with_suffix = format!("Bearer {token}:bob@acme.test");
    let accepted = [
        call(
            &[
                ("authorization", &bearer),
                ("x-guru-userid", "bob@acme.test"),
            ],
            Method::GET,
        )
        .await,
        call(&[("authorization", &with_suffix)], Method::GET).await,
    ];
    let ask = json!({"data": {"type": "impersonation", "attributes": {"reason": "support", "user": BOB_ID}}});
    let minted = orgs
        .clone()
        .oneshot(request(
            Method::POST,
            "/api/v2/organizations/acme/impersonation",
            &[("content-type", "application/vnd.api+json")],
            &ask.to_string(),
        ))
        .await
        .unwrap();
    let (_, document) = body_of(minted).await;
    let jwt = document["data"]["attributes"]["json_web_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let jwt_bearer = format!("Bearer {jwt}");
    let by_jwt = call(&[("authorization", &jwt_bearer)], Method::GET).await;
    for response in accepted.into_iter().chain([by_jwt]) {
        assert_eq!(response.unwrap().status(), StatusCode::OK);
    }

    // Every rejection.
    let forged = format!("Bearer {}x", &jwt[..jwt.len() - 1]);
    let unknown = format!(
        "Bearer {}",
        TokenSecret::generate(&TokenPrefix::default()).expose()
    );
    let read_only_bearer = format!("Bearer {read_only}:bob");
    let rejected: [Attempt<'_>; 7] = [
        (
            &[("authorization", &bearer)],
            Method::GET,
            StatusCode::BAD_REQUEST,
        ),
        (
            &[("authorization", &unknown), ("x-guru-userid", BOB_ID)],
            Method::GET,
            StatusCode::UNAUTHORIZED,
        ),
        (
            &[("authorization", "Bearer GINT:IMP:nope:bob")],
            Method::GET,
            StatusCode::UNAUTHORIZED,
        ),
        (
            &[("x-guru-userid", BOB_ID)],
            Method::GET,
            StatusCode::FORBIDDEN,
        ),
        (
            &[
                ("authorization", &bearer),
                ("x-guru-userid", "carol@globex.test"),
            ],
            Method::GET,
            StatusCode::FORBIDDEN,
        ),
        (
            &[("authorization", &read_only_bearer)],
            Method::POST,
            StatusCode::FORBIDDEN,
        ),
        (
            &[("authorization", &forged)],
            Method::GET,
            StatusCode::UNAUTHORIZED,
        ),
    ];
    for (headers, method, status) in rejected {
        assert_eq!(
            call(headers, method).await.unwrap().status(),
            status,
            "{headers:?}"
        );
    }

    // Revoke, and the token is refused.
    let (_, listed) = body_of(
        tokens
            .clone()
            .oneshot(request(Method::GET, base, &[], ""))
            .await
            .unwrap(),
    )
    .await;
    for entry in listed.as_array().unwrap() {
        let path = format!("{base}/{}", entry["id"].as_str().unwrap());
        let revoked = tokens
            .clone()
            .oneshot(request(Method::DELETE, &path, &[], ""))
            .await
            .unwrap();
        assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    }
    let after = call(&[("authorization", &with_suffix)], Method::GET)
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);

    // The Debug form of everything that holds a secret goes into the same haystack.
    let secret = TokenSecret::parse(&TokenPrefix::default(), &token).unwrap();
    let debug = format!("{secret:?} {secret} {keys:?} {layer:?} {tokens:?} {orgs:?} {store:?}");
    let logs = captured.text() + &debug;

    assert!(
        logs.contains("tower_impersonation::audit"),
        "audit events are logged"
    );
    assert!(logs.contains("accepted") && logs.contains("refused"));
    let jwt_signature = jwt.rsplit('.').next().unwrap();
    let secrets = [
        token.as_str(),
        &token[9..],
        read_only.as_str(),
        &read_only[9..],
        &unknown[16..],
        jwt.as_str(),
        jwt_signature,
        JWT_SECRET,
    ];
    for secret in secrets {
        assert!(!logs.contains(secret), "a secret leaked: {secret}");
    }
}
