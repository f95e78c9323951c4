//! The example gateway's JWT keys, served on loopback: a key generated on the first start is kept
//! and read back, so a restarted gateway accepts the JWTs it minted before; EdDSA and ES256 JWTs
//! verify with an independent JOSE library (jwt-compact) from the gateway's JWK Set document
//! alone; an HS256 gateway publishes an empty set; a bad key is a clear error at start.

mod gateway_app;

use std::{
    fs,
    path::{Path, PathBuf},
    sync::Arc,
};

use http::{Method, StatusCode, header};
use jwt_compact::{
    Algorithm, AlgorithmExt, TimeOptions, UntrustedToken,
    alg::{Ed25519, Es256},
    jwk::JsonWebKey,
};
use serde_json::{Value, json};
use tower_impersonation::{
    MemoryStore, Timestamp,
    jwt::{JwtAlgorithm, JwtKeys},
};

use gateway_app::Running;

use impersonation_gateway::app::{
    Gateway, JWKS_PATH,
    accounts::{Accounts, DEMO_ADMIN_KEY, DEMO_ORGANIZATION, DEMO_USERS},
    jwt_key::{GENERATED_KEY_FILE, KeySource, load_or_generate},
};

const BOB_ID: &str = "7cdb765a-3251-483f-9193-249a5e472fcb";
const ALGORITHMS: [JwtAlgorithm; 3] = [
    JwtAlgorithm::Hs256,
    JwtAlgorithm::EdDsa,
    JwtAlgorithm::Es256,
];

/// A directory of its own under the system's temporary one (tempfile's), removed when dropped.
struct TempDir(tempfile::TempDir);

impl TempDir {
    fn new(name: &str) -> Self {
        let prefix = format!("tower-impersonation-{name}-");
        Self(tempfile::Builder::new().prefix(&prefix).tempdir().unwrap())
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
}

async fn start(keys: JwtKeys) -> Running {
    gateway_app::serve(Gateway {
        accounts: Arc::new(Accounts::from_json(DEMO_USERS).unwrap()),
        store: MemoryStore::new(),
        keys,
        rate_limit: None,
        protected: Vec::new(),
        audit: Arc::new(tower_impersonation::TracingAudit),
    })
    .await
}

/// The keys a gateway started in `dir` with no key given gets: generated, or kept from before.
fn keys_in(dir: &TempDir, algorithm: JwtAlgorithm) -> (JwtKeys, KeySource) {
    load_or_generate(algorithm, None, None, None, &dir.join(GENERATED_KEY_FILE)).unwrap()
}

impl Running {
    /// An impersonation JWT for Bob, minted by the demo admin.
    async fn jwt(&self) -> String {
        let path = format!("/api/v2/organizations/{DEMO_ORGANIZATION}/impersonation");
        let body = json!({"data": {"type": "impersonation",
            "attributes": {"reason": "ticket 42", "user": BOB_ID}}});
        let auth = format!("Bearer {DEMO_ADMIN_KEY}");
        let headers = [
            ("authorization", auth.as_str()),
            ("content-type", "application/vnd.api+json"),
        ];
        let (status, _, document) = self
            .request(Method::POST, &path, &headers, &body.to_string())
            .await;
        assert_eq!(status, StatusCode::OK);
        let document: Value = serde_json::from_slice(&document).unwrap();
        let attributes = &document["data"]["attributes"];
        assert_eq!(
            attributes.as_object().unwrap().keys().collect::<Vec<_>>(),
            [
                "created_at",
                "expires_at",
                "json_web_token",
                "jti",
                "updated_at",
                "updated_in_db_at"
            ],
            "the JSON:API document, with the JWT's id and expiry"
        );
        attributes["json_web_token"].as_str().unwrap().to_owned()
    }

    /// Who the gateway says the bearer of `jwt` is: the status and the user's id.
    async fn whoami(&self, jwt: &str) -> (StatusCode, Value) {
        let auth = format!("Bearer {jwt}");
        let (status, _, body) = self
            .request(
                Method::GET,
                "/api/v1/whoami",
                &[("authorization", &auth)],
                "",
            )
            .await;
        let me: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        (status, me["id"].clone())
    }

    /// The JWK Set document, checked for its headers.
    async fn jwks(&self) -> Value {
        let (status, headers, body) = self.request(Method::GET, JWKS_PATH, &[], "").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "application/jwk-set+json");
        assert_eq!(headers[header::CACHE_CONTROL], "public, max-age=300");
        serde_json::from_slice(&body).unwrap()
    }
}

fn header_of(jwt: &str) -> Value {
    let untrusted = UntrustedToken::new(jwt).unwrap();
    json!({"alg": untrusted.algorithm(), "kid": untrusted.header().key_id})
}

#[tokio::test]
async fn a_restarted_gateway_accepts_the_jwts_it_minted_before() {
    for algorithm in ALGORITHMS {
        let dir = TempDir::new("restart");
        let (keys, source) = keys_in(&dir, algorithm);
        assert_eq!(source, KeySource::Generated(dir.join(GENERATED_KEY_FILE)));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.join(GENERATED_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{algorithm}");
        }
        let first = start(keys).await;
        let jwt = first.jwt().await;
        assert_eq!(header_of(&jwt)["alg"], algorithm.name());
        assert_eq!(first.whoami(&jwt).await, (StatusCode::OK, json!(BOB_ID)));
        first.stop();

        let (keys, source) = keys_in(&dir, algorithm);
        assert_eq!(source, KeySource::Kept(dir.join(GENERATED_KEY_FILE)));
        let second = start(keys).await;
        assert_eq!(
            second.whoami(&jwt).await,
            (StatusCode::OK, json!(BOB_ID)),
            "{algorithm}: the restarted gateway refused its own JWT"
        );

        // A gateway with a newly generated key (the file deleted) no longer accepts it.
        second.stop();
        fs::remove_file(dir.join(GENERATED_KEY_FILE)).unwrap();
        let (keys, _) = keys_in(&dir, algorithm);
        let third = start(keys).await;
        assert_eq!(third.whoami(&jwt).await.0, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn eddsa_and_es256_jwts_verify_with_an_independent_library_from_the_jwks_alone() {
    for algorithm in [JwtAlgorithm::EdDsa, JwtAlgorithm::Es256] {
        let dir = TempDir::new("jwks");
        let (keys, _) = keys_in(&dir, algorithm);
        let gateway = start(keys).await;
        let jwt = gateway.jwt().await;
        let document = gateway.jwks().await;

        // Only what the document and the token say: the token's kid picks the JWK.
        let untrusted = UntrustedToken::new(&jwt).unwrap();
        let kid = untrusted.header().key_id.clone().expect("a kid");
        let jwks = document["keys"].as_array().unwrap();
        let jwk = jwks.iter().find(|jwk| jwk["kid"] == kid).expect("the kid");
        for jwk in jwks {
            assert!(jwk.get("d").is_none(), "a private key is published: {jwk}");
        }
        assert_eq!(jwk["alg"], algorithm.name());
        assert_eq!(jwk["use"], "sig");
        let jwk: JsonWebKey<'_> = serde_json::from_value(jwk.clone()).unwrap();
        let claims = match algorithm {
            JwtAlgorithm::EdDsa => {
                let key = <Ed25519 as Algorithm>::VerifyingKey::try_from(&jwk).unwrap();
                let token = Ed25519.validator::<Value>(&key).validate(&untrusted);
                token
                    .expect("jwt-compact verifies the EdDSA JWT")
                    .claims()
                    .clone()
            }
            _ => {
                let key = <Es256 as Algorithm>::VerifyingKey::try_from(&jwk).unwrap();
                let token = Es256.validator::<Value>(&key).validate(&untrusted);
                token
                    .expect("jwt-compact verifies the ES256 JWT")
                    .claims()
                    .clone()
            }
        };
        claims.validate_expiration(&TimeOptions::default()).unwrap();
        assert_eq!(claims.custom["user_id"], BOB_ID);
        assert_eq!(claims.custom["org"], DEMO_ORGANIZATION);

        // A token signed by another key of the same algorithm does not verify with it.
        let (stranger, _) = keys_in(&TempDir::new("stranger"), algorithm);
        let stranger = start(stranger).await.jwt().await;
        let untrusted = UntrustedToken::new(&stranger).unwrap();
        let refused = match algorithm {
            JwtAlgorithm::EdDsa => {
                let key = <Ed25519 as Algorithm>::VerifyingKey::try_from(&jwk).unwrap();
                Ed25519
                    .validator::<Value>(&key)
                    .validate(&untrusted)
                    .is_err()
            }
            _ => {
                let key = <Es256 as Algorithm>::VerifyingKey::try_from(&jwk).unwrap();
                Es256.validator::<Value>(&key).validate(&untrusted).is_err()
            }
        };
        assert!(refused, "{algorithm}: another key's JWT verified");

        // The crate itself, given nothing but the document, verifies it too and cannot sign.
        let verifier = JwtKeys::from_jwks(&document.to_string()).unwrap();
        assert_eq!(verifier.verify(&jwt).unwrap().user_id, BOB_ID);
    }
}

#[tokio::test]
async fn an_hs256_gateway_publishes_an_empty_jwk_set_and_only_get_and_head_are_allowed() {
    let dir = TempDir::new("hs256");
    let (keys, _) = keys_in(&dir, JwtAlgorithm::Hs256);
    let gateway = start(keys).await;
    assert_eq!(gateway.jwks().await, json!({"keys": []}));
    let (status, headers, body) = gateway.request(Method::HEAD, JWKS_PATH, &[], "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/jwk-set+json");
    assert!(body.is_empty());
    let (status, headers, _) = gateway.request(Method::POST, JWKS_PATH, &[], "{}").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers[header::ALLOW], "GET, HEAD");
}

#[test]
fn the_key_comes_from_the_file_then_the_environment_then_the_flag_then_the_kept_file() {
    let dir = TempDir::new("precedence");
    let generated = dir.join(GENERATED_KEY_FILE);
    let file = dir.join("secret");
    fs::write(&file, "a secret of 32 bytes or more, from a file\n").unwrap();
    let env = || Some("a secret of 32 bytes or more, from the environment".to_owned());
    let flag = || Some("a secret of 32 bytes or more, on the command line".to_owned());
    let hs256 = JwtAlgorithm::Hs256;
    let source = |file: Option<&Path>, env, flag| {
        let (_, source) = load_or_generate(hs256, file, env, flag, &generated).unwrap();
        source
    };
    assert_eq!(
        source(Some(&file), env(), flag()),
        KeySource::KeyFile(file.clone())
    );
    assert_eq!(source(None, env(), flag()), KeySource::Environment);
    assert_eq!(source(None, None, flag()), KeySource::Flag);
    assert!(!generated.exists(), "a given key generates nothing");
    assert_eq!(
        source(None, None, None),
        KeySource::Generated(generated.clone())
    );

    // The file's trailing line break is not part of the secret.
    let (from_file, _) = load_or_generate(hs256, Some(&file), None, None, &generated).unwrap();
    let token = from_file
        .sign(
            &serde_json::from_value(
                json!({"user_id": "u", "exp": Timestamp::now().as_secs() + 60}),
            )
            .unwrap(),
        )
        .unwrap();
    let same = JwtKeys::hs256(b"a secret of 32 bytes or more, from a file").unwrap();
    assert!(same.verify(&token).is_ok());

    let (keys, source) = load_or_generate(hs256, None, None, flag(), &generated).unwrap();
    let banner = source.describe(&keys);
    assert!(banner.contains("warning") && banner.contains("process listing"));
    let (keys, source) = load_or_generate(hs256, None, env(), None, &generated).unwrap();
    assert!(!source.describe(&keys).contains("warning"));

    // A key file others may read is named in a warning.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        let (keys, source) = load_or_generate(hs256, Some(&file), None, None, &generated).unwrap();
        let banner = source.describe(&keys);
        assert!(banner.contains("warning: other users may read"), "{banner}");
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
        let (keys, source) = load_or_generate(hs256, Some(&file), None, None, &generated).unwrap();
        assert!(!source.describe(&keys).contains("warning"));
    }
}

#[test]
fn a_short_unreadable_or_mismatched_key_is_a_clear_error_at_start() {
    let dir = TempDir::new("errors");
    let generated = dir.join(GENERATED_KEY_FILE);
    let short = dir.join("short");
    fs::write(&short, "too short\n").unwrap();
    let missing = dir.join("missing");
    let (eddsa, _) = keys_in(&dir, JwtAlgorithm::EdDsa);
    drop(eddsa);
    let pem = dir.join("ed25519.pem");
    fs::copy(&generated, &pem).unwrap();
    let error = |algorithm, file: Option<&Path>, env: Option<&str>| {
        load_or_generate(algorithm, file, env.map(str::to_owned), None, &generated)
            .expect_err("refused")
    };
    for (error, says) in [
        (
            error(JwtAlgorithm::Hs256, Some(&short), None),
            "--jwt-key-file",
        ),
        (
            error(JwtAlgorithm::Hs256, Some(&short), None),
            "9 bytes long",
        ),
        (
            error(JwtAlgorithm::Hs256, None, Some("short")),
            "IMPERSONATION_JWT_SECRET",
        ),
        (error(JwtAlgorithm::Hs256, Some(&missing), None), "missing"),
        (
            error(JwtAlgorithm::Hs256, Some(dir.0.path()), None),
            "--jwt-key-file",
        ),
        (
            error(JwtAlgorithm::Hs256, Some(&pem), None),
            "HS256 takes a secret",
        ),
        (error(JwtAlgorithm::Es256, Some(&pem), None), "P-256"),
        (
            error(JwtAlgorithm::EdDsa, Some(&short), None),
            "holds no PEM key",
        ),
        (
            load_or_generate(JwtAlgorithm::Hs256, None, None, None, &missing.join("key"))
                .expect_err("no directory to keep it in"),
            "give one with --jwt-key-file",
        ),
        // The kept EdDSA key, with another algorithm asked for.
        (error(JwtAlgorithm::Hs256, None, None), "delete the file"),
        (error(JwtAlgorithm::Es256, None, None), "P-256"),
    ] {
        assert!(error.contains(says), "{error:?} does not say {says:?}");
        assert!(!error.contains("BEGIN PRIVATE KEY-----\nM"), "{error}");
    }
}

#[test]
fn instances_starting_together_share_one_generated_key() {
    let dir = TempDir::new("race");
    let path = dir.join(GENERATED_KEY_FILE);
    let ids: Vec<String> = std::thread::scope(|scope| {
        let starts: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    let (keys, _) =
                        load_or_generate(JwtAlgorithm::EdDsa, None, None, None, &path).unwrap();
                    keys.key_id().unwrap().to_owned()
                })
            })
            .collect();
        starts.into_iter().map(|s| s.join().unwrap()).collect()
    });
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let leftovers = fs::read_dir(&dir.0).unwrap().count();
    assert_eq!(leftovers, 1, "no temporary file is left behind");
}
