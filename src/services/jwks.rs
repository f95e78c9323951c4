//! [`JwksService`]: the public keys of impersonation JWTs as a JWK Set document (RFC 7517), so
//! other services verify the tokens without holding a key that signs them.

use std::{
    convert::Infallible,
    future::{Ready, ready},
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use tower_service::Service;

use super::reply::{method_not_allowed, reply};
use crate::jwt::JwtKeys;

/// The media type of a JWK Set (RFC 7517 §8.5.1).
const JWK_SET: &str = "application/jwk-set+json";

/// Answers `GET` and `HEAD` with [`JwtKeys::jwks`]: the Ed25519 and P-256 public keys, signing
/// and previous, never a private key or an HS256 secret (`{"keys":[]}` for HS256 keys), as
/// `application/jwk-set+json`, cacheable for five minutes; other methods 405 with `Allow`.
///
/// The document is written once, when the service is made: build a new service with the new keys
/// when they rotate. It needs no authentication; mount it where verifiers look, conventionally
/// `/.well-known/jwks.json`.
///
/// ```
/// use tower_impersonation::{jwt::JwtKeys, services::JwksService};
///
/// let keys = JwtKeys::hs256(b"an example secret of at least 32 bytes!")?;
/// let jwks = JwksService::new(&keys);
/// # let _ = jwks;
/// # Ok::<_, tower_impersonation::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct JwksService {
    document: Bytes,
}

impl JwksService {
    /// The service publishing the public keys of `keys`.
    pub fn new(keys: &JwtKeys) -> Self {
        Self {
            document: keys.jwks().to_string().into(),
        }
    }
}

impl<B> Service<Request<B>> for JwksService {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let method = request.method();
        if method != Method::GET && method != Method::HEAD {
            return ready(Ok(method_not_allowed("GET, HEAD")));
        }
        // HEAD gets the same body: HTTP servers such as hyper send the headers alone, with the
        // length the body would have.
        let mut response = reply(StatusCode::OK, JWK_SET, self.document.clone());
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        );
        ready(Ok(response))
    }
}
