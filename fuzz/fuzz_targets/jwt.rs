//! The JWT path: a bearer JWT through the layer (JWTs accepted, HS256), and the same text through
//! `JwtKeys::verify` for a one-key set, a set with another key, and a rotated set with key ids.
//!
//! Input: `mode cut1 <a> cut2 <b> <c>`; mode (bits 0-2) builds the token from the parts:
//! 0 the raw bytes `a b c`; 1 the seed's header, claims `a`, signature bytes `b` (unsigned);
//! 2 header `a`, claims `b`, signed with the key; 3 the seed's header, claims `a`, signed with the
//! key; 4 the same signed with another key; 5 header `a`, claims `b`, signed with another key;
//! 6 a valid token with bytes overwritten at (position, byte) pairs from `a`; 7 a valid token
//! followed by `a`.
//!
//! Checks: the layer answers 200, 400, 401 or 403; it impersonates only with a token whose
//! signature an independent HMAC-SHA256 check accepts under the configured key, with header
//! `alg` HS256 and no `kid`, unexpired, for the user its claims name; a JWT-shaped bearer never
//! passes untouched; `verify` accepts only what the independent check accepts under the key the
//! `kid` selects; the valid token is accepted.
#![no_main]

mod common;

use std::sync::LazyLock;

use bytes::Bytes;
use common::{
    App, BOB_ID, JWT_SECRET, LAYER_STATUSES, OTHER_SECRET, SEED_HEADER, b64, sign_segments,
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
    /// Bob's token, valid for an hour, in the seed's form.
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
        valid: sign_segments(SEED_HEADER, &b64(claims.to_string().as_bytes()), JWT_SECRET),
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
    let token: Vec<u8> = match mode & 0b111 {
        0 => [a, b, c].concat(),
        1 => format!("{SEED_HEADER}.{}.{}", b64(a), b64(b)).into_bytes(),
        2 => sign_segments(&b64(a), &b64(b), JWT_SECRET).into_bytes(),
        3 => sign_segments(SEED_HEADER, &b64(a), JWT_SECRET).into_bytes(),
        4 => sign_segments(SEED_HEADER, &b64(a), OTHER_SECRET).into_bytes(),
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
