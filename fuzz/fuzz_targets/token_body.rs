//! The token service's create body: any bytes as the body of
//! `POST /api/v1/api-tokens/impersonation` from an admin.
//!
//! Checks: the status is one the OpenAPI document lists for the operation (200, 400, 401, 403,
//! 409, 413, 422, 503) and never 5xx; every answer is JSON (`error_description` for a refusal); a
//! refusal stores nothing, and a 200 stores exactly one token, whose secret the answer shows and
//! whose roles are the ones the answer lists. Each created token is revoked again, so the store
//! stays small for the next input.
#![no_main]

mod common;

use std::sync::LazyLock;

use common::{ACME, block_on};
use http::StatusCode;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tower_impersonation::{
    MemoryStore, TokenPrefix, TokenSecret, TokenStore, services::TokenService,
};
use uuid::Uuid;

struct World {
    store: MemoryStore,
    service: TokenService<MemoryStore>,
}

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let store = MemoryStore::new();
    World {
        service: TokenService::new(store.clone(), common::directory()),
        store,
    }
});

const DOCUMENTED: [u16; 8] = [200, 400, 401, 403, 409, 413, 422, 503];

fuzz_target!(|data: &[u8]| {
    let world = &*WORLD;
    let before = world.store.len();
    let mut service = world.service.clone();
    let (status, body) = common::post_as_admin(
        &mut service,
        "/api/v1/api-tokens/impersonation",
        "application/json",
        data,
    );
    assert!(
        DOCUMENTED.contains(&status.as_u16()) && !status.is_server_error(),
        "undocumented status {status}"
    );
    let answer: Value = serde_json::from_slice(&body).expect("every answer is JSON");
    if status != StatusCode::OK {
        assert_eq!(world.store.len(), before, "a refused create stored a token");
        let description = answer.get("error_description").and_then(Value::as_str);
        assert!(description.is_some_and(|d| !d.is_empty()), "{answer}");
        return;
    }
    assert_eq!(
        world.store.len(),
        before + 1,
        "a 200 stores exactly one token"
    );
    let secret = answer
        .get("token")
        .and_then(Value::as_str)
        .expect("the token");
    let secret = TokenSecret::parse(&TokenPrefix::default(), secret).expect("a well-formed token");
    let record = block_on(world.store.lookup(&secret.digest()))
        .unwrap()
        .expect("the shown token is the stored one");
    let id: Uuid = answer
        .get("id")
        .and_then(Value::as_str)
        .and_then(|id| id.parse().ok())
        .expect("an id");
    assert_eq!(record.id, id);
    let roles: Vec<&str> = answer["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .map(|role| role.as_str().expect("role strings"))
        .collect();
    assert_eq!(record.roles.to_strings(), roles);
    assert_eq!(
        answer.get("name").and_then(Value::as_str),
        record.name.as_deref()
    );
    assert!(block_on(world.store.revoke(ACME, id)).unwrap());
});
