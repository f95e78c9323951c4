//! The copy-paste `curl` walk through both credentials' flows that the gateway prints at start. The
//! steps run in order in one shell: later ones use the `$TOKEN`, `$TOKEN_ID`, `$READ_ONLY`,
//! `$BOB_ONLY` and `$JWT` that earlier ones set. `tests/gateway.rs` runs them exactly as printed.

use std::fmt::{self, Write};

use super::{
    JWKS_PATH, TOKENS_PATH,
    accounts::{DEMO_ADMIN_KEY, DEMO_ORGANIZATION},
};

/// What a step's output shows when it works.
#[derive(Clone, Copy, Debug)]
pub enum Expect {
    /// This HTTP status.
    Status(u16),
    /// This `grpc-status`.
    Grpc(u8),
    /// This text.
    Prints(&'static str),
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Status(status) => write!(f, "HTTP {status}"),
            Expect::Grpc(code) => write!(f, "grpc-status {code}"),
            Expect::Prints(text) => write!(f, "prints {text}"),
        }
    }
}

/// One step of the walk.
pub struct Step {
    pub says: &'static str,
    pub command: String,
    pub expect: Expect,
}

const BOB: &str = "bob@example.com";
const ADA: &str = "ada@example.com";
const BOB_ID: &str = "7cdb765a-3251-483f-9193-249a5e472fcb";

/// The steps against the gateway at `base` (`http://127.0.0.1:3000`).
pub fn steps(base: &str) -> Vec<Step> {
    use Expect::*;
    let admin = format!("-H 'Authorization: Bearer {DEMO_ADMIN_KEY}'");
    let tokens = format!("{base}{TOKENS_PATH}");
    let create = |body: &str, variable: &str| {
        format!(
            "CREATED=$(curl -s -X POST {admin} -H 'Content-Type: application/json' -d '{body}' {tokens})\n\
             echo \"$CREATED\"\n\
             {variable}=$(echo \"$CREATED\" | sed -E 's/.*\"token\":\"([^\"]+)\".*/\\1/')"
        )
    };
    let grpc_check = |authorization: &str| {
        format!(
            "printf '\\0\\0\\0\\0\\0' | curl -s -i -o - --http2-prior-knowledge \
             -H 'content-type: application/grpc' -H 'te: trailers' {authorization}\
             --data-binary @- {base}/grpc.health.v1.Health/Check"
        )
    };
    // The refused call sends no message: the layer answers before reading one, and curl (7.88
    // at least) fails now and then when an HTTP/2 answer beats the request body it is still sending.
    let grpc_refused = |authorization: &str| {
        format!(
            "curl -s -i -X POST --http2-prior-knowledge \
             -H 'content-type: application/grpc' -H 'te: trailers' {authorization}\
             {base}/grpc.health.v1.Health/Check"
        )
    };
    vec![
        step(
            "Health, no credential",
            format!("curl -i {base}/healthz"),
            Status(200),
        ),
        step(
            "Who am I with the demo admin's own key",
            format!("curl -i {admin} {base}/api/v1/whoami"),
            Status(200),
        ),
        step(
            "A wrong key on an authenticated route",
            format!("curl -i -H 'Authorization: Bearer wrong-key' {base}/api/v1/whoami"),
            Status(401),
        ),
        step(
            "Create an impersonation token; the only time it is shown whole",
            create(r#"{"name": "Support"}"#, "TOKEN")
                + "\nTOKEN_ID=$(echo \"$CREATED\" | sed -E 's/.*\"id\":\"([^\"]+)\".*/\\1/')",
            Prints("\"token\":\"GINT:IMP:"),
        ),
        step(
            "Act as Bob, named in the X-Guru-UserID header",
            format!(
                "curl -i -H \"Authorization: Bearer $TOKEN\" -H 'X-Guru-UserID: {BOB}' {base}/api/v1/whoami"
            ),
            Status(200),
        ),
        step(
            "Act as Bob, named after the token",
            format!("curl -i -H \"Authorization: Bearer $TOKEN:{BOB}\" {base}/api/v1/whoami"),
            Status(200),
        ),
        step(
            "List the organization's tokens, masked",
            format!("curl -i {admin} {tokens}"),
            Status(200),
        ),
        step(
            "Bob may not create tokens: he is no admin",
            format!("curl -i -X POST -H 'Authorization: Bearer demo-bob-key' {tokens}"),
            Status(403),
        ),
        step(
            "A read-only token",
            create(r#"{"name": "Read only", "roles": ["read:*"]}"#, "READ_ONLY"),
            Prints("\"roles\":[\"read:*\"]"),
        ),
        step(
            "Read-only: Bob's cards can be read",
            format!("curl -i -H \"Authorization: Bearer $READ_ONLY:{BOB}\" {base}/api/v1/cards"),
            Status(200),
        ),
        step(
            "Read-only: creating a card is refused (insufficient_scope)",
            format!(
                "curl -i -X POST -H \"Authorization: Bearer $READ_ONLY:{BOB}\" \
                 -H 'Content-Type: application/json' -d '{{\"title\": \"Nope\"}}' {base}/api/v1/cards"
            ),
            Status(403),
        ),
        step(
            "The full token creates a card as Bob",
            format!(
                "curl -i -X POST -H \"Authorization: Bearer $TOKEN:{BOB}\" \
                 -H 'Content-Type: application/json' -d '{{\"title\": \"Fix the login page\"}}' {base}/api/v1/cards"
            ),
            Status(201),
        ),
        step(
            "Impersonating, the token service is out of reach: it is a protected route",
            format!("curl -i -X POST -H \"Authorization: Bearer $TOKEN:{BOB}\" {tokens}"),
            Prints("this request cannot be made while impersonating"),
        ),
        step(
            "A token narrowed to Bob: users, by id, email or name, are answered as ids",
            create(
                &format!(r#"{{"name": "Bob only", "users": ["{BOB}"]}}"#),
                "BOB_ONLY",
            ),
            Prints(r#""users":["7cdb765a-3251-483f-9193-249a5e472fcb"]"#),
        ),
        step(
            "The narrowed token acts as Bob",
            format!("curl -i -H \"Authorization: Bearer $BOB_ONLY:{BOB}\" {base}/api/v1/whoami"),
            Status(200),
        ),
        step(
            "The narrowed token cannot act as Ada (access_denied)",
            format!("curl -i -H \"Authorization: Bearer $BOB_ONLY:{ADA}\" {base}/api/v1/whoami"),
            Status(403),
        ),
        step(
            "A member of another organization cannot be reached",
            format!(
                "curl -i -H \"Authorization: Bearer $TOKEN:eve@elsewhere.example\" {base}/api/v1/whoami"
            ),
            Status(403),
        ),
        step(
            "A user header without a token is spoofing",
            format!("curl -i -H 'X-Guru-UserID: {BOB}' {base}/api/v1/whoami"),
            Status(403),
        ),
        step(
            "gRPC health as Bob (grpc-status 0 in the trailers)",
            grpc_check(&format!(
                "-H \"authorization: Bearer $TOKEN\" -H 'x-guru-userid: {BOB}' "
            )),
            Grpc(0),
        ),
        step(
            "Revoke the token",
            format!("curl -i -X DELETE {admin} {tokens}/$TOKEN_ID"),
            Status(204),
        ),
        step(
            "The revoked token stops working at once",
            format!("curl -i -H \"Authorization: Bearer $TOKEN:{BOB}\" {base}/api/v1/whoami"),
            Status(401),
        ),
        step(
            "gRPC with the revoked token: UNAUTHENTICATED (grpc-status 16)",
            grpc_refused(&format!("-H \"authorization: Bearer $TOKEN:{BOB}\" ")),
            Grpc(16),
        ),
        step(
            "An organization impersonation JWT for Bob, by his id",
            format!(
                "JWT=$(curl -s -X POST {admin} -H 'Content-Type: application/vnd.api+json' \
                 -d '{{\"data\": {{\"type\": \"impersonation\", \"attributes\": \
                 {{\"reason\": \"Support ticket 42\", \"user\": \"{BOB_ID}\"}}}}}}' \
                 {base}/api/v2/organizations/{DEMO_ORGANIZATION}/impersonation \
                 | sed -E 's/.*\"json_web_token\":\"([^\"]+)\".*/\\1/')\n\
                 echo \"$JWT\""
            ),
            Prints("eyJ"),
        ),
        step(
            "Act as Bob with the JWT",
            format!("curl -i -H \"Authorization: Bearer $JWT\" {base}/api/v1/whoami"),
            Status(200),
        ),
        step(
            "The public keys that verify the JWTs, a JWK Set ({\"keys\":[]} for HS256)",
            format!("curl -i {base}{JWKS_PATH}"),
            Status(200),
        ),
    ]
}

fn step(says: &'static str, command: String, expect: Expect) -> Step {
    Step {
        says,
        command,
        expect,
    }
}

/// What the gateway prints at start with the demo users.
pub fn text(base: &str) -> String {
    let mut text = format!(
        "Demo organization {DEMO_ORGANIZATION}; its admin's key: {DEMO_ADMIN_KEY}\n\
         Try, in one shell, in this order:\n"
    );
    for (number, step) in steps(base).iter().enumerate() {
        let (says, expect) = (step.says, step.expect);
        let _ = write!(
            text,
            "\n# {}. {says} ({expect})\n{}\n",
            number + 1,
            step.command
        );
    }
    text
}
