//! The JWK Set (RFC 7517): the public keys published, and keys that only verify read back.

use serde_json::{Map, Value};

use super::{
    crypto_backend::select_crypto_backend,
    key_material::Key,
    keys::{Inner, JwtKeys},
    verifier::Verifier,
};
use crate::error::ConfigError;

impl JwtKeys {
    /// Keys that only verify: the Ed25519 and P-256 public keys of a JWK Set document
    /// (`{"keys": [...]}`, RFC 7517), such as [`JwtKeys::jwks`] of the minting service publishes.
    /// Keys of other types or curves, or meant for encryption (`"use": "enc"`), are left out; a
    /// set with none left, a key this crate should use but cannot read, a private key (member `d`)
    /// or a `kid` used twice is an error. [`JwtKeys::sign`] fails on these keys.
    pub fn from_jwks(document: &str) -> Result<Self, ConfigError> {
        select_crypto_backend()?;
        let invalid = |why: String| ConfigError::InvalidJwtKey(format!("JWK Set: {why}"));
        let set: Value = serde_json::from_str(document)
            .map_err(|e| invalid(format!("not a JSON document: {e}")))?;
        let jwks = set
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("no \"keys\" array".to_owned()))?;
        let mut keys: Vec<Key> = Vec::new();
        for jwk in jwks {
            let jwk = jwk
                .as_object()
                .ok_or_else(|| invalid("a key is not a JSON object".to_owned()))?;
            if jwk.contains_key("d") {
                return Err(invalid(
                    "a key holds a private key (\"d\"); publish public keys only".to_owned(),
                ));
            }
            if jwk.get("use").is_some_and(|usage| *usage != "sig") {
                continue;
            }
            let Some(verifying) = Verifier::from_public_jwk(jwk).map_err(invalid)? else {
                continue;
            };
            let algorithm = verifying.algorithm();
            if let Some(alg) = jwk.get("alg")
                && *alg != algorithm.name()
            {
                return Err(invalid(format!(
                    "a key's \"alg\" is {alg}, but its type and curve are {algorithm}'s"
                )));
            }
            let id = match jwk.get("kid") {
                Some(Value::String(kid)) => Some(kid.clone()),
                None => verifying.thumbprint(),
                Some(_) => return Err(invalid("a key's \"kid\" is not a string".to_owned())),
            };
            if keys.iter().any(|key| key.id == id) {
                return Err(ConfigError::InvalidJwtKeys("a key id is used twice"));
            }
            keys.push(Key {
                id,
                encoding: None,
                verifying,
            });
        }
        let mut keys = keys.into_iter();
        let first = keys.next().ok_or_else(|| {
            invalid("no Ed25519 (EdDSA) or P-256 (ES256) signing key in the set".to_owned())
        })?;
        let mut inner = Inner::new(first);
        inner.keys.extend(keys);
        Ok(inner.into())
    }
    /// The public keys, as a JWK Set document (RFC 7517): one JWK for each Ed25519 or P-256 key,
    /// signing or previous, with its `kid`, `alg` and `"use": "sig"`; never a private key or an
    /// HS256 secret, so `{"keys": []}` for HS256 keys. Whoever holds it verifies these keys'
    /// tokens without being able to sign one.
    pub fn jwks(&self) -> Value {
        let keys = self
            .inner
            .keys
            .iter()
            .filter_map(|key| {
                let mut jwk = key.verifying.public_jwk()?;
                if let Some(id) = &key.id {
                    jwk.insert("kid".to_owned(), Value::String(id.clone()));
                }
                let algorithm = key.verifying.algorithm().name();
                jwk.insert("alg".to_owned(), Value::String(algorithm.to_owned()));
                jwk.insert("use".to_owned(), Value::String("sig".to_owned()));
                Some(Value::Object(jwk))
            })
            .collect();
        let mut set = Map::new();
        set.insert("keys".to_owned(), Value::Array(keys));
        Value::Object(set)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_fixtures::*;
    use super::*;
    use crate::jwt::{JwtAlgorithm, JwtError};

    /// RFC 8037 appendix A's Ed25519 key, as PKCS#8 PEM.
    const RFC8037_ED25519: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g
-----END PRIVATE KEY-----";

    #[test]
    fn the_ed25519_key_id_and_public_jwk_are_rfc_8037s() {
        let keys = JwtKeys::ed25519_pem(RFC8037_ED25519).unwrap();
        assert_eq!(keys.algorithm(), JwtAlgorithm::EdDsa);
        // RFC 8037 A.3: the thumbprint of the example key.
        assert_eq!(
            keys.key_id(),
            Some("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k")
        );
        assert_eq!(
            keys.jwks(),
            serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519",
                "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
                "kid": "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k",
                "alg": "EdDSA", "use": "sig"}]})
        );
    }

    #[test]
    fn keys_read_from_the_jwks_verify_but_cannot_sign() {
        let signer = JwtKeys::es256_pem(P256)
            .unwrap()
            .with_previous_keys(&JwtKeys::ed25519_pem(ED25519).unwrap())
            .unwrap();
        let document = signer.jwks().to_string();
        let verifier = JwtKeys::from_jwks(&document).unwrap();
        let token = signer.sign(&claims(60)).unwrap();
        assert_eq!(verifier.verify(&token).unwrap().user_id, "u1");
        assert!(matches!(
            verifier.sign(&claims(60)),
            Err(JwtError::Signing(_))
        ));
        assert_eq!(verifier.jwks(), signer.jwks());
        let hs256_token = JwtKeys::hs256(SECRET).unwrap().sign(&claims(60)).unwrap();
        assert_eq!(verifier.verify(&hs256_token), Err(JwtError::WrongAlgorithm));
    }

    #[test]
    fn bad_jwk_sets_and_pem_keys_are_configuration_errors_that_say_why() {
        let private = serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
            "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}]});
        for (document, says) in [
            ("{\"keys\": []}".to_owned(), "no Ed25519"),
            ("[]".to_owned(), "\"keys\""),
            (private.to_string(), "private key"),
            (
                r#"{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}]}"#.to_owned(),
                "32 bytes",
            ),
            (
                r#"{"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]}"#.to_owned(),
                "no Ed25519",
            ),
        ] {
            let error = JwtKeys::from_jwks(&document).unwrap_err().to_string();
            assert!(error.contains(says), "{document}: {error}");
        }
        for (keys, says) in [
            (JwtKeys::ed25519_pem(P256), "Ed25519"),
            (JwtKeys::es256_pem(ED25519), "P-256"),
            (JwtKeys::ed25519_pem("not a key"), "PKCS#8 PEM"),
            (JwtKeys::es256_pem(""), "PKCS#8 PEM"),
        ] {
            let error = keys.unwrap_err().to_string();
            assert!(error.contains(says), "{error}");
            assert!(!error.contains("MIGHAgEA"), "no key material: {error}");
        }
    }
}
