//! An HS256 JWT decoder and signer built on hmac and base64 alone, so tests check the crate's
//! JWTs with code that shares nothing with jsonwebtoken.
#![allow(dead_code, reason = "each test binary uses part of it")]

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// Verifies an HS256 JWT with hmac and base64 alone, and returns its header and claims.
pub fn independent_decode(jwt: &str, secret: &[u8]) -> (Value, Value) {
    let mut parts = jwt.split('.');
    let (header, claims, signature) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    assert!(parts.next().is_none());
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(format!("{header}.{claims}").as_bytes());
    mac.verify_slice(&URL_SAFE_NO_PAD.decode(signature).unwrap())
        .expect("signature verifies");
    let decode =
        |part: &str| serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap();
    (decode(header), decode(claims))
}

/// Signs claims in the bare form JWTs minted elsewhere take: header `{"alg":"HS256"}`.
pub fn bare_jwt(claims: &Value, secret: &[u8]) -> String {
    jwt_with_header(r#"{"alg":"HS256"}"#, claims, secret)
}

/// Signs claims with HS256 under this exact header JSON.
pub fn jwt_with_header(header: &str, claims: &Value, secret: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(header);
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(format!("{header}.{claims}").as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{header}.{claims}.{signature}")
}
