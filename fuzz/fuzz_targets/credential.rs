//! The credential parser, through the real layer: any `Authorization` value, any user header
//! (none, one or two), any method and path, against a store holding live, read-only, cards-only,
//! revoked and expired tokens, with JWTs accepted too.
//!
//! Input: `flags0 flags1 cut1 <authorization raw> cut2 <user raw> <path raw>`.
//! - flags0 bits 0-2, the `Authorization` header: none; raw bytes; `Bearer <full token><raw>`;
//!   `Bearer <read-only token><raw>`; `Bearer <cards-only token><raw>`;
//!   `Bearer <revoked or expired token><raw>`; `Bearer GINT:IMP:<raw>`; `Bearer <raw>`.
//! - flags0 bits 3-4, the user header: none; raw bytes; a known name; raw bytes twice.
//! - flags0 bits 5-7, the method.
//! - flags1 bits 0-2, the path (7: the raw path bytes); bit 3 repeats `Authorization`; bits 4-5
//!   pick the known name; bit 6 picks revoked or expired.
//!
//! Checks: the status is 200, 400, 401 or 403 and 200 exactly when the app ran; the app never sees
//! the user header nor an unverified user header; an impersonated request carries a live token's
//! exact secret in its single `Authorization` header, names a member of the token's organization,
//! and stays within the token's roles; the plain valid request is accepted.
#![no_main]

mod common;

use std::sync::LazyLock;

use bytes::Bytes;
use common::{ACME, ADA_ID, App, BOB, BOB_ID, LAYER_STATUSES, block_on};
use http::{HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::Full;
use libfuzzer_sys::fuzz_target;
use tower_impersonation::{
    ImpersonatedUser, Impersonation, ImpersonationLayer, MemoryStore, Roles, Timestamp,
    TokenPrefix, TokenRecord, TokenStore, jwt::JwtKeys,
};
use tower_layer::Layer;
use uuid::Uuid;

/// What the app behind the layer saw.
#[derive(Clone, Debug)]
struct Seen {
    /// Token id, user id and organization of the impersonation, if any.
    impersonated: Option<(Option<Uuid>, String, Option<String>)>,
    user_header: bool,
}

/// What the app saw of `request`.
fn seen(request: &Request<Full<Bytes>>) -> Seen {
    let impersonated = request.extensions().get::<ImpersonatedUser>().map(|user| {
        (
            user.actor().token_id(),
            user.user().id.clone(),
            user.organization().map(str::to_owned),
        )
    });
    Seen {
        impersonated,
        user_header: request.headers().contains_key("x-guru-userid"),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    Full,
    ReadOnly,
    CardsOnly,
}

struct World {
    app: Impersonation<App<Seen>>,
    /// Live tokens: secret as sent, id, scope.
    live: Vec<(String, Uuid, Scope)>,
    revoked: String,
    expired: String,
}

fn issue(store: &MemoryStore, role: &str, expires_at: Option<Timestamp>) -> (String, Uuid) {
    let roles = Roles::parse(&[role]).expect("a valid role");
    let (secret, mut record) = TokenRecord::issue(&TokenPrefix::default(), ACME, ADA_ID, roles);
    record.expires_at = expires_at;
    let id = record.id;
    block_on(store.create(record, usize::MAX)).expect("the memory store stores");
    (secret.expose(), id)
}

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let store = MemoryStore::new();
    let (full, full_id) = issue(&store, "*:*", None);
    let (read_only, read_only_id) = issue(&store, "read:*", None);
    let (cards_only, cards_only_id) = issue(&store, "read:cards", None);
    let (revoked, revoked_id) = issue(&store, "*:*", None);
    assert!(block_on(store.revoke(ACME, revoked_id)).unwrap());
    let an_hour_ago = Timestamp::from_millis(Timestamp::now().as_millis() - 3_600_000);
    let (expired, _) = issue(&store, "*:*", Some(an_hour_ago));
    let layer = ImpersonationLayer::builder(store, common::directory())
        .jwt(JwtKeys::hs256(common::JWT_SECRET).expect("a long enough secret"))
        .build();
    World {
        app: layer.layer(App(seen)),
        live: vec![
            (full, full_id, Scope::Full),
            (read_only, read_only_id, Scope::ReadOnly),
            (cards_only, cards_only_id, Scope::CardsOnly),
        ],
        revoked,
        expired,
    }
});

const METHODS: [Method; 8] = [
    Method::GET,
    Method::HEAD,
    Method::OPTIONS,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::TRACE,
];

const PATHS: [&str; 7] = [
    "/api/v1/cards/7",
    "/api/v1/users",
    "/api/v1/cards",
    "/api/v1",
    "/api/v1/",
    "/",
    "/other/cards",
];

const KNOWN_USERS: [&str; 4] = [BOB, BOB_ID, "ada@acme.test", "carol@globex.test"];

/// The resource the default `PathPolicy` reads from a path: the first segment under `/api/v1/`.
fn resource(path: &str) -> Option<&str> {
    let segment = path.strip_prefix("/api/v1/")?.split('/').next()?;
    (!segment.is_empty()).then_some(segment)
}

fn concat(a: &[u8], b: &[u8]) -> Vec<u8> {
    [a, b].concat()
}

fuzz_target!(|data: &[u8]| {
    let world = &*WORLD;
    let [flags0, flags1, rest @ ..] = data else {
        return;
    };
    let (auth_raw, rest) = common::split_by_first_byte(rest);
    let (user_raw, path_raw) = common::split_by_first_byte(rest);

    let bearer = |token: &str| concat(format!("Bearer {token}").as_bytes(), auth_raw);
    let authorization: Option<Vec<u8>> = match flags0 & 0b111 {
        0 => None,
        1 => Some(auth_raw.to_vec()),
        2 => Some(bearer(&world.live[0].0)),
        3 => Some(bearer(&world.live[1].0)),
        4 => Some(bearer(&world.live[2].0)),
        5 if flags1 & 0b100_0000 == 0 => Some(bearer(&world.revoked)),
        5 => Some(bearer(&world.expired)),
        6 => Some(bearer("GINT:IMP:")),
        _ => Some(bearer("")),
    };
    let known_user = KNOWN_USERS[usize::from((flags1 >> 4) & 0b11)];
    let users: Vec<&[u8]> = match (flags0 >> 3) & 0b11 {
        0 => vec![],
        1 => vec![user_raw],
        2 => vec![known_user.as_bytes()],
        _ => vec![user_raw, user_raw],
    };
    let method = METHODS[usize::from(flags0 >> 5)].clone();
    let uri = match usize::from(flags1 & 0b111) {
        7 => match Uri::try_from(path_raw) {
            Ok(uri) => uri,
            Err(_) => return,
        },
        i => Uri::from_static(PATHS[i]),
    };
    let twice = flags1 & 0b1000 != 0;

    let mut request = Request::new(Full::<Bytes>::default());
    *request.method_mut() = method.clone();
    *request.uri_mut() = uri.clone();
    let headers = request.headers_mut();
    if let Some(value) = &authorization {
        // A value http refuses is one no client can send.
        let Ok(value) = HeaderValue::from_bytes(value) else {
            return;
        };
        headers.append("authorization", value.clone());
        if twice {
            headers.append("authorization", value);
        }
    }
    for user in &users {
        let Ok(value) = HeaderValue::from_bytes(user) else {
            return;
        };
        headers.append("x-guru-userid", value);
    }

    let mut app = world.app.clone();
    let response = common::serve(&mut app, request);
    let status = response.status();
    let seen = response.extensions().get::<Seen>().cloned();

    assert!(
        LAYER_STATUSES.contains(&status),
        "undocumented status {status}"
    );
    assert_eq!(
        status == StatusCode::OK,
        seen.is_some(),
        "200 exactly when the app ran"
    );
    if authorization.is_some() && twice {
        assert_eq!(status, StatusCode::BAD_REQUEST, "two Authorization headers");
    }
    // The plain valid request is accepted, as Bob, through the full token.
    let plain = flags0 & 0b111 == 2
        && auth_raw.is_empty()
        && users == [BOB.as_bytes()]
        && method == Method::GET
        && uri.path() == PATHS[0]
        && !twice;
    if plain {
        let impersonated = seen.as_ref().and_then(|seen| seen.impersonated.as_ref());
        let (token_id, user_id) = impersonated.map(|(t, u, _)| (*t, u.as_str())).unzip();
        assert_eq!(
            (token_id.flatten(), user_id),
            (Some(world.live[0].1), Some(BOB_ID)),
            "the valid request was refused with {status}"
        );
    }
    let Some(seen) = seen else { return };
    assert!(!seen.user_header, "the user header reached the app");
    assert!(
        seen.impersonated.is_some() || users.is_empty(),
        "a user header passed unverified"
    );
    if let Some((token_id, user_id, organization)) = &seen.impersonated {
        let token_id = token_id.expect("no JWT is sent here: only a token can impersonate");
        let (secret, _, scope) = world
            .live
            .iter()
            .find(|(_, id, _)| *id == token_id)
            .expect("only a live token impersonates");
        let sent = authorization.as_deref().unwrap_or_default();
        assert!(
            sent.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "accepted without the token's secret"
        );
        assert!(
            user_id == ADA_ID || user_id == BOB_ID,
            "impersonated {user_id}, not a member of the token's organization"
        );
        assert_eq!(organization.as_deref(), Some(ACME));
        let reads = [Method::GET, Method::HEAD, Method::OPTIONS].contains(&method);
        match scope {
            Scope::Full => {}
            Scope::ReadOnly => assert!(reads, "a read-only token wrote with {method}"),
            Scope::CardsOnly => {
                assert!(reads, "a read:cards token wrote with {method}");
                assert_eq!(
                    resource(uri.path()),
                    Some("cards"),
                    "read:cards outside cards"
                );
            }
        }
    }
});
