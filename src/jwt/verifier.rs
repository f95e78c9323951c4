//! What checks a JWT's signature, one per key: an HS256 secret, an Ed25519 public key or a P-256
//! public key; and the public keys as JWKs (RFC 7517, 7518, 8037), with their RFC 7638 thumbprints.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use p256::ecdsa::signature::Verifier as _;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{algorithm::JwtAlgorithm, hs256::MacKey};

/// A key that verifies signatures of one algorithm.
#[derive(Clone)]
pub(super) enum Verifier {
    /// An HS256 secret (which could also sign).
    Hmac(MacKey),
    /// An Ed25519 public key (EdDSA).
    Ed25519(ed25519_dalek::VerifyingKey),
    /// A P-256 public key (ES256).
    Es256(p256::ecdsa::VerifyingKey),
}

impl Verifier {
    /// The algorithm this key verifies, and only this one.
    pub(super) fn algorithm(&self) -> JwtAlgorithm {
        match self {
            Verifier::Hmac(_) => JwtAlgorithm::Hs256,
            Verifier::Ed25519(_) => JwtAlgorithm::EdDsa,
            Verifier::Es256(_) => JwtAlgorithm::Es256,
        }
    }

    /// Whether `signature` (decoded from base64url) is this key's over `signed`.
    pub(super) fn verifies(&self, signed: &str, signature: &[u8]) -> bool {
        match self {
            Verifier::Hmac(key) => key.signed(signed, signature),
            // Strict: refuses the weak public keys and non-canonical signatures plain RFC 8032
            // verification lets through.
            Verifier::Ed25519(key) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|signature| key.verify_strict(signed.as_bytes(), &signature).is_ok()),
            // JWS's ES256 signature is r and s, 32 bytes each (RFC 7518 §3.4), not DER.
            Verifier::Es256(key) => p256::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|signature| key.verify(signed.as_bytes(), &signature).is_ok()),
        }
    }

    /// The public key's required JWK members (`kty`, `crv`, `x`, `y`), in RFC 7638's order;
    /// `None` for a secret, which has no public form.
    fn public_members(&self) -> Option<Vec<(&'static str, String)>> {
        match self {
            Verifier::Hmac(_) => None,
            Verifier::Ed25519(key) => Some(vec![
                ("crv", "Ed25519".to_owned()),
                ("kty", "OKP".to_owned()),
                ("x", URL_SAFE_NO_PAD.encode(key.as_bytes())),
            ]),
            Verifier::Es256(key) => {
                let point = key.to_encoded_point(false);
                Some(vec![
                    ("crv", "P-256".to_owned()),
                    ("kty", "EC".to_owned()),
                    ("x", URL_SAFE_NO_PAD.encode(point.x()?)),
                    ("y", URL_SAFE_NO_PAD.encode(point.y()?)),
                ])
            }
        }
    }

    /// The public key as a JWK with its required members only; `None` for a secret.
    pub(super) fn public_jwk(&self) -> Option<Map<String, Value>> {
        let members = self.public_members()?;
        Some(
            members
                .into_iter()
                .map(|(name, value)| (name.to_owned(), Value::String(value)))
                .collect(),
        )
    }

    /// The RFC 7638 thumbprint (SHA-256, base64url) of the public key; `None` for a secret.
    pub(super) fn thumbprint(&self) -> Option<String> {
        // The required members, lexicographically ordered, no whitespace: every value here is
        // base64url or a fixed name, so no JSON escaping is needed.
        let members = self.public_members()?;
        let fields: Vec<String> = members
            .iter()
            .map(|(name, value)| format!("\"{name}\":\"{value}\""))
            .collect();
        let canonical = format!("{{{}}}", fields.join(","));
        Some(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
    }

    /// A public key from a JWK: `OKP`/`Ed25519` or `EC`/`P-256`. `Ok(None)` for a key of another
    /// type or curve, which this crate cannot use; an error for one it should use but cannot read.
    pub(super) fn from_public_jwk(jwk: &Map<String, Value>) -> Result<Option<Self>, String> {
        let member = |name: &str| jwk.get(name).and_then(Value::as_str);
        let bytes = |name: &str| -> Result<Vec<u8>, String> {
            let text = member(name).ok_or_else(|| format!("a JWK has no {name:?}"))?;
            URL_SAFE_NO_PAD
                .decode(text)
                .map_err(|_| format!("a JWK's {name:?} is not base64url"))
        };
        match (member("kty"), member("crv")) {
            (Some("OKP"), Some("Ed25519")) => {
                let x: [u8; 32] = bytes("x")?
                    .try_into()
                    .map_err(|_| "an Ed25519 JWK's \"x\" is not 32 bytes".to_owned())?;
                let key = ed25519_dalek::VerifyingKey::from_bytes(&x)
                    .map_err(|_| "an Ed25519 JWK's \"x\" is not a valid public key".to_owned())?;
                Ok(Some(Verifier::Ed25519(key)))
            }
            (Some("EC"), Some("P-256")) => {
                let (x, y) = (bytes("x")?, bytes("y")?);
                if x.len() != 32 || y.len() != 32 {
                    return Err("a P-256 JWK's \"x\" and \"y\" must be 32 bytes each".to_owned());
                }
                let point = p256::EncodedPoint::from_affine_coordinates(
                    x.as_slice().into(),
                    y.as_slice().into(),
                    false,
                );
                let key = p256::ecdsa::VerifyingKey::from_encoded_point(&point)
                    .map_err(|_| "a P-256 JWK is not a point on the curve".to_owned())?;
                Ok(Some(Verifier::Es256(key)))
            }
            _ => Ok(None),
        }
    }
}
