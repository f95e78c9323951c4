//! Key material: HS256 secrets and PKCS#8 PEM private keys read into keys that sign and verify.

use jsonwebtoken::{EncodingKey, Header};
use serde_json::Map;

use super::{algorithm::JwtAlgorithm, hs256::MacKey, verifier::Verifier};
use crate::error::ConfigError;

/// Shortest HS256 secret accepted, in bytes (RFC 7518 §3.2: at least the hash size).
pub(super) const MIN_SECRET_LEN: usize = 32;

/// One key: what signs with it, if anything, and what verifies its signatures.
#[derive(Clone)]
pub(super) struct Key {
    pub(super) id: Option<String>,
    /// What signs; `None` for a public key read from a JWK Set, which only verifies.
    pub(super) encoding: Option<EncodingKey>,
    pub(super) verifying: Verifier,
}

/// The header a key signs with: its algorithm and `kid`.
pub(super) fn signing_header(key: &Key) -> Header {
    let mut header = Header::new(key.verifying.algorithm().jsonwebtoken());
    header.kid.clone_from(&key.id);
    header
}

impl Key {
    pub(super) fn hs256(id: Option<String>, secret: &[u8]) -> Result<Self, ConfigError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(ConfigError::WeakJwtSecret { len: secret.len() });
        }
        Ok(Self {
            id,
            encoding: Some(EncodingKey::from_secret(secret)),
            verifying: Verifier::Hmac(MacKey::new(secret)),
        })
    }

    pub(super) fn ed25519_pem(pem: &str) -> Result<Self, ConfigError> {
        use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem.trim())
            .map_err(|e| unreadable_pem(JwtAlgorithm::EdDsa, "an Ed25519", &e.to_string()))?;
        let der = key
            .to_pkcs8_der()
            .map_err(|e| unreadable_pem(JwtAlgorithm::EdDsa, "an Ed25519", &e.to_string()))?;
        Self::asymmetric(
            EncodingKey::from_ed_der(der.as_bytes()),
            Verifier::Ed25519(key.verifying_key()),
        )
    }

    pub(super) fn es256_pem(pem: &str) -> Result<Self, ConfigError> {
        use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
        let key = p256::ecdsa::SigningKey::from_pkcs8_pem(pem.trim())
            .map_err(|e| unreadable_pem(JwtAlgorithm::Es256, "a P-256", &e.to_string()))?;
        let der = key
            .to_pkcs8_der()
            .map_err(|e| unreadable_pem(JwtAlgorithm::Es256, "a P-256", &e.to_string()))?;
        Self::asymmetric(
            EncodingKey::from_ec_der(der.as_bytes()),
            Verifier::Es256(*key.verifying_key()),
        )
    }

    /// A key pair named by its thumbprint, once it is known to sign.
    fn asymmetric(encoding: EncodingKey, verifying: Verifier) -> Result<Self, ConfigError> {
        let key = Self {
            id: verifying.thumbprint(),
            encoding: Some(encoding),
            verifying,
        };
        let probe = Header::new(key.verifying.algorithm().jsonwebtoken());
        let encoding = key.encoding.as_ref().expect("a key pair signs");
        if let Err(e) = jsonwebtoken::encode(&probe, &Map::new(), encoding) {
            return Err(ConfigError::InvalidJwtKey(format!(
                "the {} key does not sign: {e}",
                key.verifying.algorithm()
            )));
        }
        Ok(key)
    }
}

fn unreadable_pem(algorithm: JwtAlgorithm, kind: &str, why: &str) -> ConfigError {
    ConfigError::InvalidJwtKey(format!(
        "the {algorithm} key must be {kind} private key in PKCS#8 PEM \
         (-----BEGIN PRIVATE KEY-----): {why}"
    ))
}

#[cfg(test)]
mod tests {
    use super::super::{JwtError, JwtKeys, test_fixtures::*};
    use crate::time::Timestamp;

    #[test]
    fn eddsa_and_es256_keys_sign_tokens_they_verify_with_their_kid() {
        for (keys, alg) in [
            (JwtKeys::ed25519_pem(ED25519).unwrap(), "EdDSA"),
            (JwtKeys::es256_pem(P256).unwrap(), "ES256"),
        ] {
            let token = keys.sign(&claims(60)).unwrap();
            let header = header_of(&token);
            assert_eq!(header["alg"], alg);
            assert_eq!(header["kid"], keys.key_id().unwrap());
            assert_eq!(keys.verify(&token).unwrap().user_id, "u1");
            assert!(keys.verify_cached(&token, Timestamp::now()).is_ok());
            let expired = keys.sign(&claims(-60)).unwrap();
            assert_eq!(keys.verify(&expired), Err(JwtError::Expired));
            let (signed, signature) = token.rsplit_once('.').unwrap();
            let first = if signature.starts_with('A') { "B" } else { "A" };
            let flipped = format!("{signed}.{first}{}", &signature[1..]);
            assert_eq!(keys.verify(&flipped), Err(JwtError::BadSignature));
            let jwk = &keys.jwks()["keys"][0];
            assert_eq!(jwk["alg"], alg);
            assert!(jwk.get("d").is_none(), "no private part: {jwk}");
        }
        let es256 = JwtKeys::es256_pem(P256).unwrap();
        let jwk = &es256.jwks()["keys"][0];
        assert_eq!((&jwk["kty"], &jwk["crv"]), (&"EC".into(), &"P-256".into()));
        assert!(jwk["y"].is_string());
    }
}
