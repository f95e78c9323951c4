//! What the axum and hyper layer tests share: an inner service that tells what it saw, a real
//! HTTP client, and the table of requests with the answers README's table documents, which both
//! servers must give alike.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde_json::{Value, json};
use tower_impersonation::{ImpersonatedUser, ImpersonationLayer};

use super::{
    servers::serve,
    world::{ACME, BOB, BOB_ID, CAROL_OF_GLOBEX, Tokens},
};

/// What the inner service saw, as JSON: the impersonated user (or `null`) and whether the user
/// and `Authorization` headers reached it.
pub fn what_the_app_saw<B>(request: &Request<B>) -> Value {
    let impersonated = request.extensions().get::<ImpersonatedUser>().map(|u| {
        json!({
            "email": u.user().email,
            "organization": u.organization(),
            "token": u.actor().token_id(),
            "actor": u.actor().user_id(),
            "source": format!("{:?}", u.source()),
            "roles": u.roles().to_strings(),
        })
    });
    json!({
        "impersonated": impersonated,
        "user_header": request.headers().contains_key("x-guru-userid"),
        "authorization": request.headers().contains_key("authorization"),
    })
}

/// Answers any request with what the app saw.
pub async fn echo(request: axum::extract::Request) -> axum::Json<Value> {
    axum::Json(what_the_app_saw(&request))
}

/// An app whose every path answers what it saw.
pub fn echo_app() -> axum::Router {
    axum::Router::new().fallback(axum::routing::any(echo))
}

/// [`echo_app`] behind `layer`, served on loopback.
pub async fn serve_behind(layer: ImpersonationLayer) -> HttpClient {
    serve(echo_app().layer(layer)).await
}

/// An answer as a client sees it.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn challenge(&self) -> Option<&str> {
        let value = self.headers.get("www-authenticate")?;
        value.to_str().ok()
    }
}

/// A real HTTP/1.1 client for a server on loopback.
pub struct HttpClient {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl HttpClient {
    pub fn new(base: String) -> Self {
        let client = Client::builder(TokioExecutor::new()).build_http();
        Self { base, client }
    }

    /// Sends a request with these headers (raw bytes, repeated names allowed) and no body.
    pub async fn send(&self, method: Method, path: &str, headers: &[(&str, &[u8])]) -> Reply {
        self.send_body(method, path, headers, "").await
    }

    /// Sends a request with these headers and this body.
    pub async fn send_body(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &[u8])],
        body: &str,
    ) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .body(Full::new(Bytes::copy_from_slice(body.as_bytes())))
            .unwrap();
        for (name, value) in headers {
            request.headers_mut().append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        let response = tokio::time::timeout(Duration::from_secs(10), self.client.request(request))
            .await
            .expect("the server answers")
            .unwrap();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    pub async fn get(&self, path: &str, headers: &[(&str, &[u8])]) -> Reply {
        self.send(Method::GET, path, headers).await
    }
}

/// One request of the table and the answer it must get.
pub struct Case {
    pub says: &'static str,
    pub method: Method,
    pub path: &'static str,
    pub headers: Vec<(&'static str, Vec<u8>)>,
    pub expect: Expect,
}

/// The documented answer.
pub enum Expect {
    /// Accepted, acting as this user, the credential having come this way.
    ActsAs {
        email: &'static str,
        source: &'static str,
    },
    /// Passed on untouched, not impersonated.
    PassesThrough,
    /// Refused with this status, `error` code and (when given) `WWW-Authenticate` challenge.
    Refused {
        status: StatusCode,
        error: &'static str,
        challenge: Option<&'static str>,
    },
}

const INVALID_TOKEN: &str = r#"Bearer error="invalid_token""#;
const INSUFFICIENT_SCOPE: &str = r#"Bearer error="insufficient_scope""#;

fn refused(status: StatusCode, error: &'static str, challenge: Option<&'static str>) -> Expect {
    Expect::Refused {
        status,
        error,
        challenge,
    }
}

fn bearer(token: &str) -> (&'static str, Vec<u8>) {
    ("authorization", format!("Bearer {token}").into_bytes())
}

fn user(value: &[u8]) -> (&'static str, Vec<u8>) {
    ("x-guru-userid", value.to_vec())
}

fn case(says: &'static str, headers: Vec<(&'static str, Vec<u8>)>, expect: Expect) -> Case {
    Case {
        says,
        method: Method::GET,
        path: "/api/v1/whoami",
        headers,
        expect,
    }
}

/// Every answer README's table documents for an HTTP request, with the tokens of `tokens`.
pub fn documented_cases(tokens: &Tokens) -> Vec<Case> {
    let full = tokens.full.as_str();
    let read_only = tokens.read_only.as_str();
    let with_suffix = |token: &str, who: &str| bearer(&format!("{token}:{who}"));
    let denied = refused(StatusCode::FORBIDDEN, "access_denied", None);
    let bad_request = || refused(StatusCode::BAD_REQUEST, "invalid_request", None);
    let bad_token = || {
        refused(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            Some(INVALID_TOKEN),
        )
    };
    let no_scope = || {
        refused(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            Some(INSUFFICIENT_SCOPE),
        )
    };
    let acts_as_bob = |source| Expect::ActsAs { email: BOB, source };
    let mut cases = vec![
        case(
            "user in the header",
            vec![bearer(full), user(BOB.as_bytes())],
            acts_as_bob("UserHeader"),
        ),
        case(
            "user after the token",
            vec![with_suffix(full, BOB)],
            acts_as_bob("TokenSuffix"),
        ),
        case(
            "both forms naming the same user",
            vec![with_suffix(full, BOB), user(BOB.as_bytes())],
            acts_as_bob("HeaderAndSuffix"),
        ),
        case(
            "the user by id",
            vec![bearer(full), user(BOB_ID.as_bytes())],
            acts_as_bob("UserHeader"),
        ),
        case(
            "the user by relay alias",
            vec![with_suffix(full, "bob.relay@acme.test")],
            acts_as_bob("TokenSuffix"),
        ),
        case(
            "the scheme word in lower case",
            vec![("authorization", format!("bearer {full}:{BOB}").into_bytes())],
            acts_as_bob("TokenSuffix"),
        ),
        case(
            "both forms naming different users",
            vec![with_suffix(full, BOB), user(b"ada@acme.test")],
            bad_request(),
        ),
        case(
            "two Authorization headers",
            vec![with_suffix(full, BOB), with_suffix(full, BOB)],
            bad_request(),
        ),
        case(
            "two user headers",
            vec![bearer(full), user(BOB.as_bytes()), user(BOB.as_bytes())],
            bad_request(),
        ),
        case("a token naming no user", vec![bearer(full)], bad_request()),
        case(
            "an empty user",
            vec![bearer(full), user(b"")],
            bad_request(),
        ),
        case(
            "a user of 321 bytes",
            vec![bearer(full), user(&[b'a'; 321])],
            bad_request(),
        ),
        case(
            "a user that is not UTF-8",
            vec![bearer(full), user(b"bob\xff")],
            bad_request(),
        ),
        case(
            "a user with a control character",
            vec![bearer(full), user(b"b\tob")],
            bad_request(),
        ),
        case(
            "a well-formed token the store does not know",
            vec![with_suffix(
                "GINT:IMP:6f1c8a50-0b1e-4c3e-9d5a-2f0e7b9c1d4a",
                BOB,
            )],
            bad_token(),
        ),
        case(
            "a malformed token",
            vec![with_suffix("GINT:IMP:not-a-uuid", BOB)],
            bad_token(),
        ),
        case(
            "a revoked token",
            vec![with_suffix(&tokens.revoked, BOB)],
            bad_token(),
        ),
        case(
            "an expired token",
            vec![with_suffix(&tokens.expired, BOB)],
            bad_token(),
        ),
        case(
            "an unknown user",
            vec![with_suffix(full, "nobody@acme.test")],
            denied,
        ),
        case(
            "a user of another organization",
            vec![with_suffix(full, CAROL_OF_GLOBEX)],
            refused(StatusCode::FORBIDDEN, "access_denied", None),
        ),
        case(
            "a user header without any credential (spoofing)",
            vec![user(BOB.as_bytes())],
            refused(StatusCode::FORBIDDEN, "access_denied", None),
        ),
        case(
            "a user header beside the app's own bearer key (spoofing)",
            vec![bearer("app-key-of-bob"), user(BOB.as_bytes())],
            refused(StatusCode::FORBIDDEN, "access_denied", None),
        ),
        case("no credential at all", vec![], Expect::PassesThrough),
        case(
            "the app's own bearer key",
            vec![bearer("app-key-of-bob")],
            Expect::PassesThrough,
        ),
        case(
            "a read-only token reading",
            vec![with_suffix(read_only, BOB)],
            acts_as_bob("TokenSuffix"),
        ),
        Case {
            path: "/api/v1/cards/7",
            ..case(
                "a read:cards token reading cards",
                vec![with_suffix(&tokens.cards_only, BOB)],
                acts_as_bob("TokenSuffix"),
            )
        },
        Case {
            path: "/api/v1/notes/7",
            ..case(
                "a read:cards token reading notes",
                vec![with_suffix(&tokens.cards_only, BOB)],
                no_scope(),
            )
        },
    ];
    for (method, expect) in [
        (Method::HEAD, acts_as_bob("TokenSuffix")),
        (Method::OPTIONS, acts_as_bob("TokenSuffix")),
        (Method::POST, no_scope()),
        (Method::PUT, no_scope()),
        (Method::DELETE, no_scope()),
    ] {
        cases.push(Case {
            method,
            ..case(
                "a read-only token",
                vec![with_suffix(read_only, BOB)],
                expect,
            )
        });
    }
    cases.push(Case {
        method: Method::DELETE,
        ..case(
            "a full token deleting",
            vec![with_suffix(full, BOB)],
            acts_as_bob("TokenSuffix"),
        )
    });
    cases
}

/// Sends every case to the server and checks each answer; the failures, all of them, say which.
pub async fn check_documented_answers(client: &HttpClient, tokens: &Tokens) {
    let mut failures = Vec::new();
    for case in documented_cases(tokens) {
        let headers: Vec<(&str, &[u8])> = case.headers.iter().map(|(n, v)| (*n, &v[..])).collect();
        let reply = client.send(case.method.clone(), case.path, &headers).await;
        if let Err(wrong) = check(&case, &reply) {
            failures.push(format!(
                "{} {} ({}): {wrong}",
                case.method, case.path, case.says
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn check(case: &Case, reply: &Reply) -> Result<(), String> {
    let got = format!(
        "got {} {} {:?}",
        reply.status,
        reply.body,
        reply.challenge()
    );
    let head = case.method == Method::HEAD;
    let ok = match &case.expect {
        // A HEAD answer has no body to tell what the app saw; its status says it got through.
        Expect::ActsAs { .. } if head => reply.status == StatusCode::OK,
        Expect::ActsAs { email, source } => {
            let seen = &reply.body["impersonated"];
            reply.status == StatusCode::OK
                && seen["email"] == *email
                && seen["source"] == *source
                && seen["organization"] == ACME
                && seen["actor"] == "a-1"
                && reply.body["user_header"] == false
        }
        Expect::PassesThrough => {
            reply.status == StatusCode::OK && reply.body["impersonated"].is_null()
        }
        Expect::Refused {
            status,
            error,
            challenge,
        } => {
            reply.status == *status
                && (head || reply.body["error"] == *error)
                && (head
                    || reply.body["error_description"]
                        .as_str()
                        .is_some_and(|d| !d.is_empty()))
                && reply.challenge() == *challenge
        }
    };
    ok.then_some(()).ok_or(got)
}
