//! A client that hangs up while its change is being made: the change still reaches the audit
//! trail. Each service is served by hyper on loopback over a store whose writes land at once but
//! whose replies are held, as a network store's reply can still be on its way when the change is
//! made; the client hangs up in that window.

use crate::common::world::{ACME, ADA_ID, BOB_ID, directory};

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::{rt::TokioIo, service::TowerToHyperService};
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::{Notify, watch},
    task::JoinHandle,
};
use tower::{Service, ServiceBuilder};
use tower_impersonation::{
    AuditEvent, AuditOutcome, MemoryStore, Roles, StoreError, Timestamp, TokenDigest, TokenPrefix,
    TokenRecord, TokenStore,
    jwt::{JwtKeys, JwtRevocations, MintedJwt, UserRevocation},
    services::{Caller, OrganizationImpersonationService, TokenService},
};
use uuid::Uuid;

/// How long a test waits for an event before it fails.
const PATIENCE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_revoke_whose_client_hangs_up_mid_write_is_still_audited() {
    let store = HeldReplies::default();
    let (_, record) =
        TokenRecord::issue(&TokenPrefix::default(), ACME, ADA_ID, Roles::full_access());
    let id = record.id;
    store.inner.create(record, usize::MAX).await.unwrap();
    let trail = Trail::default();
    let service = TokenService::new(store.clone(), directory()).audit(trail.recorder());

    let path = format!("/api/v1/api-tokens/impersonation/{id}");
    hang_up_mid_write(
        &store,
        service.clone(),
        &format!("DELETE {path} HTTP/1.1\r\nHost: t\r\n\r\n"),
    )
    .await;

    trail.until_recorded(&format!("token_revoked {id}")).await;
    assert!(
        store.inner.list(ACME).await.unwrap().is_empty(),
        "the token is revoked"
    );
    let again = answer(
        service,
        &format!("DELETE {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(again.starts_with("HTTP/1.1 404"), "{again}");
}

#[tokio::test]
async fn a_jwt_whose_client_hangs_up_mid_write_is_still_audited() {
    let store = HeldReplies::default();
    let trail = Trail::default();
    let keys = JwtKeys::hs256(b"a test secret that is 32 bytes!!").unwrap();
    let service = OrganizationImpersonationService::new(directory(), keys, store.clone())
        .audit(trail.recorder());

    let body =
        json!({"data": {"type": "impersonation", "attributes": {"user": BOB_ID}}}).to_string();
    let request = format!(
        "POST /api/v2/organizations/{ACME}/impersonation HTTP/1.1\r\nHost: t\r\n\
         Content-Type: application/vnd.api+json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    hang_up_mid_write(&store, service, &request).await;

    let recorded = store.inner.list_jwts(ACME, Timestamp::now()).await.unwrap();
    assert_eq!(recorded.len(), 1, "the JWT was recorded");
    trail
        .until_recorded(&format!("jwt_issued {}", recorded[0].jti))
        .await;
}

/// Sends `request` to `service` served on loopback, waits until its write has landed in `store`,
/// hangs up, waits until the server has closed the connection and so dropped the request's
/// response future, and only then lets the store reply.
async fn hang_up_mid_write<S>(store: &HeldReplies, service: S, request: &str)
where
    S: Service<Request<Incoming>, Response = Response<Full<Bytes>>, Error = Infallible>,
    S: Clone + Send + 'static,
    S::Future: Send,
{
    let (address, connection) = serve_one_connection(service).await;
    let mut client = TcpStream::connect(address).await.unwrap();
    client.write_all(request.as_bytes()).await.unwrap();
    store.until_a_write_landed().await;
    drop(client);
    tokio::time::timeout(PATIENCE, connection)
        .await
        .expect("the server closes the connection of a client that hung up")
        .unwrap();
    store.release();
}

/// The whole answer to `request`, which asks the server to close the connection after it.
async fn answer<S>(service: S, request: &str) -> String
where
    S: Service<Request<Incoming>, Response = Response<Full<Bytes>>, Error = Infallible>,
    S: Clone + Send + 'static,
    S::Future: Send,
{
    let (address, _) = serve_one_connection(service).await;
    let mut client = TcpStream::connect(address).await.unwrap();
    client.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(PATIENCE, client.read_to_string(&mut answer))
        .await
        .expect("the server answers")
        .unwrap();
    answer
}

/// Serves `service`, as Ada, an admin of Acme, to one connection on a loopback port; the task
/// ends when the connection does.
async fn serve_one_connection<S>(service: S) -> (SocketAddr, JoinHandle<()>)
where
    S: Service<Request<Incoming>, Response = Response<Full<Bytes>>, Error = Infallible>,
    S: Clone + Send + 'static,
    S::Future: Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let service = ServiceBuilder::new()
        .map_request(|mut request: Request<Incoming>| {
            request
                .extensions_mut()
                .insert(Caller::new(ADA_ID, ACME, true));
            request
        })
        .service(service);
    let connection = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let _ = http1::Builder::new()
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
            .await;
    });
    (address, connection)
}

/// The audit trail of the changes a service made, one line each.
#[derive(Clone, Default)]
struct Trail(Arc<Mutex<Vec<String>>>);

impl Trail {
    fn recorder(&self) -> impl Fn(&AuditEvent<'_>) + Send + Sync + 'static {
        let lines = Arc::clone(&self.0);
        move |event: &AuditEvent<'_>| {
            let line = match event.outcome {
                AuditOutcome::TokenRevoked { token_id, .. } => format!("token_revoked {token_id}"),
                AuditOutcome::JwtIssued { jti, .. } => format!("jwt_issued {jti}"),
                other => format!("{other:?}"),
            };
            lines.lock().unwrap().push(line);
        }
    }

    /// Waits until `line` is recorded; fails the test if it never is.
    async fn until_recorded(&self, line: &str) {
        let recorded = async {
            while !self.0.lock().unwrap().iter().any(|seen| seen == line) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        if tokio::time::timeout(PATIENCE, recorded).await.is_err() {
            panic!(
                "the change was made but the audit trail has not `{line}`: {:?}",
                self.0.lock().unwrap()
            );
        }
    }
}

/// A [`MemoryStore`] whose writes change it at once but reply only once [`release`](Self::release)d.
/// Reads pass straight through. Clones share everything.
#[derive(Clone)]
struct HeldReplies {
    inner: MemoryStore,
    landed: Arc<Notify>,
    released: Arc<watch::Sender<bool>>,
}

impl Default for HeldReplies {
    fn default() -> Self {
        Self {
            inner: MemoryStore::new(),
            landed: Arc::new(Notify::new()),
            released: Arc::new(watch::Sender::new(false)),
        }
    }
}

impl HeldReplies {
    /// Waits until a write has changed the store; fails the test if none does.
    async fn until_a_write_landed(&self) {
        tokio::time::timeout(PATIENCE, self.landed.notified())
            .await
            .expect("the service wrote to the store");
    }

    /// Lets every write held, and every later one, reply.
    fn release(&self) {
        self.released.send_replace(true);
    }

    /// Tells that a write has landed, and holds its reply until released.
    async fn reply<T>(&self, reply: T) -> T {
        self.landed.notify_one();
        let mut released = self.released.subscribe();
        let _ = released.wait_for(|released| *released).await;
        reply
    }
}

impl TokenStore for HeldReplies {
    async fn create(&self, record: TokenRecord, limit: usize) -> Result<(), StoreError> {
        self.reply(self.inner.create(record, limit).await).await
    }

    async fn lookup(&self, digest: &TokenDigest) -> Result<Option<Arc<TokenRecord>>, StoreError> {
        self.inner.lookup(digest).await
    }

    async fn list(&self, organization: &str) -> Result<Vec<Arc<TokenRecord>>, StoreError> {
        self.inner.list(organization).await
    }

    async fn revoke(&self, organization: &str, id: Uuid) -> Result<bool, StoreError> {
        self.reply(self.inner.revoke(organization, id).await).await
    }

    async fn record_use(&self, id: Uuid, at: Timestamp) -> Result<(), StoreError> {
        self.inner.record_use(id, at).await
    }

    async fn record_jwt(&self, jwt: MintedJwt) -> Result<(), StoreError> {
        self.reply(self.inner.record_jwt(jwt).await).await
    }

    async fn list_jwts(
        &self,
        organization: &str,
        now: Timestamp,
    ) -> Result<Vec<MintedJwt>, StoreError> {
        self.inner.list_jwts(organization, now).await
    }

    async fn revoke_jwt(
        &self,
        organization: &str,
        jti: Uuid,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.reply(self.inner.revoke_jwt(organization, jti, now).await)
            .await
    }

    async fn revoke_user_jwts(&self, revocation: UserRevocation) -> Result<(), StoreError> {
        self.reply(self.inner.revoke_user_jwts(revocation).await)
            .await
    }

    async fn jwt_revocations(&self, now: Timestamp) -> Result<JwtRevocations, StoreError> {
        self.inner.jwt_revocations(now).await
    }
}
