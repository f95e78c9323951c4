//! Keys and tokens the unit tests of `jwt/` share.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};

use super::claims::ImpersonationClaims;
use crate::time::Timestamp;

pub(super) const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
pub(super) const OTHER: &[u8] = b"fedcba9876543210fedcba9876543210";

pub(super) fn claims(exp_in: i64) -> ImpersonationClaims {
    let now = Timestamp::now().as_secs() as i64;
    ImpersonationClaims {
        user_id: "u1".into(),
        exp: (now + exp_in) as u64,
        iat: None,
        jti: None,
        org: None,
        act: None,
        roles: None,
    }
}

/// A token over `claims` with the bare form's header, signed with `secret` by jsonwebtoken.
pub(super) fn bare_form(claims: &serde_json::Value, secret: &[u8]) -> String {
    let header = Header {
        typ: None,
        ..Header::new(Algorithm::HS256)
    };
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
}
pub(super) const ED25519: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEICvvcdvgqZ7p5LHiOdBDIKtC2mASUUbQL0p4TQUcxAAN
-----END PRIVATE KEY-----";
pub(super) const P256: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgSSYFZZErANAYM5Vb
0rz+PdDTcO69G4r6CNvhiJ41e+ihRANCAATygTGMD9j5018cVf9ffTG1HLC/f4Lk
VfmfxYp6kBxGlk3p0d+vKZnHK9U5FHmuHHKwYDWk02SmZon2UhvmLx5d
-----END PRIVATE KEY-----";

pub(super) fn header_of(token: &str) -> serde_json::Value {
    let segment = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
}

pub(super) fn at(secs: u64) -> Timestamp {
    Timestamp::from_secs(secs)
}
