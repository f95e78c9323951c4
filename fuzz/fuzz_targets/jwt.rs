//! The JWT path: a bearer JWT through the layer (JWTs accepted, HS256), and the same text through
//! `JwtKeys::verify` for a one-key set, a set with another key, and a rotated set with key ids.
//!
//! Input: `mode cut1 <a> cut2 <b> <c>`; mode (bits 0-2) builds the token from the parts:
//! 0 the raw bytes `a b c`; 1 the header `{"alg":"HS256"}`, claims `a`, signature bytes `b`
//! (unsigned); 2 header `a`, claims `b`, signed with the key; 3 the header `{"alg":"HS256"}`,
//! claims `a`, signed with the key; 4 the same signed with another key; 5 header `a`, claims
//! `b`, signed with another key; 6 a valid token with bytes overwritten at (position, byte)
//! pairs from `a`; 7 a valid token followed by `a`.
//!
//! Checks: the layer answers 200, 400, 401 or 403; it impersonates only with a token whose
//! signature an independent HMAC-SHA256 check accepts under the configured key, with header
//! `alg` HS256 and no `kid`, unexpired, for the user its claims name; a JWT-shaped bearer never
//! passes untouched; `verify` accepts only what the independent check accepts under the key the
//! `kid` selects; the valid token is accepted.
//!
//! Mode bits 3-4 pick the key set: 0 the HS256 sets above; 1 an Ed25519 key (EdDSA); 2 a P-256
//! key (ES256); 3 the P-256 key signing, with the Ed25519 key and the HS256 secret as previous
//! keys. For 1-3 the parts build: 0 raw bytes; 1 the set's header, claims `a`, signature bytes
//! `b`; 2 header `a`, claims `b`, signed with the set's key; 3 the set's header, claims `a`,
//! signed; 4 the same signed by a stranger's key of the same algorithm; 5 alg confusion: an HS256
//! header naming the key's `kid`, claims `a`, HMAC-signed with the public key (raw, `x`, the JWK
//! Set or the PEM, picked by `b`); 6 and 7 as above. `verify`, and the layer with the same keys,
//! accept only what an independent check accepts: the header's `alg` that of a configured key,
//! its `kid` absent or that key's, the signature valid under that key (Ed25519 by
//! ed25519-compact, not ed25519-dalek; P-256 by the p256 crate, the one the crate uses, on a
//! signature and header this target decodes itself; HS256 by hmac), unexpired, the signed
//! `user_id` and `exp`.
#![no_main]

mod common;

/// The EdDSA and ES256 key sets (mode bits 3-4 ≠ 0).
mod asymmetric {
    use std::sync::LazyLock;

    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use bytes::Bytes;
    use http::{HeaderValue, Request, StatusCode};
    use http_body_util::Full;
    use p256::ecdsa::signature::{Signer as _, Verifier as _};
    use serde_json::Value;
    use tower_impersonation::{ImpersonationLayer, MemoryStore, jwt::JwtKeys};
    use tower_layer::Layer;

    use super::{Seen, jwt_shaped, seen};
    use crate::common::{self, App, BOB_ID, JWT_SECRET, LAYER_STATUSES, b64, sign_segments};
    use tower_impersonation::Impersonation;

    const ED25519: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEICvvcdvgqZ7p5LHiOdBDIKtC2mASUUbQL0p4TQUcxAAN
-----END PRIVATE KEY-----";
    const ED25519_STRANGER: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g
-----END PRIVATE KEY-----";
    const P256: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgSSYFZZErANAYM5Vb
0rz+PdDTcO69G4r6CNvhiJ41e+ihRANCAATygTGMD9j5018cVf9ffTG1HLC/f4Lk
VfmfxYp6kBxGlk3p0d+vKZnHK9U5FHmuHHKwYDWk02SmZon2UhvmLx5d
-----END PRIVATE KEY-----";
    const P256_STRANGER: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgQUTYZApsWoJ/mlFp
EJztBI1q0QNnu2OPn1w83U4rgw2hRANCAARyoz26b4mq3z8ctAEZvhAC4bCzaL88
Ko2KNazOBkz63+VVK5Up0yhH0ZKFbIdW+8fwvYpgSgremgRpD851AJqG
-----END PRIVATE KEY-----";

    /// A private key the target signs with itself, not through the crate.
    enum Signer {
        Ed(ed25519_compact::SecretKey),
        Es(p256::ecdsa::SigningKey),
    }

    impl Signer {
        fn from_pem(pem: &str) -> Self {
            if pem.len() < 200 {
                Signer::Ed(ed25519_compact::KeyPair::from_pem(pem).unwrap().sk)
            } else {
                use p256::pkcs8::DecodePrivateKey;
                Signer::Es(p256::ecdsa::SigningKey::from_pkcs8_pem(pem).unwrap())
            }
        }

        fn public(&self) -> Public {
            match self {
                Signer::Ed(key) => Public::Ed(key.public_key()),
                Signer::Es(key) => Public::Es(*key.verifying_key()),
            }
        }

        /// `header.payload.signature`.
        fn sign(&self, header: &str, payload: &str) -> String {
            let signed = format!("{header}.{payload}");
            let signature = match self {
                Signer::Ed(key) => key.sign(signed.as_bytes(), None).to_vec(),
                Signer::Es(key) => {
                    let signature: p256::ecdsa::Signature = key.sign(signed.as_bytes());
                    signature.to_bytes().to_vec()
                }
            };
            format!("{signed}.{}", b64(&signature))
        }
    }

    /// A key the oracle checks signatures with.
    enum Public {
        Ed(ed25519_compact::PublicKey),
        Es(p256::ecdsa::VerifyingKey),
        Hs(&'static [u8]),
    }

    impl Public {
        fn alg(&self) -> &'static str {
            match self {
                Public::Ed(_) => "EdDSA",
                Public::Es(_) => "ES256",
                Public::Hs(_) => "HS256",
            }
        }

        fn verifies(&self, token: &str) -> bool {
            let Some((signed, signature)) = token.rsplit_once('.') else {
                return false;
            };
            let Ok(signature) = URL_SAFE_NO_PAD.decode(signature) else {
                return false;
            };
            match self {
                Public::Ed(key) => ed25519_compact::Signature::from_slice(&signature)
                    .is_ok_and(|s| key.verify(signed.as_bytes(), &s).is_ok()),
                Public::Es(key) => p256::ecdsa::Signature::from_slice(&signature)
                    .is_ok_and(|s| key.verify(signed.as_bytes(), &s).is_ok()),
                Public::Hs(secret) => common::independent_verify(token, secret).is_some(),
            }
        }

        /// The raw public key bytes, as an HMAC secret for the alg-confusion mode.
        fn raw(&self) -> Vec<u8> {
            match self {
                Public::Ed(key) => key.to_vec(),
                Public::Es(key) => key.to_encoded_point(false).as_bytes().to_vec(),
                Public::Hs(secret) => secret.to_vec(),
            }
        }
    }

    pub(super) struct Family {
        /// What `verify` is called on.
        keys: JwtKeys,
        /// The layer, with a key set of its own (its own cache).
        app: Impersonation<App<Seen>>,
        signer: Signer,
        stranger: Signer,
        /// The signing header segment, with the `kid`.
        header: String,
        kid: String,
        /// What may verify: each key with the `kid`s that select it.
        accepted: Vec<(Public, Vec<Option<String>>)>,
        /// HMAC secrets an attacker could take from the public key.
        confusion: Vec<Vec<u8>>,
        /// Bob's token, valid for an hour, signed by the crate.
        valid: String,
    }

    fn family(pem: &'static str, stranger: &'static str, mixed: bool) -> Family {
        let build = || {
            let keys = if pem.len() < 200 {
                JwtKeys::ed25519_pem(pem).unwrap()
            } else {
                JwtKeys::es256_pem(pem).unwrap()
            };
            if mixed {
                keys.with_previous_keys(&JwtKeys::ed25519_pem(ED25519).unwrap())
                    .unwrap()
                    .with_previous_keys(&JwtKeys::hs256(JWT_SECRET).unwrap())
                    .unwrap()
            } else {
                keys
            }
        };
        let keys = build();
        let kid = keys.key_id().unwrap().to_owned();
        let signer = Signer::from_pem(pem);
        let public = signer.public();
        let header = b64(
            serde_json::json!({"typ": "JWT", "alg": public.alg(), "kid": kid})
                .to_string()
                .as_bytes(),
        );
        let x = keys.jwks()["keys"][0]["x"].as_str().unwrap().to_owned();
        let confusion = vec![
            public.raw(),
            x.into_bytes(),
            keys.jwks().to_string().into_bytes(),
            pem.as_bytes().to_vec(),
        ];
        let mut accepted = vec![(public, vec![None, Some(kid.clone())])];
        if mixed {
            let ed = JwtKeys::ed25519_pem(ED25519).unwrap();
            let ed_kid = ed.key_id().unwrap().to_owned();
            accepted.push((Signer::from_pem(ED25519).public(), vec![None, Some(ed_kid)]));
            accepted.push((Public::Hs(JWT_SECRET), vec![None]));
        }
        let claims = serde_json::json!({"user_id": BOB_ID, "exp": common::now_secs() + 3600});
        let valid = keys.sign(&serde_json::from_value(claims).unwrap()).unwrap();
        let layer = ImpersonationLayer::builder(MemoryStore::new(), common::directory())
            .jwt(build())
            .build();
        Family {
            keys,
            app: layer.layer(App(seen)),
            signer,
            stranger: Signer::from_pem(stranger),
            header,
            kid,
            accepted,
            confusion,
            valid,
        }
    }

    pub(super) static FAMILIES: LazyLock<[Family; 3]> = LazyLock::new(|| {
        [
            family(ED25519, ED25519_STRANGER, false),
            family(P256, P256_STRANGER, false),
            family(P256, P256_STRANGER, true),
        ]
    });

    /// The header and claims of `token` if a key of `family` with the header's `alg`, selected
    /// by its `kid`, verifies it.
    fn independently(family: &Family, token: &str) -> Option<(Value, Value)> {
        let mut parts = token.split('.');
        let (header, payload) = (parts.next()?, parts.next()?);
        parts.next()?;
        let json = |segment: &str| -> Value {
            let bytes = URL_SAFE_NO_PAD.decode(segment).unwrap_or_default();
            serde_json::from_str(&String::from_utf8_lossy(&bytes)).unwrap_or_default()
        };
        let (header, claims) = (json(header), json(payload));
        let alg = header.get("alg").and_then(Value::as_str)?;
        let kid = header.get("kid").and_then(Value::as_str).map(str::to_owned);
        family
            .accepted
            .iter()
            .any(|(key, kids)| key.alg() == alg && kids.contains(&kid) && key.verifies(token))
            .then_some((header, claims))
    }

    pub(super) fn check(family: &Family, mode: u8, a: &[u8], b: &[u8], c: &[u8]) {
        let token: Vec<u8> = match mode & 0b111 {
            0 => [a, b, c].concat(),
            1 => format!("{}.{}.{}", family.header, b64(a), b64(b)).into_bytes(),
            2 => family.signer.sign(&b64(a), &b64(b)).into_bytes(),
            3 => family.signer.sign(&family.header, &b64(a)).into_bytes(),
            4 => family.stranger.sign(&family.header, &b64(a)).into_bytes(),
            5 => {
                let header = serde_json::json!({"alg": "HS256", "kid": family.kid});
                let header = b64(header.to_string().as_bytes());
                let pick = usize::from(b.first().copied().unwrap_or(0));
                let secret = &family.confusion[pick % family.confusion.len()];
                sign_segments(&header, &b64(a), secret).into_bytes()
            }
            6 => {
                let mut token = family.valid.clone().into_bytes();
                let len = token.len();
                for pair in a.chunks_exact(2) {
                    token[usize::from(pair[0]) * len / 256] = pair[1];
                }
                token
            }
            _ => [family.valid.as_bytes(), a].concat(),
        };
        let valid = mode & 0b111 == 7 && a.is_empty();
        let now = common::now_secs();

        // Straight to the keys.
        if let Ok(text) = std::str::from_utf8(&token) {
            if let Ok(claims) = family.keys.verify(text) {
                let Some((_, signed)) = independently(family, text) else {
                    panic!("verify accepted a token no configured key signed: {text:?}");
                };
                assert_eq!(
                    signed.get("user_id").and_then(Value::as_str),
                    Some(claims.user_id.as_str())
                );
                assert_eq!(signed.get("exp").and_then(Value::as_u64), Some(claims.exp));
                assert!(claims.exp + 5 >= now, "verify accepted an expired token");
            }
            if valid {
                assert!(
                    family.keys.verify(text).is_ok(),
                    "the valid token was refused"
                );
            }
        }

        // Through the layer.
        let Ok(value) = HeaderValue::from_bytes(&[b"Bearer ".as_slice(), &token].concat()) else {
            return;
        };
        let mut request = Request::get("/api/v1/cards/7")
            .body(Full::<Bytes>::default())
            .unwrap();
        request.headers_mut().insert("authorization", value);
        let mut app = family.app.clone();
        let response = common::serve(&mut app, request);
        let status = response.status();
        assert!(
            LAYER_STATUSES.contains(&status),
            "undocumented status {status}"
        );
        let seen = response.extensions().get::<Seen>();
        assert_eq!(
            status == StatusCode::OK,
            seen.is_some(),
            "200 exactly when the app ran"
        );
        let bearer = token.trim_ascii();
        match seen {
            Some(Seen(Some(user_id))) => {
                let text = std::str::from_utf8(bearer).expect("an accepted JWT is ASCII");
                let Some((_, claims)) = independently(family, text) else {
                    panic!("the layer accepted a JWT no configured key signed: {text:?}");
                };
                assert_eq!(
                    claims.get("user_id").and_then(Value::as_str),
                    Some(user_id.as_str())
                );
                let exp = claims.get("exp").and_then(Value::as_u64).expect("an exp");
                assert!(exp + 5 >= now, "the layer accepted an expired JWT");
            }
            Some(Seen(None)) => assert!(
                !jwt_shaped(bearer),
                "a JWT-shaped bearer passed untouched: {:?}",
                String::from_utf8_lossy(bearer)
            ),
            None => {}
        }
        if valid {
            assert!(
                matches!(seen, Some(Seen(Some(user))) if user == BOB_ID),
                "the valid JWT was refused with {status}"
            );
        }
    }
}

use std::sync::LazyLock;

use bytes::Bytes;
use common::{
    App, BARE_HEADER, BOB_ID, JWT_SECRET, LAYER_STATUSES, OTHER_SECRET, b64, sign_segments,
};
use http::{HeaderValue, Request, StatusCode};
use http_body_util::Full;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tower_impersonation::{
    ImpersonatedUser, Impersonation, ImpersonationLayer, MemoryStore, jwt::JwtKeys,
};
use tower_layer::Layer;

/// The user id the app saw impersonated, if any.
#[derive(Clone, Debug)]
struct Seen(Option<String>);

fn seen(request: &Request<Full<Bytes>>) -> Seen {
    let user = request.extensions().get::<ImpersonatedUser>();
    Seen(user.map(|user| user.user().id.clone()))
}

struct World {
    app: Impersonation<App<Seen>>,
    keys: JwtKeys,
    other: JwtKeys,
    /// Signs with `JWT_SECRET` as `k1`, still verifies `OTHER_SECRET` as `k0`.
    rotated: JwtKeys,
    /// Bob's token, valid for an hour, in the bare `{user_id, exp}` form.
    valid: String,
}

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let keys = JwtKeys::hs256(JWT_SECRET).unwrap();
    let layer = ImpersonationLayer::builder(MemoryStore::new(), common::directory())
        .jwt(keys.clone())
        .build();
    let claims = serde_json::json!({"user_id": BOB_ID, "exp": common::now_secs() + 3600});
    World {
        app: layer.layer(App(seen)),
        // Key sets of their own, so the layer's cache is not shared with them.
        keys: JwtKeys::hs256(JWT_SECRET).unwrap(),
        other: JwtKeys::hs256(OTHER_SECRET).unwrap(),
        rotated: JwtKeys::hs256(JWT_SECRET)
            .unwrap()
            .with_key_id("k1")
            .unwrap()
            .with_previous_key(Some("k0"), OTHER_SECRET)
            .unwrap(),
        valid: sign_segments(BARE_HEADER, &b64(claims.to_string().as_bytes()), JWT_SECRET),
    }
});

/// Three non-empty segments of base64url characters: what the layer takes for a JWT.
fn jwt_shaped(token: &[u8]) -> bool {
    let base64url = |b: &u8| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_';
    let segments: Vec<&[u8]> = token.split(|&b| b == b'.').collect();
    segments.len() == 3
        && segments
            .iter()
            .all(|s| !s.is_empty() && s.iter().all(base64url))
}

/// What `keys.verify` may accept: a token the independent check accepts under `secret`, whose
/// header says HS256 and whose `kid` is one of `kids` (`None`: no `kid`).
fn verified_independently(
    token: &str,
    secret: &[u8],
    kids: &[Option<&str>],
) -> Option<(Value, Value)> {
    let (header, claims) = common::independent_verify(token, secret)?;
    let kid = header.get("kid").and_then(Value::as_str);
    let alg_ok = header.get("alg").and_then(Value::as_str) == Some("HS256");
    (alg_ok && kids.contains(&kid)).then_some((header, claims))
}

/// `verify` accepted `token`: it must be signed by one of `secrets` (with the `kid`s each allows),
/// and the claims `verify` read must be the ones signed.
fn check_accepted(
    verified: Result<
        tower_impersonation::jwt::ImpersonationClaims,
        tower_impersonation::jwt::JwtError,
    >,
    token: &str,
    secrets: &[(&[u8], &[Option<&str>])],
    now: u64,
) {
    let Ok(claims) = verified else { return };
    let signed = secrets
        .iter()
        .find_map(|(secret, kids)| verified_independently(token, secret, kids));
    let Some((_, signed_claims)) = signed else {
        panic!("verify accepted a token no configured key signed: {token:?}");
    };
    assert_eq!(
        signed_claims.get("user_id").and_then(Value::as_str),
        Some(claims.user_id.as_str())
    );
    assert_eq!(
        signed_claims.get("exp").and_then(Value::as_u64),
        Some(claims.exp)
    );
    assert!(claims.exp + 5 >= now, "verify accepted an expired token");
}

fuzz_target!(|data: &[u8]| {
    let world = &*WORLD;
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (a, rest) = common::split_by_first_byte(rest);
    let (b, c) = common::split_by_first_byte(rest);
    let family = usize::from((mode >> 3) & 0b11);
    if family != 0 {
        asymmetric::check(&asymmetric::FAMILIES[family - 1], mode, a, b, c);
        return;
    }
    let token: Vec<u8> = match mode & 0b111 {
        0 => [a, b, c].concat(),
        1 => format!("{BARE_HEADER}.{}.{}", b64(a), b64(b)).into_bytes(),
        2 => sign_segments(&b64(a), &b64(b), JWT_SECRET).into_bytes(),
        3 => sign_segments(BARE_HEADER, &b64(a), JWT_SECRET).into_bytes(),
        4 => sign_segments(BARE_HEADER, &b64(a), OTHER_SECRET).into_bytes(),
        5 => sign_segments(&b64(a), &b64(b), OTHER_SECRET).into_bytes(),
        6 => {
            let mut token = world.valid.clone().into_bytes();
            let len = token.len();
            for pair in a.chunks_exact(2) {
                token[usize::from(pair[0]) * len / 256] = pair[1];
            }
            token
        }
        _ => [world.valid.as_bytes(), a].concat(),
    };
    let valid = mode & 0b111 == 7 && a.is_empty();
    let now = common::now_secs();

    // Straight to the keys.
    if let Ok(text) = std::str::from_utf8(&token) {
        check_accepted(world.keys.verify(text), text, &[(JWT_SECRET, &[None])], now);
        check_accepted(
            world.other.verify(text),
            text,
            &[(OTHER_SECRET, &[None])],
            now,
        );
        check_accepted(
            world.rotated.verify(text),
            text,
            &[
                (JWT_SECRET, &[None, Some("k1")]),
                (OTHER_SECRET, &[None, Some("k0")]),
            ],
            now,
        );
        if valid {
            assert!(
                world.keys.verify(text).is_ok(),
                "the valid token was refused"
            );
        }
    }

    // Through the layer.
    let Ok(value) = HeaderValue::from_bytes(&[b"Bearer ".as_slice(), &token].concat()) else {
        return;
    };
    let mut request = Request::get("/api/v1/cards/7")
        .body(Full::<Bytes>::default())
        .unwrap();
    request.headers_mut().insert("authorization", value);
    let mut app = world.app.clone();
    let response = common::serve(&mut app, request);
    let status = response.status();
    assert!(
        LAYER_STATUSES.contains(&status),
        "undocumented status {status}"
    );
    let seen = response.extensions().get::<Seen>();
    assert_eq!(
        status == StatusCode::OK,
        seen.is_some(),
        "200 exactly when the app ran"
    );
    let bearer = token.trim_ascii();
    match seen {
        Some(Seen(Some(user_id))) => {
            let text = std::str::from_utf8(bearer).expect("an accepted JWT is ASCII");
            let Some((_, claims)) = verified_independently(text, JWT_SECRET, &[None]) else {
                panic!("the layer accepted a JWT the key did not sign: {text:?}");
            };
            assert_eq!(
                claims.get("user_id").and_then(Value::as_str),
                Some(user_id.as_str())
            );
            let exp = claims.get("exp").and_then(Value::as_u64).expect("an exp");
            assert!(exp + 5 >= now, "the layer accepted an expired JWT");
        }
        Some(Seen(None)) => assert!(
            !jwt_shaped(bearer),
            "a JWT-shaped bearer passed untouched: {:?}",
            String::from_utf8_lossy(bearer)
        ),
        None => {}
    }
    if valid {
        assert!(
            matches!(seen, Some(Seen(Some(user))) if user == BOB_ID),
            "the valid JWT was refused with {status}"
        );
    }
});
