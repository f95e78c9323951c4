//! The edge cases the fuzz targets under `fuzz/` are about, as plain tests through the real layer
//! and services: header bytes no parser should trust, JWTs no key signed, bodies built to break a
//! JSON parser. Each asserts the documented answer (README's table, `openapi.yaml`).

use crate::common::world;

use std::convert::Infallible;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tower::{Layer, ServiceExt, service_fn};
use tower_impersonation::{
    ImpersonatedUser, ImpersonationLayer, MemoryStore, Timestamp,
    jwt::{JwtError, JwtKeys},
    services::{Caller, DEFAULT_BODY_LIMIT, OrganizationImpersonationService, TokenService},
};
use world::{ACME, BOB, BOB_ID};

const JWT_SECRET: &[u8] = b"the fuzz regression tests' key!!";

/// What a request through the layer came to.
#[derive(Debug)]
struct Outcome {
    status: StatusCode,
    /// The id of the impersonated user, when the app ran with one.
    impersonated: Option<String>,
    /// Whether the app behind the layer ran.
    ran: bool,
    /// `WWW-Authenticate`, if any.
    challenge: Option<String>,
    /// The rejection's `error` code, if any.
    error: Option<String>,
}

/// Sends a GET of `/api/v1/cards/7` with these headers through the layer (tokens of the shared
/// fixture, JWTs under `JWT_SECRET`) to an app that answers 200.
async fn through_layer(headers: &[(&str, &[u8])], require: bool) -> Outcome {
    let tokens = world::tokens().await;
    let app = ImpersonationLayer::builder(tokens.store, world::directory())
        .jwt(JwtKeys::hs256(JWT_SECRET).unwrap())
        .require_impersonation(require)
        .build()
        .layer(service_fn(|request: Request<Full<Bytes>>| async move {
            let user = request.extensions().get::<ImpersonatedUser>();
            let body = json!({"ran": true, "user": user.map(|u| u.user().id.clone())});
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body.to_string()))))
        }));
    let mut request = Request::get("/api/v1/cards/7")
        .body(Full::<Bytes>::default())
        .unwrap();
    for (name, value) in headers {
        let value = HeaderValue::from_bytes(value).expect("a value http accepts");
        request
            .headers_mut()
            .append(HeaderName::try_from(*name).unwrap(), value);
    }
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let challenge = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&body).unwrap();
    Outcome {
        status,
        impersonated: body["user"].as_str().map(str::to_owned),
        ran: body["ran"] == true,
        challenge,
        error: body["error"].as_str().map(str::to_owned),
    }
}

/// The fixture's full-access token, as a bearer value with `suffix` appended.
async fn bearer_of_full_token(suffix: &[u8]) -> Vec<u8> {
    let token = world::tokens().await.full;
    [format!("Bearer {token}").as_bytes(), suffix].concat()
}

fn assert_refused(outcome: &Outcome, status: StatusCode, error: &str) {
    assert_eq!(outcome.status, status, "{outcome:?}");
    assert_eq!(outcome.error.as_deref(), Some(error), "{outcome:?}");
    assert!(!outcome.ran, "{outcome:?}");
}

/// A JWT of `header` and `claims` JSON, signed with `secret` by hmac alone.
fn jwt(header: &str, claims: &str, secret: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let header = URL_SAFE_NO_PAD.encode(header);
    let claims = URL_SAFE_NO_PAD.encode(claims);
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(format!("{header}.{claims}").as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{header}.{claims}.{signature}")
}

fn in_an_hour() -> u64 {
    Timestamp::now().as_secs() + 3600
}

// ---- the credential parser ----

#[tokio::test]
async fn a_non_utf8_user_header_is_400_invalid_request() {
    let authorization = bearer_of_full_token(b"").await;
    for user in [&b"\xff\xfe"[..], b"bob\xc3", b"\xed\xa0\x80", b"b\x80ob"] {
        let outcome = through_layer(
            &[("authorization", &authorization), ("x-guru-userid", user)],
            false,
        )
        .await;
        assert_refused(&outcome, StatusCode::BAD_REQUEST, "invalid_request");
    }
}

#[tokio::test]
async fn a_non_utf8_user_suffix_is_400_invalid_request() {
    let authorization = bearer_of_full_token(b":bob\xff@acme.test").await;
    let outcome = through_layer(&[("authorization", &authorization)], false).await;
    assert_refused(&outcome, StatusCode::BAD_REQUEST, "invalid_request");
}

#[tokio::test]
async fn a_control_character_in_the_user_is_400_invalid_request() {
    let authorization = bearer_of_full_token(b"").await;
    // Tab is the one ASCII control a header value may hold; U+0085 and U+009F are controls too.
    for user in [
        "bob\t@acme.test",
        "bob@acme.test\u{85}",
        "\u{9f}bob@acme.test",
    ] {
        let outcome = through_layer(
            &[
                ("authorization", &authorization),
                ("x-guru-userid", user.as_bytes()),
            ],
            false,
        )
        .await;
        assert_refused(&outcome, StatusCode::BAD_REQUEST, "invalid_request");
        let suffixed = bearer_of_full_token(format!(":{user}").as_bytes()).await;
        let outcome = through_layer(&[("authorization", &suffixed)], false).await;
        assert_refused(&outcome, StatusCode::BAD_REQUEST, "invalid_request");
    }
}

#[test]
fn nul_and_other_ascii_controls_never_reach_the_layer_as_header_values() {
    // http refuses them, so no client can send them through hyper, axum or tonic.
    for value in [&b"bob\0@acme.test"[..], b"bob\x7f", b"bob\r\n", b"\x01"] {
        assert!(HeaderValue::from_bytes(value).is_err(), "{value:?}");
    }
}

#[tokio::test]
async fn a_bearer_scheme_without_a_token_is_no_credential_and_passes_on() {
    for authorization in ["Bearer", "Bearer ", "Bearer     ", "bearer \t ", "BEARER\t"] {
        let outcome = through_layer(&[("authorization", authorization.as_bytes())], false).await;
        assert_eq!(outcome.status, StatusCode::OK, "{authorization:?}");
        assert!(outcome.ran && outcome.impersonated.is_none(), "{outcome:?}");
    }
}

#[tokio::test]
async fn a_bearer_scheme_without_a_token_and_a_user_header_is_403_spoofing() {
    for authorization in ["Bearer", "Bearer    "] {
        let outcome = through_layer(
            &[
                ("authorization", authorization.as_bytes()),
                ("x-guru-userid", BOB.as_bytes()),
            ],
            false,
        )
        .await;
        assert_refused(&outcome, StatusCode::FORBIDDEN, "access_denied");
    }
}

#[tokio::test]
async fn a_bearer_scheme_without_a_token_is_401_when_impersonation_is_required() {
    let outcome = through_layer(&[("authorization", b"Bearer    ")], true).await;
    assert_eq!(outcome.status, StatusCode::UNAUTHORIZED, "{outcome:?}");
    assert_eq!(outcome.challenge.as_deref(), Some("Bearer"));
    assert!(!outcome.ran);
}

// ---- the JWT path ----

#[tokio::test]
async fn a_garbage_three_segment_jwt_is_401_invalid_token() {
    for token in [
        "abc.def.ghi",
        "a.b.c",
        "eyJ.eyJ.eyJ",
        "____.----.0000",
        "e30.e30.e30",
    ] {
        let authorization = format!("Bearer {token}");
        let outcome = through_layer(&[("authorization", authorization.as_bytes())], false).await;
        assert_refused(&outcome, StatusCode::UNAUTHORIZED, "invalid_token");
        assert_eq!(
            outcome.challenge.as_deref(),
            Some(r#"Bearer error="invalid_token""#)
        );
    }
}

#[tokio::test]
async fn a_jwt_with_alg_none_is_401_invalid_token_and_verify_refuses_it() {
    let claims = json!({"user_id": BOB_ID, "exp": in_an_hour()}).to_string();
    let encode = |part: &str| URL_SAFE_NO_PAD.encode(part);
    let keys = JwtKeys::hs256(JWT_SECRET).unwrap();
    for header in [r#"{"alg":"none"}"#, r#"{"alg":"None","typ":"JWT"}"#] {
        let unsigned = format!("{}.{}.", encode(header), encode(&claims));
        // `JwtError::WrongAlgorithm` says "`none` included", but jsonwebtoken knows no `none` and
        // fails to read the header, which `verify` reports as `Malformed`; either way, refused.
        let refused = |token: &str| {
            matches!(
                keys.verify(token),
                Err(JwtError::WrongAlgorithm | JwtError::Malformed)
            )
        };
        assert!(refused(&unsigned));
        // With any signature segment, it is taken for a JWT and refused.
        let with_signature = format!("{unsigned}c2ln");
        assert!(refused(&with_signature));
        let authorization = format!("Bearer {with_signature}");
        let outcome = through_layer(&[("authorization", authorization.as_bytes())], false).await;
        assert_refused(&outcome, StatusCode::UNAUTHORIZED, "invalid_token");
    }
}

#[tokio::test]
async fn an_alg_none_jwt_with_an_empty_signature_is_not_jwt_shaped_and_never_impersonates() {
    // Three segments, the last empty: not a JWT to the layer, so the app's own business.
    let claims = json!({"user_id": BOB_ID, "exp": in_an_hour()}).to_string();
    let token = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let authorization = format!("Bearer {token}");
    let outcome = through_layer(&[("authorization", authorization.as_bytes())], false).await;
    assert_eq!(outcome.status, StatusCode::OK);
    assert!(outcome.ran && outcome.impersonated.is_none(), "{outcome:?}");
    let required = through_layer(&[("authorization", authorization.as_bytes())], true).await;
    assert_eq!(required.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_jwt_signed_with_another_algorithm_or_key_is_401_invalid_token() {
    let claims = json!({"user_id": BOB_ID, "exp": in_an_hour()}).to_string();
    let forged = [
        jwt(r#"{"alg":"HS384"}"#, &claims, JWT_SECRET),
        jwt(
            r#"{"alg":"HS256"}"#,
            &claims,
            b"somebody else's key, 32 bytes!!!",
        ),
        jwt(r#"{"alg":"HS256","kid":"k1"}"#, &claims, JWT_SECRET),
    ];
    for token in forged {
        let authorization = format!("Bearer {token}");
        let outcome = through_layer(&[("authorization", authorization.as_bytes())], false).await;
        assert_refused(&outcome, StatusCode::UNAUTHORIZED, "invalid_token");
    }
    // The same claims, properly signed, are accepted: the refusals above are the forgeries'.
    let authorization = format!("Bearer {}", jwt(r#"{"alg":"HS256"}"#, &claims, JWT_SECRET));
    let outcome = through_layer(&[("authorization", authorization.as_bytes())], false).await;
    assert_eq!(outcome.impersonated.as_deref(), Some(BOB_ID), "{outcome:?}");
}

/// The status and impersonated user of a GET through a layer verifying JWTs with `keys`.
async fn through_layer_with(keys: JwtKeys, token: &str) -> (StatusCode, Option<String>) {
    let tokens = world::tokens().await;
    let app = ImpersonationLayer::builder(tokens.store, world::directory())
        .jwt(keys)
        .build()
        .layer(service_fn(|request: Request<Full<Bytes>>| async move {
            let user = request.extensions().get::<ImpersonatedUser>();
            let user = user.map(|u| u.user().id.clone()).unwrap_or_default();
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(user))))
        }));
    let request = Request::get("/api/v1/cards/7")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Full::<Bytes>::default())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let user = (status == StatusCode::OK).then(|| String::from_utf8_lossy(&body).into_owned());
    (status, user)
}

#[tokio::test]
async fn an_hs256_jwt_keyed_with_an_eddsa_public_key_is_401_alg_confusion() {
    const ED25519: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEICvvcdvgqZ7p5LHiOdBDIKtC2mASUUbQL0p4TQUcxAAN
-----END PRIVATE KEY-----";
    // EdDSA signs; the HS256 secret still verifies (a rotation in progress).
    let keys = || {
        JwtKeys::ed25519_pem(ED25519)
            .unwrap()
            .with_previous_keys(&JwtKeys::hs256(JWT_SECRET).unwrap())
            .unwrap()
    };
    let jwks = keys().jwks();
    let jwk = &jwks["keys"][0];
    let kid = jwk["kid"].as_str().unwrap();
    let x = jwk["x"].as_str().unwrap();
    let claims = json!({"user_id": BOB_ID, "exp": in_an_hour()}).to_string();
    let public = URL_SAFE_NO_PAD.decode(x).unwrap();
    let header = json!({"alg": "HS256", "kid": kid}).to_string();
    for secret in [public.as_slice(), x.as_bytes(), jwks.to_string().as_bytes()] {
        let forged = jwt(&header, &claims, secret);
        assert_eq!(keys().verify(&forged).err(), Some(JwtError::BadSignature));
        let (status, user) = through_layer_with(keys(), &forged).await;
        assert_eq!((status, user), (StatusCode::UNAUTHORIZED, None));
    }
    // What the keys really sign, and the HS256 secret's tokens, are accepted.
    let signed = keys()
        .sign(&serde_json::from_str(&claims).unwrap())
        .unwrap();
    let bare_form = jwt(r#"{"alg":"HS256"}"#, &claims, JWT_SECRET);
    for token in [signed, bare_form] {
        let outcome = through_layer_with(keys(), &token).await;
        assert_eq!(outcome, (StatusCode::OK, Some(BOB_ID.to_owned())));
    }
}

#[tokio::test]
async fn a_jwt_with_a_huge_exp_neither_overflows_nor_panics() {
    // u64::MAX and 9999-12-31T23:59:59Z are numbers of seconds: the leeway and the maximum
    // lifetime saturate, and a JWT that would live that long is refused.
    for exp in [u64::MAX, 253_402_300_799] {
        let claims = format!(r#"{{"user_id":"{BOB_ID}","exp":{exp}}}"#);
        let token = jwt(r#"{"alg":"HS256"}"#, &claims, JWT_SECRET);
        let keys = JwtKeys::hs256(JWT_SECRET).unwrap();
        assert_eq!(keys.verify(&token).err(), Some(JwtError::ExpiresTooLate));
        let authorization = format!("Bearer {token}");
        let outcome = through_layer(&[("authorization", authorization.as_bytes())], false).await;
        assert_refused(&outcome, StatusCode::UNAUTHORIZED, "invalid_token");
    }
    // The same form expiring within the hour acts as Bob.
    let hour = format!(r#"{{"user_id":"{BOB_ID}","exp":{}}}"#, in_an_hour());
    let authorization = format!("Bearer {}", jwt(r#"{"alg":"HS256"}"#, &hour, JWT_SECRET));
    let outcome = through_layer(&[("authorization", authorization.as_bytes())], false).await;
    assert_eq!(outcome.impersonated.as_deref(), Some(BOB_ID), "{outcome:?}");
    // Past u64, fractional, negative or a string: not a number of seconds, 401.
    for exp in [
        "18446744073709551616",
        "1e400",
        "1.5e10",
        "-1",
        "\"9999999999\"",
    ] {
        let claims = format!(r#"{{"user_id":"{BOB_ID}","exp":{exp}}}"#);
        let token = jwt(r#"{"alg":"HS256"}"#, &claims, JWT_SECRET);
        assert!(JwtKeys::hs256(JWT_SECRET).unwrap().verify(&token).is_err());
        let authorization = format!("Bearer {token}");
        let outcome = through_layer(&[("authorization", authorization.as_bytes())], false).await;
        assert_refused(&outcome, StatusCode::UNAUTHORIZED, "invalid_token");
    }
}

// ---- the services' bodies ----

/// The status and JSON answer of `service` to `body` posted to `path` by acme's admin.
async fn post_as_admin<S, B>(
    service: S,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (StatusCode, Value)
where
    S: tower::Service<Request<Full<Bytes>>, Response = Response<B>, Error = Infallible>,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let mut request = Request::post(path)
        .header(header::CONTENT_TYPE, content_type)
        .body(Full::new(Bytes::copy_from_slice(body)))
        .unwrap();
    request
        .extensions_mut()
        .insert(Caller::new("a-1", ACME, true));
    let response = service.oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap())
}

/// The answer of `POST /api/v1/api-tokens/impersonation` with `body` from acme's admin, and the
/// store, empty before.
async fn create_token(body: &[u8], limit: usize) -> (StatusCode, Value, MemoryStore) {
    let store = MemoryStore::new();
    let service = TokenService::new(store.clone(), world::directory()).body_limit(limit);
    let path = "/api/v1/api-tokens/impersonation";
    let (status, answer) = post_as_admin(service, path, "application/json", body).await;
    (status, answer, store)
}

/// The answer of `POST /api/v2/organizations/acme/impersonation` with `body` from acme's admin.
async fn ask_for_jwt(body: &[u8], limit: usize) -> (StatusCode, Value) {
    let service = OrganizationImpersonationService::new(
        world::directory(),
        JwtKeys::hs256(JWT_SECRET).unwrap(),
        MemoryStore::new(),
    )
    .body_limit(limit);
    let path = "/api/v2/organizations/acme/impersonation";
    post_as_admin(service, path, "application/vnd.api+json", body).await
}

async fn assert_create_refused(body: &[u8], status: StatusCode) {
    assert_create_refused_within(body, DEFAULT_BODY_LIMIT, status).await;
}

async fn assert_create_refused_within(body: &[u8], limit: usize, status: StatusCode) {
    let (got, answer, store) = create_token(body, limit).await;
    let stored = store.len();
    let shown = String::from_utf8_lossy(&body[..body.len().min(60)]).into_owned();
    assert_eq!(got, status, "{shown}: {answer}");
    assert!(answer["error_description"].as_str().is_some(), "{answer}");
    assert_eq!(stored, 0, "a refused create stored a token: {shown}");
}

async fn assert_jwt_refused(body: &[u8], status: StatusCode) {
    assert_jwt_refused_within(body, DEFAULT_BODY_LIMIT, status).await;
}

async fn assert_jwt_refused_within(body: &[u8], limit: usize, status: StatusCode) {
    let (got, document) = ask_for_jwt(body, limit).await;
    let shown = String::from_utf8_lossy(&body[..body.len().min(60)]).into_owned();
    assert_eq!(got, status, "{shown}: {document}");
    assert_eq!(
        document["errors"][0]["status"],
        status.as_str(),
        "{document}"
    );
}

/// `depth` nested arrays, or objects whose one member is the next.
fn deeply_nested(depth: usize, array: bool) -> Vec<u8> {
    let (open, close) = if array { ("[", "]") } else { (r#"{"a":"#, "}") };
    format!("{}1{}", open.repeat(depth), close.repeat(depth)).into_bytes()
}

#[tokio::test]
async fn a_10000_deep_json_body_is_400_for_both_services_without_overflowing_the_stack() {
    // `[[[[...` 10,000 deep and unclosed, as a fuzzer finds it: 10 KB, within the default limit.
    let unclosed = "[".repeat(10_000).into_bytes();
    assert_create_refused(&unclosed, StatusCode::BAD_REQUEST).await;
    assert_jwt_refused(&unclosed, StatusCode::BAD_REQUEST).await;
    // Closed, arrays and objects exceed 16 KiB: 413 before any parsing.
    for array in [true, false] {
        let closed = deeply_nested(10_000, array);
        assert_create_refused(&closed, StatusCode::PAYLOAD_TOO_LARGE).await;
        assert_jwt_refused(&closed, StatusCode::PAYLOAD_TOO_LARGE).await;
        // With a limit that lets them through, the parser refuses them: 400, no stack overflow.
        assert_create_refused_within(&closed, 1 << 20, StatusCode::BAD_REQUEST).await;
        assert_jwt_refused_within(&closed, 1 << 20, StatusCode::BAD_REQUEST).await;
    }
    // Deep nesting inside an accepted field's value is refused as well.
    let mut roles = br#"{"roles": "#.to_vec();
    roles.extend(deeply_nested(5_000, true));
    roles.push(b'}');
    assert_create_refused(&roles, StatusCode::BAD_REQUEST).await;
    let mut user = br#"{"data": {"type": "impersonation", "attributes": {"user": "#.to_vec();
    user.extend(deeply_nested(5_000, true));
    user.extend(b"}}}");
    assert_jwt_refused(&user, StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn a_body_of_invalid_utf8_is_400_for_both_services() {
    for body in [
        &b"\xff\xfe\xfd"[..],
        b"{\"name\": \"\xff\"}",
        b"{\"name\": \"\xed\xa0\x80\"}",
        b"\xef\xbb\xbf{}",
    ] {
        assert_create_refused(body, StatusCode::BAD_REQUEST).await;
        assert_jwt_refused(body, StatusCode::BAD_REQUEST).await;
    }
    let user = b"{\"data\": {\"type\": \"impersonation\", \"attributes\": {\"user\": \"b\xff\"}}}";
    assert_jwt_refused(user, StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn an_escaped_lone_surrogate_is_400_for_both_services() {
    assert_create_refused(br#"{"name": "\ud800"}"#, StatusCode::BAD_REQUEST).await;
    let body = br#"{"data": {"type": "impersonation", "attributes": {"user": "\udfff"}}}"#;
    assert_jwt_refused(body, StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn huge_numbers_are_refused_as_400_or_422_never_5xx() {
    // Out of f64's range: not valid JSON to serde_json.
    for body in [
        &br#"{"name": 1e400}"#[..],
        br#"{"expiresAt": -1e999}"#,
        br#"{"roles": [1e400]}"#,
    ] {
        assert_create_refused(body, StatusCode::BAD_REQUEST).await;
    }
    // In range but of the wrong type: the field's own 400.
    for body in [
        &br#"{"name": 123456789012345678901234567890}"#[..],
        br#"{"expiresAt": 18446744073709551616}"#,
        br#"{"roles": [18446744073709551615]}"#,
    ] {
        assert_create_refused(body, StatusCode::BAD_REQUEST).await;
    }
    let ask = |user: &str| {
        format!(r#"{{"data": {{"type": "impersonation", "attributes": {{"user": {user}}}}}}}"#)
    };
    assert_jwt_refused(ask("1e400").as_bytes(), StatusCode::BAD_REQUEST).await;
    assert_jwt_refused(
        ask("123456789012345678901234567890").as_bytes(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
}

/// serde_json keeps the last of a repeated member, so a body naming one twice could be granted as
/// something other than what a proxy or audit log reading the first saw: both services refuse it.
#[tokio::test]
async fn a_member_named_twice_is_400_for_both_services_and_stores_nothing() {
    for body in [
        &br#"{"roles": ["read:*"], "roles": ["*:*"]}"#[..],
        br#"{"name": "a", "name": "b"}"#,
        br#"{"name": "a", "expiresAt": null, "expiresAt": "2000-01-01T00:00:00Z"}"#,
    ] {
        assert_create_refused(body, StatusCode::BAD_REQUEST).await;
    }
    for body in [
        r#"{"data": {"type": "impersonation", "attributes": {"user": "bob@acme.test", "user": "ada@acme.test"}}}"#,
        r#"{"data": {"type": "users", "type": "impersonation", "attributes": {"user": "b-1"}}}"#,
        r#"{"data": {"type": "impersonation", "attributes": {"user": "b-1"}}, "data": {}}"#,
    ] {
        assert_jwt_refused(body.as_bytes(), StatusCode::BAD_REQUEST).await;
    }
}

// ---- inputs the fuzz targets found, kept as they were found ----

/// `fuzz/regressions/jwt/signed_claims_with_invalid_utf8_in_an_ignored_field`: a token the key did
/// sign, whose claims hold an unknown member with invalid UTF-8 in a key, which serde_json skips
/// without checking. It is no forgery, and is judged by its signature like any other token: its
/// unknown role `" ead:*"` makes the layer refuse it, a variant with a valid role acts only as
/// the user it names, and the same bytes signed with another key are refused.
#[tokio::test]
async fn a_signed_jwt_whose_ignored_claims_hold_invalid_utf8_acts_only_as_its_user() {
    let found: &[u8] = b"{\"user_id\": \"b-1\", \"exp\": 4102444800, \"iat\": 1, \"jti\": \"x\", \
        \"org\": \"acme\", \"a1t\" :{\"su\xb5\": \"a-1\"}, \"roles\": [\" ead:*\"]}";
    let sign = |claims: &[u8], secret: &[u8]| {
        use hmac::{Hmac, Mac};
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims);
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
        mac.update(format!("{header}.{payload}").as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{header}.{payload}.{signature}")
    };
    let other_key: &[u8] = b"somebody else's key, 32 bytes!!!";
    let keys = JwtKeys::hs256(JWT_SECRET).unwrap();
    for claims in [found.to_vec(), usable(found)] {
        let token = sign(&claims, JWT_SECRET);
        if let Ok(verified) = keys.verify(&token) {
            assert_eq!(verified.user_id, BOB_ID);
        }
        let authorization = format!("Bearer {token}");
        let outcome = through_layer(&[("authorization", authorization.as_bytes())], false).await;
        if claims == found {
            assert_refused(&outcome, StatusCode::UNAUTHORIZED, "invalid_token");
        } else if outcome.ran {
            assert_eq!(outcome.impersonated.as_deref(), Some(BOB_ID), "{outcome:?}");
        } else {
            assert_eq!(outcome.status, StatusCode::UNAUTHORIZED, "{outcome:?}");
        }
        let forged = format!("Bearer {}", sign(&claims, other_key));
        let outcome = through_layer(&[("authorization", forged.as_bytes())], false).await;
        assert_refused(&outcome, StatusCode::UNAUTHORIZED, "invalid_token");
    }
}

/// The found claims made usable: the unknown role `" ead:*"` made the valid `"read:*"`, and the
/// `exp` in 2100, which lies beyond the maximum lifetime, made one within the hour.
fn usable(claims: &[u8]) -> Vec<u8> {
    let replace = |claims: &[u8], from: &[u8], to: &[u8]| {
        let at = claims.windows(from.len()).position(|w| w == from).unwrap();
        [&claims[..at], to, &claims[at + from.len()..]].concat()
    };
    let valid_role = replace(claims, b" ead:*", b"read:*");
    replace(
        &valid_role,
        b"4102444800",
        in_an_hour().to_string().as_bytes(),
    )
}
