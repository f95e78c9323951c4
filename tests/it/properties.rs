//! Property tests: whatever a client sends, the layer and both services answer with a documented
//! status (never a 5xx, never a panic), a refused request changes nothing that is stored, a token
//! formatted and parsed again is the same token, and every method and role gives the documented
//! answer.

use crate::common::independent_jwt;
use crate::common::world;

use std::{
    convert::Infallible,
    sync::{Arc, OnceLock},
};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use proptest::{collection::vec, prelude::*};
use tokio::runtime::Runtime;
use tower::{Layer, ServiceExt, service_fn};
use tower_impersonation::{
    Access, ImpersonatedUser, ImpersonationLayer, MemoryStore, Role, Roles, Timestamp, TokenPrefix,
    TokenRecord, TokenSecret, TokenStore,
    jwt::JwtKeys,
    services::{Caller, OrganizationImpersonationService, TokenService},
};
use world::{ACME, BOB, BOB_ID, Tokens};

const CASES: u32 = 256;
const JWT_SECRET: &[u8] = b"a property-test secret of 32 b!!";

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    })
}

fn tokens() -> &'static Tokens {
    static TOKENS: OnceLock<Tokens> = OnceLock::new();
    TOKENS.get_or_init(|| runtime().block_on(world::tokens()))
}

/// What the app behind the layer saw: whether it ran, who was impersonated, whether the user
/// header reached it.
#[derive(Debug, Default)]
struct Seen {
    impersonated: bool,
    user_header: bool,
}

/// Sends `request` through the layer (opaque tokens and JWTs accepted) to an app that records
/// what it saw; returns the status and, when the app ran, what it saw.
fn through_layer(request: Request<Full<Bytes>>) -> (StatusCode, Option<Seen>) {
    let layer = ImpersonationLayer::builder(tokens().store.clone(), world::directory())
        .jwt(JwtKeys::hs256(JWT_SECRET).unwrap())
        .build();
    let app = layer.layer(service_fn(|request: Request<Full<Bytes>>| async move {
        let seen = Seen {
            impersonated: request.extensions().get::<ImpersonatedUser>().is_some(),
            user_header: request.headers().contains_key("x-guru-userid"),
        };
        let mut response = Response::new(Full::<Bytes>::default());
        response.extensions_mut().insert(Arc::new(seen));
        Ok::<_, Infallible>(response)
    }));
    let response = runtime().block_on(app.oneshot(request)).unwrap();
    let seen = response.extensions().get::<Arc<Seen>>().map(|seen| Seen {
        impersonated: seen.impersonated,
        user_header: seen.user_header,
    });
    (response.status(), seen)
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::HEAD),
        Just(Method::OPTIONS),
        Just(Method::POST),
        Just(Method::PUT),
        Just(Method::PATCH),
        Just(Method::DELETE),
    ]
}

/// Header bytes, mostly printable, now and then anything a header value may hold.
fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => "[ -~]{0,60}".prop_map(String::into_bytes),
        1 => vec(any::<u8>(), 0..400),
    ]
}

/// A bare `{user_id, exp}` JWT for Bob, valid for an hour.
fn bobs_jwt() -> String {
    let exp = Timestamp::now().as_millis() / 1000 + 3600;
    independent_jwt::bare_jwt(
        &serde_json::json!({"user_id": BOB_ID, "exp": exp}),
        JWT_SECRET,
    )
}

/// An `Authorization` value: a bearer of a real, revoked, expired, unknown or garbled token,
/// with or without a user suffix, or anything at all.
fn authorization() -> BoxedStrategy<Vec<u8>> {
    let t = tokens();
    let token = prop_oneof![
        4 => Just(t.full.clone()),
        2 => Just(t.read_only.clone()),
        1 => Just(t.revoked.clone()),
        1 => Just(t.expired.clone()),
        2 => Just(bobs_jwt()),
        1 => any::<u128>().prop_map(|n| format!("GINT:IMP:{}", uuid::Uuid::from_u128(n))),
        1 => "GINT:IMP:[0-9a-fA-F-]{30,40}",
        1 => "[A-Za-z0-9_-]{1,20}\\.[A-Za-z0-9_-]{1,40}\\.[A-Za-z0-9_-]{0,43}",
        1 => "[ -~]{0,60}",
    ];
    let suffix = prop_oneof![
        3 => Just(String::new()),
        3 => Just(format!(":{BOB}")),
        1 => Just(":nobody@acme.test".to_owned()),
        1 => ":[ -~]{0,30}".prop_map(String::from),
    ];
    let scheme = prop_oneof![
        6 => Just("Bearer "),
        1 => Just("bearer "),
        1 => Just("BEARER  "),
        1 => Just("Basic ")
    ];
    prop_oneof![
        4 => (scheme, token, suffix).prop_map(|(s, t, u)| format!("{s}{t}{u}").into_bytes()),
        1 => header_bytes(),
    ]
    .boxed()
}

fn user_header() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        3 => Just(BOB.as_bytes().to_vec()),
        1 => Just(b"b-1".to_vec()),
        1 => Just(b"carol@globex.test".to_vec()),
        2 => header_bytes(),
    ]
    .boxed()
}

/// No header, one, or two of the same name, one most often.
fn mostly_one(
    value: impl Strategy<Value = Vec<u8>> + Clone,
) -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop_oneof![
        2 => Just(Vec::new()),
        5 => value.clone().prop_map(|v| vec![v]),
        1 => vec(value, 2),
    ]
}

fn request_with(
    method: Method,
    authorizations: &[Vec<u8>],
    users: &[Vec<u8>],
) -> Option<Request<Full<Bytes>>> {
    let mut request = Request::builder()
        .method(method)
        .uri("/api/v1/cards/7")
        .body(Full::default())
        .unwrap();
    let headers = request.headers_mut();
    for value in authorizations {
        headers.append("authorization", HeaderValue::from_bytes(value).ok()?);
    }
    for value in users {
        headers.append("x-guru-userid", HeaderValue::from_bytes(value).ok()?);
    }
    Some(request)
}

/// A role string the grammar accepts, with what it means.
fn role_text() -> impl Strategy<Value = String> {
    let action = prop_oneof![Just("read"), Just("write"), Just("*")];
    let resource = prop_oneof![
        Just("*".to_owned()),
        Just("cards".to_owned()),
        "[A-Za-z0-9_.-]{1,40}",
    ];
    prop_oneof![
        1 => Just("default".to_owned()),
        9 => (action, resource).prop_map(|(a, r)| format!("{a}:{r}")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn any_credential_headers_get_a_documented_answer(
        method in method(),
        authorizations in mostly_one(authorization()),
        users in mostly_one(user_header()),
    ) {
        let Some(request) = request_with(method, &authorizations, &users) else {
            return Ok(()); // not a header value http accepts: no client can send it
        };
        let (status, seen) = through_layer(request);
        prop_assert!(
            [StatusCode::OK, StatusCode::BAD_REQUEST, StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN]
                .contains(&status),
            "status {status}"
        );
        prop_assert_eq!(status == StatusCode::OK, seen.is_some(), "200 exactly when the app ran");
        if let Some(seen) = seen {
            prop_assert!(!seen.user_header, "the user header never reaches the app");
            prop_assert!(seen.impersonated || users.is_empty(), "a user header never passes unverified");
        }
    }

    #[test]
    fn a_user_header_without_a_credential_is_refused(
        method in method(),
        user in header_bytes(),
        app_key in prop_oneof![Just(None), Just(Some(b"Bearer app-key-123".to_vec()))],
    ) {
        let Some(request) = request_with(method, app_key.as_slice(), &[user]) else {
            return Ok(());
        };
        let (status, seen) = through_layer(request);
        prop_assert_eq!(status, StatusCode::FORBIDDEN);
        prop_assert!(seen.is_none());
    }

    #[test]
    fn every_method_and_role_gives_the_documented_answer(
        method in method(),
        role in role_text(),
        resource in prop_oneof![Just("cards"), Just("users")],
    ) {
        let store = MemoryStore::new();
        let roles = Roles::parse(&[role.as_str()]).unwrap();
        let (secret, record) = TokenRecord::issue(&TokenPrefix::default(), ACME, "a-1", roles);
        runtime().block_on(store.create(record, usize::MAX)).unwrap();
        let app = ImpersonationLayer::new(store, world::directory())
            .layer(service_fn(|_: Request<Full<Bytes>>| async {
                Ok::<_, Infallible>(Response::new(Full::<Bytes>::default()))
            }));
        let request = Request::builder()
            .method(method.clone())
            .uri(format!("/api/v1/{resource}/7"))
            .header("authorization", format!("Bearer {}", secret.expose()))
            .header("x-guru-userid", BOB)
            .body(Full::<Bytes>::default())
            .unwrap();
        let response = runtime().block_on(app.oneshot(request)).unwrap();

        let (action, scope) = if role == "default" { ("*", "*") } else { role.split_once(':').unwrap() };
        let reads = [Method::GET, Method::HEAD, Method::OPTIONS].contains(&method);
        let allowed = (scope == "*" || scope == resource) && (action != "read" || reads);
        if allowed {
            prop_assert_eq!(response.status(), StatusCode::OK);
        } else {
            prop_assert_eq!(response.status(), StatusCode::FORBIDDEN);
            let challenge = response.headers()["www-authenticate"].to_str().unwrap();
            prop_assert!(challenge.contains("insufficient_scope"), "{}", challenge);
        }
    }

    #[test]
    fn a_role_formats_and_parses_back_to_itself(text in role_text()) {
        let role: Role = text.parse().unwrap();
        let again: Role = role.to_string().parse().unwrap();
        prop_assert_eq!(&again, &role);
        let expected = if text == "default" { "*:*" } else { text.as_str() };
        prop_assert_eq!(role.to_string(), expected);
    }

    #[test]
    fn any_role_string_parses_or_is_refused_without_panic(text in "\\PC{0,200}|[rw*]{0,5}:[ -~]{0,200}") {
        if let Ok(role) = text.parse::<Role>() {
            let again = role.to_string().parse::<Role>();
            prop_assert_eq!(again.as_ref(), Ok(&role));
            // What parses means what it says: a read role never allows writing.
            if text.starts_with("read:") {
                prop_assert!(!role.allows(Access::Write, Some("cards")));
            }
        }
    }

    #[test]
    fn a_token_formats_and_parses_back_to_the_same_secret(prefix in "[A-Z]{1,6}:[A-Z]{0,4}:?") {
        let prefix = TokenPrefix::new(&prefix).unwrap();
        let secret = TokenSecret::generate(&prefix);
        let text = secret.expose();
        let parsed = TokenSecret::parse(&prefix, &text).unwrap();
        prop_assert_eq!(parsed.digest(), secret.digest());
        let last_four = parsed.last_four();
        prop_assert_eq!(last_four.as_str(), &text[text.len() - 4..]);
        prop_assert!(TokenSecret::parse(&prefix, &text.to_uppercase()).is_none() || text == text.to_uppercase());
        prop_assert!(TokenSecret::parse(&prefix, &text[..text.len() - 1]).is_none());
    }

    #[test]
    fn any_token_service_request_gets_a_documented_answer_and_a_refusal_stores_nothing(
        method in prop_oneof![Just(Method::GET), Just(Method::POST), Just(Method::DELETE), Just(Method::PUT)],
        tail in prop_oneof![Just(String::new()), "/[ -~&&[^ #?%]]{0,40}"],
        body in prop_oneof![
            vec(any::<u8>(), 0..200),
            json_body().prop_map(String::into_bytes),
        ],
    ) {
        let store = MemoryStore::new();
        let service = TokenService::new(store.clone(), world::directory()).max_tokens_per_organization(3);
        create_a_token(&service);
        let before = store.len();
        let uri = format!("/api/v1/api-tokens/impersonation{tail}");
        let Ok(mut request) = Request::builder().method(method).uri(uri).body(Full::new(Bytes::from(body))) else {
            return Ok(());
        };
        request.extensions_mut().insert(Caller::new("a-1", ACME, true));
        let response = runtime().block_on(service.clone().oneshot(request)).unwrap();
        let status = response.status();
        prop_assert!(!status.is_server_error(), "status {status}");
        let body = runtime().block_on(response.into_body().collect()).unwrap().to_bytes();
        if status.is_client_error() {
            prop_assert_eq!(store.len(), before, "a refused request stores nothing");
            let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
            prop_assert!(error["error_description"].as_str().is_some_and(|d| !d.is_empty()), "{error}");
        }
    }

    #[test]
    fn any_organization_impersonation_body_gets_a_documented_answer(
        body in prop_oneof![
            vec(any::<u8>(), 0..200),
            jsonapi_body().prop_map(String::into_bytes),
        ],
        content_type in prop_oneof![
            Just("application/vnd.api+json".to_owned()),
            Just("application/json".to_owned()),
            "[ -~]{0,30}",
        ],
    ) {
        let service = OrganizationImpersonationService::new(
            world::directory(),
            JwtKeys::hs256(JWT_SECRET).unwrap(),
            MemoryStore::new(),
        );
        let Ok(mut request) = Request::builder()
            .method(Method::POST)
            .uri("/api/v2/organizations/acme/impersonation")
            .header("content-type", content_type)
            .body(Full::new(Bytes::from(body)))
        else {
            return Ok(());
        };
        request.extensions_mut().insert(Caller::new("a-1", ACME, true));
        let response = runtime().block_on(service.oneshot(request)).unwrap();
        let status = response.status();
        prop_assert!(
            [200, 400, 404, 409, 413, 415, 422].contains(&status.as_u16()),
            "status {status}"
        );
        let body = runtime().block_on(response.into_body().collect()).unwrap().to_bytes();
        let document: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let expected_key = if status == StatusCode::OK { "data" } else { "errors" };
        prop_assert!(document.get(expected_key).is_some(), "{document}");
    }
}

/// Makes one token, so that a refused request has something to lose.
fn create_a_token(service: &TokenService<MemoryStore>) {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/api-tokens/impersonation")
        .body(Full::<Bytes>::default())
        .unwrap();
    request
        .extensions_mut()
        .insert(Caller::new("a-1", ACME, true));
    let response = runtime()
        .block_on(service.clone().oneshot(request))
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// Token-creation bodies near the valid ones: known and unknown fields, roles good and bad.
fn json_body() -> impl Strategy<Value = String> {
    let roles = prop_oneof![
        Just("null".to_owned()),
        Just("\"read:*\"".to_owned()),
        vec(prop_oneof![role_text(), "[ -~&&[^\"\\\\]]{0,20}"], 0..4)
            .prop_map(|roles| serde_json::to_string(&roles).unwrap()),
    ];
    let name = prop_oneof![
        Just("null".to_owned()),
        "\\PC{0,80}".prop_map(|n| serde_json::to_string(&n).unwrap()),
        Just("7".to_owned())
    ];
    let expires = prop_oneof![
        Just("null".to_owned()),
        Just("\"2999-01-01T00:00:00Z\"".to_owned()),
        Just("\"2000-01-01T00:00:00Z\"".to_owned()),
        "\"[ -~&&[^\"\\\\]]{0,30}\"",
    ];
    let field = prop_oneof![
        Just("name"),
        Just("roles"),
        Just("expiresAt"),
        Just("rolez")
    ];
    (name, roles, expires, field, "[ -~&&[^\"\\\\]]{0,10}").prop_map(
        |(name, roles, expires, field, extra)| {
            format!(r#"{{"name": {name}, "roles": {roles}, "expiresAt": {expires}, "{field}{extra}": null}}"#)
        },
    )
}

/// JSON:API bodies near the valid one: type, user and reason varied.
fn jsonapi_body() -> impl Strategy<Value = String> {
    let kind = prop_oneof![Just("impersonation".to_owned()), "[a-z]{0,12}"];
    let user = prop_oneof![
        Just(Some(BOB.to_owned())),
        Just(Some("b-1".to_owned())),
        Just(Some("bob.relay@acme.test".to_owned())),
        Just(None),
        "\\PC{0,40}".prop_map(Some),
    ];
    let reason = prop_oneof![Just(None), "\\PC{0,80}".prop_map(Some)];
    (kind, user, reason).prop_map(|(kind, user, reason)| {
        serde_json::json!({"data": {"type": kind, "attributes": {"user": user, "reason": reason}}})
            .to_string()
    })
}
