//! The token service and the organization impersonation service on their own, and the JWTs they
//! mint checked by an independent HS256 decoder (hmac + base64, not jsonwebtoken).

use crate::common::{
    independent_jwt,
    world::{ACME, ADA_ID, BOB_ID, CAROL_ID, directory},
};

use std::{
    convert::Infallible,
    sync::{Arc, Mutex},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use independent_jwt::{bare_jwt, independent_decode, jwt_with_header};
use serde_json::{Value, json};
use tower::{Service, ServiceExt, service_fn};
use tower_impersonation::{
    Actor, AuditEvent, AuditOutcome, CredentialSource, ImpersonatedUser, ImpersonationLayer,
    MemoryStore, Roles, StaticDirectory, Timestamp, TokenPrefix, TokenRecord, TokenStore,
    UserDirectory,
    directory::{DirectoryError, Member, UserWithMemberships},
    jwt::JwtKeys,
    services::{Caller, OrganizationImpersonationService, TokenService},
};

const SECRET: &[u8] = b"a test secret that is 32 bytes!!";
const BASE: &str = "/api/v1/api-tokens/impersonation";

fn admin() -> Caller {
    Caller::new(ADA_ID, ACME, true)
}

fn request(method: Method, uri: &str, caller: Option<Caller>, body: &str) -> Request<Full<Bytes>> {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    if let Some(caller) = caller {
        request.extensions_mut().insert(caller);
    }
    request
}

async fn send<S>(
    service: &S,
    request: Request<Full<Bytes>>,
) -> (StatusCode, Value, Response<Full<Bytes>>)
where
    S: Service<Request<Full<Bytes>>, Response = Response<Full<Bytes>>, Error = Infallible> + Clone,
{
    let response = service.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (
        parts.status,
        json,
        Response::from_parts(parts, Full::new(bytes)),
    )
}

async fn create(service: &TokenService<MemoryStore>, body: &str) -> Value {
    let (status, json, _) = send(service, request(Method::POST, BASE, Some(admin()), body)).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    json
}

// ---- token service -------------------------------------------------------------------------

#[tokio::test]
async fn create_without_body_gives_a_full_access_token_shown_once() {
    let service = TokenService::new(MemoryStore::new(), directory());
    let created = create(&service, "").await;
    let token = created["token"].as_str().unwrap();
    assert!(
        token.starts_with("GINT:IMP:") && token.len() == 45,
        "{token}"
    );
    assert_eq!(created["roles"], json!(["*:*"]));
    assert!(created.get("name").is_none());
    let (_, listed, _) = send(&service, request(Method::GET, BASE, Some(admin()), "")).await;
    assert!(
        !listed.to_string().contains(&token[9..]),
        "listing must not echo the token"
    );
}

#[tokio::test]
async fn create_with_a_name_and_roles_returns_every_field() {
    let service = TokenService::new(MemoryStore::new(), directory());
    let created = create(
        &service,
        r#"{"name": "XYZ Integration Token", "roles": ["read:*"]}"#,
    )
    .await;
    assert_eq!(created["name"], "XYZ Integration Token");
    assert_eq!(created["roles"], json!(["read:*"]));
    assert!(uuid::Uuid::parse_str(created["id"].as_str().unwrap()).is_ok());
    assert_ne!(
        created["id"].as_str().unwrap(),
        &created["token"].as_str().unwrap()[9..]
    );
}

#[tokio::test]
async fn a_token_narrowed_to_some_members_answers_and_lists_their_ids() {
    let service = TokenService::new(MemoryStore::new(), directory());
    let body = r#"{"users": ["bob.relay@acme.test", "Ada", "a-1"]}"#;
    let created = create(&service, body).await;
    let bob = BOB_ID;
    assert_eq!(created["users"], json!([bob, ADA_ID]));
    let (_, listed, _) = send(&service, request(Method::GET, BASE, Some(admin()), "")).await;
    assert_eq!(listed[0]["users"], json!([bob, ADA_ID]));
    let open = create(&service, "").await;
    assert!(
        open.get("users").is_none(),
        "a token not narrowed shows no users"
    );
}

#[tokio::test]
async fn naming_anyone_outside_the_organization_is_422_with_the_position_and_stores_nothing() {
    let store = MemoryStore::new();
    let service = TokenService::new(store.clone(), directory());
    for (body, position) in [
        (r#"{"users": ["bob@acme.test", "carol@globex.test"]}"#, 1),
        (r#"{"users": ["nobody@acme.test"]}"#, 0),
    ] {
        let (status, json, _) =
            send(&service, request(Method::POST, BASE, Some(admin()), body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
        assert_eq!(json["error"], "unknown_member");
        assert_eq!(
            json["error_description"],
            format!("users[{position}] is not a member of this organization")
        );
    }
    assert!(store.list(ACME).await.unwrap().is_empty());
}

#[tokio::test]
async fn bad_create_bodies_are_400_and_store_nothing() {
    let store = MemoryStore::new();
    let service = TokenService::new(store.clone(), directory());
    for body in [
        "{",
        r#"{"roles": "read:*"}"#,
        r#"{"roles": ["superuser"]}"#,
        r#"{"rolez": []}"#,
        "[1]",
    ] {
        let (status, json, _) =
            send(&service, request(Method::POST, BASE, Some(admin()), body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(json["error"], "invalid_request");
        assert!(json["error_description"].as_str().unwrap().len() > 10);
    }
    assert!(store.is_empty());
}

/// An unknown field is refused even when null (`{"": null}` included), while a known field that
/// is null counts as absent.
#[tokio::test]
async fn unknown_fields_are_refused_even_null_and_known_null_fields_count_as_absent() {
    let store = MemoryStore::new();
    let service = TokenService::new(store.clone(), directory());
    for body in [
        r#"{"": null}"#,
        r#"{"rolez": null}"#,
        r#"{"name": null, "x": null}"#,
    ] {
        let (status, json, _) =
            send(&service, request(Method::POST, BASE, Some(admin()), body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let description = json["error_description"].as_str().unwrap();
        assert!(description.contains("unknown field"), "{description}");
    }
    assert!(store.is_empty());
    let created = create(
        &service,
        r#"{"name": null, "roles": null, "expiresAt": null}"#,
    )
    .await;
    assert_eq!(created["roles"], json!(["*:*"]));
    assert!(created.get("name").is_none() && created.get("expiresAt").is_none());
}

#[tokio::test]
async fn oversized_body_is_413() {
    let service = TokenService::new(MemoryStore::new(), directory()).body_limit(64);
    let body = format!(r#"{{"name": "{}"}}"#, "a".repeat(100));
    let (status, _, _) = send(&service, request(Method::POST, BASE, Some(admin()), &body)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn callers_are_checked_before_anything_else() {
    let service = TokenService::new(MemoryStore::new(), directory());
    let (status, _, _) = send(&service, request(Method::POST, BASE, None, "")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let member = Caller::new("u2", ACME, false);
    let (status, _, _) = send(&service, request(Method::GET, BASE, Some(member), "")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn impersonated_requests_cannot_mint_more_impersonation() {
    let service = TokenService::new(MemoryStore::new(), directory());
    let mut req = request(Method::POST, BASE, Some(admin()), "");
    req.extensions_mut().insert(impersonated());
    let (status, _, _) = send(&service, req).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let orgs = OrganizationImpersonationService::new(
        directory(),
        JwtKeys::hs256(SECRET).unwrap(),
        MemoryStore::new(),
    );
    let mut req = jsonapi_request(Some(admin()), &ask("bob@acme.test"));
    req.extensions_mut().insert(impersonated());
    let (status, json, _) = send(&orgs, req).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{json}");
}

fn impersonated() -> ImpersonatedUser {
    let user = tower_impersonation::User {
        id: ADA_ID.into(),
        email: "ada@acme.test".into(),
        name: "Ada".into(),
    };
    ImpersonatedUser::new(
        user.into(),
        Some(ACME.into()),
        Actor::Unattributed,
        Roles::full_access(),
        CredentialSource::Jwt,
    )
}

#[tokio::test]
async fn listing_masks_each_token() {
    let service = TokenService::new(MemoryStore::new(), directory());
    let named = create(&service, r#"{"name": "First Integration"}"#).await;
    let unnamed = create(&service, r#"{"roles": ["read:*"]}"#).await;
    let (status, listed, _) = send(&service, request(Method::GET, BASE, Some(admin()), "")).await;
    assert_eq!(status, StatusCode::OK);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    for created in [&named, &unnamed] {
        let entry = listed
            .iter()
            .find(|entry| entry["id"] == created["id"])
            .expect("every created token is listed");
        let token = created["token"].as_str().unwrap();
        let masked = format!(
            "GINT:IMP:xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxx{}",
            &token[token.len() - 4..]
        );
        assert_eq!(entry["token"], masked);
        assert_eq!(entry["roles"], created["roles"]);
        assert_eq!(
            entry.get("name"),
            created.get("name"),
            "name omitted when none"
        );
        assert_listing_date(entry["dateCreated"].as_str().unwrap());
        assert!(entry.get("lastUsed").is_none());
    }
}

fn assert_listing_date(date: &str) {
    // 2024-07-23T16:11:25.257+0000
    let shape: String = date
        .chars()
        .map(|c| if c.is_ascii_digit() { 'd' } else { c })
        .collect();
    assert_eq!(shape, "dddd-dd-ddTdd:dd:dd.ddd+dddd", "{date}");
    assert!(date.ends_with("+0000"));
}

#[tokio::test]
async fn listing_shows_only_the_callers_organization() {
    let service = TokenService::new(MemoryStore::new(), directory());
    create(&service, "").await;
    let carol = Caller::new(CAROL_ID, "globex", true);
    let (_, listed, _) = send(&service, request(Method::GET, BASE, Some(carol), "")).await;
    assert_eq!(listed, json!([]));
}

#[tokio::test]
async fn delete_revokes_at_once_and_hides_other_organizations_tokens() {
    let store = MemoryStore::new();
    let service = TokenService::new(store.clone(), directory());
    let created = create(&service, "").await;
    let path = format!("{BASE}/{}", created["id"].as_str().unwrap());

    let carol = Caller::new(CAROL_ID, "globex", true);
    let (status, _, _) = send(&service, request(Method::DELETE, &path, Some(carol), "")).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another organization's token is not revealed"
    );
    assert_eq!(store.len(), 1);

    let (status, body, response) =
        send(&service, request(Method::DELETE, &path, Some(admin()), "")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(body, Value::Null);
    assert!(response.headers().get(header::CONTENT_TYPE).is_none());
    assert!(store.is_empty());

    let (status, _, _) = send(&service, request(Method::DELETE, &path, Some(admin()), "")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let bad = format!("{BASE}/not-a-uuid");
    let (status, _, _) = send(&service, request(Method::DELETE, &bad, Some(admin()), "")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn revoked_token_stops_working_in_the_layer() {
    let store = MemoryStore::new();
    let service = TokenService::new(store.clone(), directory());
    let token = create(&service, "").await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let app = whoami_behind(ImpersonationLayer::new(store.clone(), directory()));
    assert_eq!(
        call_as(&app, &format!("{token}:bob@acme.test")).await.0,
        StatusCode::OK
    );

    let (_, listed, _) = send(&service, request(Method::GET, BASE, Some(admin()), "")).await;
    assert_listing_date(
        listed[0]["lastUsed"]
            .as_str()
            .expect("lastUsed after a use"),
    );

    let path = format!("{BASE}/{}", listed[0]["id"].as_str().unwrap());
    send(&service, request(Method::DELETE, &path, Some(admin()), "")).await;
    assert_eq!(
        call_as(&app, &format!("{token}:bob@acme.test")).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn expired_tokens_are_listed_as_expired() {
    let store = MemoryStore::new();
    let (_, mut record) =
        TokenRecord::issue(&TokenPrefix::default(), ACME, ADA_ID, Roles::full_access());
    record.expires_at = Some(Timestamp::from_millis(Timestamp::now().as_millis() - 1000));
    store.create(record, usize::MAX).await.unwrap();
    let service = TokenService::new(store, directory());
    let (_, listed, _) = send(&service, request(Method::GET, BASE, Some(admin()), "")).await;
    assert_eq!(listed[0]["expired"], true);
    assert_listing_date(listed[0]["expiresAt"].as_str().unwrap());
}

#[tokio::test]
async fn expires_at_is_accepted_and_echoed() {
    let service = TokenService::new(MemoryStore::new(), directory());
    let created = create(&service, r#"{"expiresAt": "2999-01-01T00:00:00Z"}"#).await;
    assert_eq!(created["expiresAt"], "2999-01-01T00:00:00.000+0000");
}

#[tokio::test]
async fn tokens_per_organization_are_bounded() {
    let store = MemoryStore::new();
    let service = TokenService::new(store.clone(), directory()).max_tokens_per_organization(2);
    create(&service, "").await;
    create(&service, "").await;
    let (status, json, _) = send(&service, request(Method::POST, BASE, Some(admin()), "")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{json}");
    assert_eq!(store.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_creates_never_pass_the_bound() {
    let store = MemoryStore::new();
    let service = TokenService::new(store.clone(), directory()).max_tokens_per_organization(3);
    let mut creates = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let service = service.clone();
        creates.spawn(async move {
            send(&service, request(Method::POST, BASE, Some(admin()), ""))
                .await
                .0
        });
    }
    let mut statuses = creates.join_all().await;
    statuses.sort();
    assert_eq!(statuses[..3], [StatusCode::OK; 3]);
    assert_eq!(statuses[3..], [StatusCode::CONFLICT; 9]);
    assert_eq!(store.len(), 3);
}

#[tokio::test]
async fn wrong_methods_and_paths_are_405_and_404() {
    let service = TokenService::new(MemoryStore::new(), directory());
    let (status, _, response) = send(&service, request(Method::PUT, BASE, Some(admin()), "")).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()[header::ALLOW], "GET, POST");
    let (status, _, _) = send(
        &service,
        request(Method::GET, "/elsewhere", Some(admin()), ""),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

// ---- organization impersonation ------------------------------------------------------------

fn orgs_path(org: &str) -> String {
    format!("/api/v2/organizations/{org}/impersonation")
}

fn ask(user: &str) -> String {
    json!({"data": {"type": "impersonation", "attributes": {"reason": "Reason", "user": user}}})
        .to_string()
}

fn jsonapi_request(caller: Option<Caller>, body: &str) -> Request<Full<Bytes>> {
    let mut request = request(Method::POST, &orgs_path(ACME), caller, body);
    request.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/vnd.api+json".parse().unwrap(),
    );
    request
}

fn org_service() -> OrganizationImpersonationService<StaticDirectory, MemoryStore> {
    OrganizationImpersonationService::new(
        directory(),
        JwtKeys::hs256(SECRET).unwrap(),
        MemoryStore::new(),
    )
}

#[tokio::test]
async fn admin_receives_a_jsonapi_document_with_a_valid_jwt() {
    let (status, doc, response) =
        send(&org_service(), jsonapi_request(Some(admin()), &ask(BOB_ID))).await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/vnd.api+json; charset=utf-8"
    );
    let data = &doc["data"];
    assert_eq!(data["id"], BOB_ID);
    assert_eq!(data["type"], "impersonation");
    let attributes = &data["attributes"];
    assert_eq!(attributes["updated_at"], Value::Null);
    assert_eq!(attributes["updated_in_db_at"], Value::Null);
    let created_at = attributes["created_at"].as_str().unwrap();
    let created = Timestamp::parse_utc(created_at).unwrap();
    assert!(
        created_at.ends_with('Z') && created_at.len() == 20,
        "{created_at}"
    );

    let (header, claims) =
        independent_decode(attributes["json_web_token"].as_str().unwrap(), SECRET);
    assert_eq!(header["alg"], "HS256");
    assert_eq!(claims["user_id"], BOB_ID);
    assert_eq!(claims["exp"], created.as_secs() + 3600);
    assert_eq!(claims["iat"], created.as_secs());
    assert_eq!(claims["org"], ACME);
    assert_eq!(claims["act"], json!({"sub": ADA_ID}));
    assert!(uuid::Uuid::parse_str(claims["jti"].as_str().unwrap()).is_ok());
}

#[tokio::test]
async fn user_is_found_by_name_email_or_relay_alias() {
    for who in ["Bob", "bob@acme.test", "bob.relay@acme.test"] {
        let (status, doc, _) =
            send(&org_service(), jsonapi_request(Some(admin()), &ask(who))).await;
        assert_eq!(status, StatusCode::OK, "{who}");
        assert_eq!(doc["data"]["id"], BOB_ID);
    }
}

#[tokio::test]
async fn unknown_user_and_other_organizations_user_are_the_same_404() {
    let (status, unknown, _) = send(
        &org_service(),
        jsonapi_request(Some(admin()), &ask("nobody@acme.test")),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, other, _) = send(
        &org_service(),
        jsonapi_request(Some(admin()), &ask("carol@globex.test")),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(unknown, other);
    assert!(unknown["errors"][0]["detail"].is_string());
}

#[tokio::test]
async fn request_document_errors_have_their_statuses() {
    let service = org_service();
    let mut plain_json = jsonapi_request(Some(admin()), &ask("Bob"));
    plain_json
        .headers_mut()
        .insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
    assert_eq!(
        send(&service, plain_json).await.0,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );

    let wrong_type = json!({"data": {"type": "users", "attributes": {"user": "Bob"}}}).to_string();
    assert_eq!(
        send(&service, jsonapi_request(Some(admin()), &wrong_type))
            .await
            .0,
        StatusCode::CONFLICT
    );

    let no_user =
        json!({"data": {"type": "impersonation", "attributes": {"reason": "x"}}}).to_string();
    let (status, doc, _) = send(&service, jsonapi_request(Some(admin()), &no_user)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        doc["errors"][0]["source"]["pointer"],
        "/data/attributes/user"
    );
    assert_eq!(doc["errors"][0]["status"], "422");

    let (status, doc, _) = send(&service, jsonapi_request(Some(admin()), "{not json")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(doc["errors"].is_array());
}

#[tokio::test]
async fn reason_can_be_required() {
    let service = org_service().require_reason(true);
    let no_reason =
        json!({"data": {"type": "impersonation", "attributes": {"user": "Bob"}}}).to_string();
    let (status, doc, _) = send(&service, jsonapi_request(Some(admin()), &no_reason)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        doc["errors"][0]["source"]["pointer"],
        "/data/attributes/reason"
    );
    assert_eq!(
        send(&service, jsonapi_request(Some(admin()), &ask("Bob")))
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn only_an_admin_of_that_organization_may_ask() {
    let service = org_service();
    assert_eq!(
        send(&service, jsonapi_request(None, &ask("Bob"))).await.0,
        StatusCode::UNAUTHORIZED
    );
    let carol = Caller::new(CAROL_ID, "globex", true);
    assert_eq!(
        send(&service, jsonapi_request(Some(carol), &ask("Bob")))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let bob = Caller::new(BOB_ID, ACME, false);
    assert_eq!(
        send(&service, jsonapi_request(Some(bob), &ask("Ada")))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
}

/// A directory with a bug: every lookup panics.
struct PanickingDirectory;

impl UserDirectory for PanickingDirectory {
    async fn resolve(&self, _: &str, _: &str) -> Result<Option<Member>, DirectoryError> {
        panic!("a bug in the directory")
    }

    async fn user_by_id(&self, _: &str) -> Result<Option<UserWithMemberships>, DirectoryError> {
        panic!("a bug in the directory")
    }
}

#[tokio::test]
async fn work_that_panics_answers_503_with_retry_after_and_stores_nothing() {
    let store = MemoryStore::new();
    let tokens = TokenService::new(store.clone(), PanickingDirectory);
    let narrowed = request(Method::POST, BASE, Some(admin()), r#"{"users": ["Bob"]}"#);
    let (status, json, response) = send(&tokens, narrowed).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{json}");
    assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    assert!(store.is_empty());

    let jwts = OrganizationImpersonationService::new(
        PanickingDirectory,
        JwtKeys::hs256(SECRET).unwrap(),
        store.clone(),
    );
    let (status, json, response) = send(&jwts, jsonapi_request(Some(admin()), &ask("Bob"))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{json}");
    assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    assert_eq!(json["errors"][0]["status"], "503", "{json}");
    assert!(
        store
            .list_jwts(ACME, Timestamp::now())
            .await
            .unwrap()
            .is_empty()
    );
}

// ---- JWTs in the layer -----------------------------------------------------------------------

type App = tower::util::BoxCloneService<
    Request<Full<Bytes>>,
    Response<tower_impersonation::middleware::ResponseBody<Full<Bytes>>>,
    Infallible,
>;

fn whoami_behind(layer: ImpersonationLayer) -> App {
    let inner = service_fn(|request: Request<Full<Bytes>>| async move {
        let body = match request.extensions().get::<ImpersonatedUser>() {
            Some(user) => json!({
                "id": user.user().id,
                "org": user.organization(),
                "actor": user.actor().user_id(),
                "unattributed": matches!(user.actor(), Actor::Unattributed),
                "jwt": user.source() == CredentialSource::Jwt,
            }),
            None => json!(null),
        };
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body.to_string()))))
    });
    tower::util::BoxCloneService::new(tower::Layer::layer(&layer, inner))
}

async fn call_as(app: &App, bearer: &str) -> (StatusCode, Value, http::HeaderMap) {
    let request = Request::builder()
        .uri("/api/v1/whoami")
        .header(header::AUTHORIZATION, format!("Bearer {bearer}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        parts.headers,
    )
}

fn jwt_app(keys: JwtKeys) -> App {
    whoami_behind(
        ImpersonationLayer::builder(MemoryStore::new(), directory())
            .jwt(keys)
            .build(),
    )
}

#[tokio::test]
async fn minted_jwt_impersonates_with_the_admin_as_actor() {
    let (_, doc, _) = send(&org_service(), jsonapi_request(Some(admin()), &ask("Bob"))).await;
    let jwt = doc["data"]["attributes"]["json_web_token"]
        .as_str()
        .unwrap();
    let (status, who, _) = call_as(&jwt_app(JwtKeys::hs256(SECRET).unwrap()), jwt).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(who["id"], BOB_ID);
    assert_eq!(who["actor"], ADA_ID);
    assert_eq!(who["org"], ACME);
    assert_eq!(who["jwt"], true);
}

fn in_an_hour() -> u64 {
    Timestamp::now().as_secs() + 3600
}

#[tokio::test]
async fn bare_jwt_from_elsewhere_is_accepted() {
    let jwt = bare_jwt(&json!({"user_id": BOB_ID, "exp": in_an_hour()}), SECRET);
    let (status, who, _) = call_as(&jwt_app(JwtKeys::hs256(SECRET).unwrap()), &jwt).await;
    assert_eq!(status, StatusCode::OK, "{who}");
    assert_eq!(who["id"], BOB_ID);
    assert_eq!(who["unattributed"], true);
    assert_eq!(who["org"], Value::Null);
}

#[tokio::test]
async fn bad_jwts_are_401_invalid_token() {
    let app = jwt_app(JwtKeys::hs256(SECRET).unwrap());
    let bob = BOB_ID;
    let other_secret = b"another secret that is 32 bytes!";
    let none_alg = format!(
        "{}.{}.c2ln",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(json!({"user_id": bob, "exp": in_an_hour()}).to_string())
    );
    let hs384 = {
        let keys = jsonwebtoken::EncodingKey::from_secret(SECRET);
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS384);
        jsonwebtoken::encode(
            &header,
            &json!({"user_id": bob, "exp": in_an_hour()}),
            &keys,
        )
        .unwrap()
    };
    let cases = [
        (
            "bad signature",
            bare_jwt(&json!({"user_id": bob, "exp": in_an_hour()}), other_secret),
        ),
        (
            "expired",
            bare_jwt(
                &json!({"user_id": bob, "exp": Timestamp::now().as_secs() - 60}),
                SECRET,
            ),
        ),
        ("no exp", bare_jwt(&json!({"user_id": bob}), SECRET)),
        (
            "unknown user",
            bare_jwt(&json!({"user_id": "ghost", "exp": in_an_hour()}), SECRET),
        ),
        (
            "other org",
            bare_jwt(
                &json!({"user_id": bob, "exp": in_an_hour(), "org": "globex"}),
                SECRET,
            ),
        ),
        ("alg none", none_alg),
        ("HS384", hs384),
    ];
    for (case, jwt) in cases {
        let (status, body, headers) = call_as(&app, &jwt).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{case}");
        assert_eq!(
            headers[header::WWW_AUTHENTICATE],
            r#"Bearer error="invalid_token""#,
            "{case}"
        );
        assert_eq!(body["error"], "invalid_token", "{case}");
    }
}

#[tokio::test]
async fn jwts_bending_the_claims_rules_are_401_invalid_token_every_time() {
    let refused = Arc::new(Mutex::new(Vec::new()));
    let heard = Arc::clone(&refused);
    let layer = ImpersonationLayer::builder(MemoryStore::new(), directory())
        .jwt(JwtKeys::hs256(SECRET).unwrap())
        .audit(move |event: &AuditEvent<'_>| {
            if let AuditOutcome::Refused(rejection) = event.outcome {
                heard.lock().unwrap().push(rejection.error_code());
            }
        })
        .build();
    let app = whoami_behind(layer);
    let bob = BOB_ID;
    let now = Timestamp::now().as_secs();
    let bare_with = |extra: Value| {
        let mut claims = json!({"user_id": bob, "exp": in_an_hour()});
        claims
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        bare_jwt(&claims, SECRET)
    };
    let claims = json!({"user_id": bob, "exp": in_an_hour()});
    let cases = [
        (
            "crit",
            jwt_with_header(
                r#"{"alg":"HS256","crit":["x-unknown"],"x-unknown":true}"#,
                &claims,
                SECRET,
            ),
        ),
        ("nbf a minute ahead", bare_with(json!({"nbf": now + 60}))),
        (
            "iat ten minutes ahead",
            bare_with(json!({"iat": now + 600})),
        ),
        // 9999-12-31T23:59:59Z.
        (
            "exp in 9999",
            bare_with(json!({"exp": 253_402_300_799_u64})),
        ),
    ];
    // The second sight is where a cache of verified JWTs would answer.
    for (case, jwt) in &cases {
        for sight in ["first", "second"] {
            let (status, body, headers) = call_as(&app, jwt).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{case}, {sight} sight");
            assert_eq!(
                headers[header::WWW_AUTHENTICATE],
                r#"Bearer error="invalid_token""#
            );
            assert_eq!(body["error"], "invalid_token", "{case}");
        }
    }
    assert_eq!(*refused.lock().unwrap(), ["invalid_token"; 8]);
    // Within the rules, the same parameters are accepted.
    for jwt in [
        jwt_with_header(r#"{"alg":"HS256","x-unknown":true}"#, &claims, SECRET),
        bare_with(json!({"nbf": now - 60, "iat": now - 60})),
        // Within the leeway, by a second to spare for the layer's coarse clock.
        bare_with(json!({"nbf": now + 4, "iat": now + 4})),
    ] {
        for _ in 0..2 {
            let (status, who, _) = call_as(&app, &jwt).await;
            assert_eq!((status, &who["id"]), (StatusCode::OK, &json!(bob)), "{jwt}");
        }
    }
}

#[tokio::test]
async fn jwt_with_a_user_header_is_400() {
    let jwt = bare_jwt(&json!({"user_id": ADA_ID, "exp": in_an_hour()}), SECRET);
    let request = Request::builder()
        .uri("/api/v1/whoami")
        .header(header::AUTHORIZATION, format!("Bearer {jwt}"))
        .header("x-guru-userid", "bob@acme.test")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = jwt_app(JwtKeys::hs256(SECRET).unwrap())
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn rotated_keys_verify_old_tokens_by_kid() {
    let old = JwtKeys::hs256(b"last year's secret, also 32 bytes")
        .unwrap()
        .with_key_id("2025")
        .unwrap();
    let new = JwtKeys::hs256(SECRET)
        .unwrap()
        .with_key_id("2026")
        .unwrap()
        .with_previous_key(Some("2025"), b"last year's secret, also 32 bytes")
        .unwrap();
    let issued_before = OrganizationImpersonationService::new(directory(), old, MemoryStore::new());
    let (_, doc, _) = send(&issued_before, jsonapi_request(Some(admin()), &ask("Bob"))).await;
    let jwt = doc["data"]["attributes"]["json_web_token"]
        .as_str()
        .unwrap();
    let (header, _) = independent_decode(jwt, b"last year's secret, also 32 bytes");
    assert_eq!(header["kid"], "2025");
    assert_eq!(call_as(&jwt_app(new), jwt).await.0, StatusCode::OK);
}

#[tokio::test]
async fn jwt_roles_claim_limits_scope() {
    let jwt = bare_jwt(
        &json!({"user_id": ADA_ID, "exp": in_an_hour(), "roles": ["read:*"]}),
        SECRET,
    );
    let app = jwt_app(JwtKeys::hs256(SECRET).unwrap());
    assert_eq!(call_as(&app, &jwt).await.0, StatusCode::OK);
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/cards")
        .header(header::AUTHORIZATION, format!("Bearer {jwt}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        response.headers()[header::WWW_AUTHENTICATE],
        r#"Bearer error="insufficient_scope""#
    );
}
