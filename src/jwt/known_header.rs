//! The header segments most tokens carry, known without decoding them.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, Header};

use super::{
    algorithm::JwtAlgorithm,
    key_material::{Key, signing_header},
};

/// A header segment whose meaning is known without decoding it: the one each key signs with, and
/// the bare form's `{"alg":"HS256"}`. A token that starts with one skips a base64 and JSON parse.
pub(super) struct KnownHeader {
    pub(super) segment: String,
    pub(super) algorithm: JwtAlgorithm,
    pub(super) kid: Option<String>,
}

/// The headers `keys` sign with, and the bare form's `{"alg":"HS256"}` when one is HS256.
pub(super) fn known_headers(keys: &[Key]) -> Vec<KnownHeader> {
    let bare = keys
        .iter()
        .any(|key| key.verifying.algorithm() == JwtAlgorithm::Hs256)
        .then(|| Header {
            typ: None,
            ..Header::new(Algorithm::HS256)
        });
    let signed = keys.iter().map(signing_header);
    bare.into_iter()
        .chain(signed)
        .filter_map(|header| {
            let algorithm = JwtAlgorithm::from_jsonwebtoken(header.alg)?;
            // The segment exactly as jsonwebtoken writes it: the header's JSON, base64url.
            let json = serde_json::to_vec(&header).ok()?;
            Some(KnownHeader {
                segment: URL_SAFE_NO_PAD.encode(json),
                algorithm,
                kid: header.kid,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::{JwtKeys, test_fixtures::*};

    #[test]
    fn the_headers_tokens_usually_carry_skip_the_header_parse() {
        let hs256 = JwtKeys::hs256(SECRET).unwrap();
        let bare = bare_form(&serde_json::json!({"user_id": "u1", "exp": 1}), SECRET);
        let named = JwtKeys::hs256(SECRET).unwrap().with_key_id("k1").unwrap();
        let eddsa = JwtKeys::ed25519_pem(ED25519).unwrap();
        for (keys, token) in [
            (&hs256, hs256.sign(&claims(60)).unwrap()),
            (&hs256, bare),
            (&named, named.sign(&claims(60)).unwrap()),
            (&eddsa, eddsa.sign(&claims(60)).unwrap()),
        ] {
            let segment = token.split('.').next().unwrap();
            let known = keys.known_header(segment).expect("a known header");
            assert_eq!(known.kid.as_deref(), header_of(&token)["kid"].as_str());
        }
    }
}
