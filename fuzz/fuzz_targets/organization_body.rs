//! The organization impersonation service's body: any bytes as the JSON:API document of
//! `POST /api/v2/organizations/acme/impersonation` from acme's admin, with the right content type.
//!
//! Checks: the status is one the OpenAPI document lists for the operation (200, 400, 401, 403,
//! 404, 409, 413, 415, 422, 503) and never 5xx; the answer is a JSON:API document, `data` for a
//! 200 and `errors` otherwise; a 200's JWT verifies under the key (independently of jsonwebtoken
//! too), names a member of acme and the admin as its actor.
#![no_main]

mod common;

use std::sync::LazyLock;

use common::{ACME, ADA_ID, BOB_ID, JWT_SECRET};
use http::StatusCode;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tower_impersonation::{
    MemoryStore, StaticDirectory, jwt::JwtKeys, services::OrganizationImpersonationService,
};

struct World {
    service: OrganizationImpersonationService<StaticDirectory, MemoryStore>,
    keys: JwtKeys,
}

static WORLD: LazyLock<World> = LazyLock::new(|| World {
    service: OrganizationImpersonationService::new(
        common::directory(),
        JwtKeys::hs256(JWT_SECRET).unwrap(),
        MemoryStore::new(),
    ),
    keys: JwtKeys::hs256(JWT_SECRET).unwrap(),
});

const DOCUMENTED: [u16; 10] = [200, 400, 401, 403, 404, 409, 413, 415, 422, 503];

fuzz_target!(|data: &[u8]| {
    let world = &*WORLD;
    let mut service = world.service.clone();
    let (status, body) = common::post_as_admin(
        &mut service,
        "/api/v2/organizations/acme/impersonation",
        "application/vnd.api+json",
        data,
    );
    assert!(
        DOCUMENTED.contains(&status.as_u16()) && !status.is_server_error(),
        "undocumented status {status}"
    );
    let document: Value = serde_json::from_slice(&body).expect("every answer is JSON");
    if status != StatusCode::OK {
        let errors = document.get("errors").and_then(Value::as_array);
        assert!(errors.is_some_and(|e| !e.is_empty()), "{document}");
        return;
    }
    let attributes = &document["data"]["attributes"];
    let token = attributes["json_web_token"].as_str().expect("a JWT");
    let claims = world.keys.verify(token).expect("the minted JWT verifies");
    let (_, independent) = common::independent_verify(token, JWT_SECRET).expect("signed");
    assert_eq!(
        independent["user_id"].as_str(),
        Some(claims.user_id.as_str())
    );
    assert!(
        claims.user_id == ADA_ID || claims.user_id == BOB_ID,
        "a JWT for {}, not a member of acme",
        claims.user_id
    );
    assert_eq!(
        document["data"]["id"].as_str(),
        Some(claims.user_id.as_str())
    );
    assert_eq!(claims.org.as_deref(), Some(ACME));
    assert_eq!(claims.act.map(|act| act.sub).as_deref(), Some(ADA_ID));
});
