//! What the fuzz targets share: one runtime, the directory, the JWT secrets, and an HS256 verifier
//! and signer built on hmac and base64 alone, so the oracles share no code with jsonwebtoken.
#![allow(dead_code, reason = "each target uses part of it")]

use std::{
    convert::Infallible,
    fmt::Debug,
    future::{Future, Ready, ready},
    sync::LazyLock,
    task::{Context, Poll},
    time::{SystemTime, UNIX_EPOCH},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use sha2::Sha256;
use tokio::runtime::Runtime;
use tower_impersonation::{StaticDirectory, services::Caller};
use tower_service::Service;

/// The organization every target works in, its members, and a member of another organization.
pub const ACME: &str = "acme";
pub const ADA_ID: &str = "a-1";
pub const BOB: &str = "bob@acme.test";
pub const BOB_ID: &str = "b-1";
pub const CAROL_ID: &str = "c-1";

/// The key the layer and the organization service use.
pub const JWT_SECRET: &[u8] = b"the fuzz targets' secret, 32b+!!";
/// A key nobody configured: tokens signed with it must never be accepted.
pub const OTHER_SECRET: &[u8] = b"somebody else's secret, 32 bytes";

/// The header of a bare JWT, `{"alg":"HS256"}`, as a JWT segment.
pub const BARE_HEADER: &str = "eyJhbGciOiJIUzI1NiJ9";

/// Drives a future to completion on one current-thread runtime built once per process.
pub fn block_on<F: Future>(future: F) -> F::Output {
    static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime")
    });
    RUNTIME.block_on(future)
}

/// The app behind the layer: answers 200 with what `see` makes of the request in the response's
/// extensions, for the oracle to read.
pub struct App<T>(pub fn(&Request<Full<Bytes>>) -> T);

impl<T> Clone for App<T> {
    fn clone(&self) -> Self {
        Self(self.0)
    }
}

impl<T: Clone + Send + Sync + 'static> Service<Request<Full<Bytes>>> for App<T> {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Full<Bytes>>) -> Self::Future {
        let mut response = Response::new(Full::default());
        response.extensions_mut().insert((self.0)(&request));
        ready(Ok(response))
    }
}

/// Every status the layer answers these targets with (the README's table; the memory store and
/// static directory never fail, so never 503).
pub const LAYER_STATUSES: [StatusCode; 4] = [
    StatusCode::OK,
    StatusCode::BAD_REQUEST,
    StatusCode::UNAUTHORIZED,
    StatusCode::FORBIDDEN,
];

/// `service`'s answer to `request`, polled ready first as tower requires.
pub fn serve<S, B>(service: &mut S, request: Request<Full<Bytes>>) -> Response<B>
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>>,
    S::Error: Debug,
{
    block_on(async {
        std::future::poll_fn(|cx| service.poll_ready(cx))
            .await
            .unwrap();
        service.call(request).await.unwrap()
    })
}

/// The status and body of `service`'s answer to `body` posted to `path` by acme's admin Ada.
pub fn post_as_admin<S, B>(
    service: &mut S,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (StatusCode, Bytes)
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>, Error = Infallible>,
    B: Body,
    B::Error: Debug,
{
    let mut request = Request::post(path)
        .header("content-type", content_type)
        .body(Full::new(Bytes::copy_from_slice(body)))
        .unwrap();
    request
        .extensions_mut()
        .insert(Caller::new(ADA_ID, ACME, true));
    block_on(async {
        let response = service.call(request).await.unwrap();
        let status = response.status();
        (
            status,
            response.into_body().collect().await.unwrap().to_bytes(),
        )
    })
}

/// Two organizations: acme (admin Ada, member Bob with an alias) and globex (admin Carol).
pub fn directory() -> StaticDirectory {
    StaticDirectory::from_json(
        r#"{"organizations": [
            {"id": "acme", "members": [
                {"id": "a-1", "email": "ada@acme.test", "name": "Ada", "admin": true},
                {"id": "b-1", "email": "bob@acme.test", "name": "Bob", "aliases": ["bob.relay@acme.test"]}
            ]},
            {"id": "globex", "members": [
                {"id": "c-1", "email": "carol@globex.test", "name": "Carol", "admin": true}
            ]}
        ]}"#,
    )
    .expect("the directory parses")
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `header.payload.signature`, the signature HMAC-SHA256 of `header.payload` with `secret`.
pub fn sign_segments(header: &str, payload: &str, secret: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(header.as_bytes());
    mac.update(b".");
    mac.update(payload.as_bytes());
    let signature = b64(&mac.finalize().into_bytes());
    format!("{header}.{payload}.{signature}")
}

/// The header and claims of `token` if it is three base64url segments whose signature is the
/// HMAC-SHA256 of the first two under `secret`; `None` for anything else.
///
/// The signature alone decides. Header and claims are then read as JSON after replacing invalid
/// UTF-8, since serde_json skips ignored fields without checking their UTF-8 and jsonwebtoken
/// accepts such claims (`fuzz/regressions/jwt/`); `Value::Null` when they are not JSON at all.
pub fn independent_verify(
    token: &str,
    secret: &[u8],
) -> Option<(serde_json::Value, serde_json::Value)> {
    let mut parts = token.split('.');
    let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
    mac.update(header.as_bytes());
    mac.update(b".");
    mac.update(payload.as_bytes());
    mac.verify_slice(&signature).ok()?;
    let json = |segment: &str| {
        let bytes = URL_SAFE_NO_PAD.decode(segment).unwrap_or_default();
        serde_json::from_str(&String::from_utf8_lossy(&bytes)).unwrap_or_default()
    };
    Some((json(header), json(payload)))
}

/// Splits `data` in two at a length read from its first byte, so libFuzzer can move the cut.
pub fn split_by_first_byte(data: &[u8]) -> (&[u8], &[u8]) {
    match data.split_first() {
        Some((&len, rest)) => rest.split_at(usize::from(len).min(rest.len())),
        None => (&[], &[]),
    }
}
