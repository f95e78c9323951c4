//! The example gateway as a process of its own on a loopback port, driven over HTTP: what
//! restarts, `kill -9`, SIGTERM and outages need. The binary is the one `cargo test` builds
//! beside the test binaries, with the same features.
#![allow(dead_code, reason = "each test binary uses part of it")]

use std::{
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::connect::HttpConnector, rt::TokioExecutor};
use serde_json::Value;

pub const ADMIN: &str = "Bearer demo-admin-key";
pub const BOB: &str = "bob@example.com";
const TOKENS: &str = "/api/v1/api-tokens/impersonation";
const IMPERSONATION: &str =
    "/api/v2/organizations/4ab7e40b-6b30-4a50-9fc8-873c3dca9d37/impersonation";

/// The JWT key every gateway process of the tests shares, so instances accept each other's JWTs
/// and none writes a key file.
const JWT_SECRET: &str = "the gateway processes' shared JWT secret";

/// A running gateway process; killed when dropped. Requests go through its [`Client`]. It runs
/// in a temporary folder of its own, so nothing it writes lands in the working tree.
pub struct Gateway {
    child: Child,
    client: Client,
    addr: SocketAddr,
    workdir: tempfile::TempDir,
}

/// Sends requests to a gateway at a base URL.
#[derive(Clone)]
pub struct Client {
    pub base: String,
    http: hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>,
}

impl std::ops::Deref for Gateway {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

/// The gateway binary, which cargo builds before the tests that run it.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_impersonation-gateway"))
}

/// A loopback port free right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Gateway {
    /// Starts the gateway with `--store store` on `port` (no rate limit, no audit log, the JWT
    /// secret the test processes share) and waits until it answers `/healthz`.
    pub async fn start(store: &str, port: u16) -> Gateway {
        let args = ["--store", store, "--quiet"];
        Self::spawn(port, &args, Some(JWT_SECRET)).await
    }

    /// Starts the gateway on a free port with no rate limit and `args`, its JWT key its own (a
    /// file in its folder), and waits until it answers `/healthz`.
    pub async fn start_with(args: &[&str]) -> Gateway {
        Self::spawn(free_port(), args, None).await
    }

    async fn spawn(port: u16, args: &[&str], jwt_secret: Option<&str>) -> Gateway {
        let workdir = tempfile::tempdir().unwrap();
        let mut command = Command::new(binary());
        command
            .current_dir(workdir.path())
            .args(["--addr", &format!("127.0.0.1:{port}"), "--rate-limit", "0"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(secret) = jwt_secret {
            command.env("IMPERSONATION_JWT_SECRET", secret);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {}: {e}", binary().display()));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut gateway = Gateway {
            child,
            client: Client::new(&format!("http://{addr}")),
            addr,
            workdir,
        };
        gateway.wait_until_healthy().await;
        gateway
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The folder it runs in, where its default token file and JWT key go.
    pub fn workdir(&self) -> &Path {
        self.workdir.path()
    }

    async fn wait_until_healthy(&mut self) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the gateway exited at start: {status}");
            }
            if let Ok((StatusCode::OK, _)) = self.try_send(Method::GET, "/healthz", "", "").await {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the gateway did not answer /healthz within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the process at once (SIGKILL), as `kill -9` does, and waits for it to go.
    pub fn kill_9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Sends SIGTERM, as a service manager stopping the gateway does.
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// Sends SIGHUP, as logrotate does once it has renamed the log file.
    pub fn hang_up(&self) {
        self.signal("HUP");
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name} failed");
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits until the gateway refuses new connections, as it does once it has taken SIGTERM,
    /// for at most 30 s.
    pub fn wait_until_closed_to_new_connections(&self) {
        let started = Instant::now();
        while TcpStream::connect(self.addr).is_ok() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the gateway still accepts connections 30 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the process to exit.
    pub fn wait(&mut self) -> ExitStatus {
        self.child.wait().unwrap()
    }
}

impl Client {
    /// A client for the gateway at `base` (`http://127.0.0.1:PORT`).
    pub fn new(base: &str) -> Client {
        Client {
            base: base.to_owned(),
            http: hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// Sends a request; the status and the body as JSON (`Null` when not JSON), or the
    /// connection error.
    pub async fn try_send(
        &self,
        method: Method,
        path: &str,
        authorization: &str,
        body: &str,
    ) -> Result<(StatusCode, Value), String> {
        let headers = [("authorization", authorization)];
        let headers = if authorization.is_empty() {
            &headers[..0]
        } else {
            &headers[..]
        };
        self.try_send_with(method, path, headers, body).await
    }

    /// Sends a request with these headers; the status and the body as JSON (`Null` when not
    /// JSON), or the connection error.
    pub async fn try_send_with(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<(StatusCode, Value), String> {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::from(body.to_owned())).unwrap();
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        Ok((
            status,
            serde_json::from_slice(&body.to_bytes()).unwrap_or(Value::Null),
        ))
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        authorization: &str,
        body: &str,
    ) -> (StatusCode, Value) {
        self.try_send(method, path, authorization, body)
            .await
            .unwrap()
    }

    /// Creates a token as the demo admin: the status and the creation's answer, or the
    /// connection error.
    pub async fn create(&self) -> Result<(StatusCode, Value), String> {
        self.try_send(Method::POST, TOKENS, ADMIN, "").await
    }

    /// Creates a token as the demo admin: its secret and id.
    pub async fn create_ok(&self) -> (String, String) {
        let (status, created) = self.create().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{created}");
        let text = |field: &str| created[field].as_str().unwrap().to_owned();
        (text("token"), text("id"))
    }

    pub async fn revoke(&self, id: &str) -> StatusCode {
        self.send(Method::DELETE, &format!("{TOKENS}/{id}"), ADMIN, "")
            .await
            .0
    }

    /// The ids the demo organization's listing shows.
    pub async fn listed_ids(&self) -> Vec<String> {
        self.listed()
            .await
            .iter()
            .map(|token| token["id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The demo organization's listing of tokens.
    pub async fn listed(&self) -> Vec<Value> {
        let (status, listed) = self.send(Method::GET, TOKENS, ADMIN, "").await;
        assert_eq!(status, StatusCode::OK, "{listed}");
        match listed {
            Value::Array(tokens) => tokens,
            other => panic!("a listing is an array: {other}"),
        }
    }

    /// An impersonation JWT for Bob from the demo admin: the JWT and its `jti`.
    pub async fn mint_jwt(&self) -> (String, String) {
        self.mint_jwt_as(ADMIN, IMPERSONATION, BOB).await
    }

    /// An impersonation JWT for `user` from the admin whose `authorization` this is, at
    /// `impersonation` (`/api/v2/organizations/{org}/impersonation`): the JWT and its `jti`.
    pub async fn mint_jwt_as(
        &self,
        authorization: &str,
        impersonation: &str,
        user: &str,
    ) -> (String, String) {
        let body = serde_json::json!({"data": {"type": "impersonation",
            "attributes": {"reason": "ticket 42", "user": user}}});
        let headers = [
            ("authorization", authorization),
            ("content-type", "application/vnd.api+json"),
        ];
        let (status, document) = self
            .try_send_with(Method::POST, impersonation, &headers, &body.to_string())
            .await
            .unwrap();
        assert_eq!(status, StatusCode::OK, "{document}");
        let attributes = &document["data"]["attributes"];
        let text = |name: &str| attributes[name].as_str().unwrap().to_owned();
        (text("json_web_token"), text("jti"))
    }

    pub async fn revoke_jwt(&self, jti: &str) -> StatusCode {
        let path = format!("{IMPERSONATION}/{jti}");
        self.send(Method::DELETE, &path, ADMIN, "").await.0
    }

    /// `whoami` with an impersonation JWT: the status.
    pub async fn with_jwt(&self, jwt: &str) -> StatusCode {
        let authorization = format!("Bearer {jwt}");
        self.send(Method::GET, "/api/v1/whoami", &authorization, "")
            .await
            .0
    }

    /// `whoami` as Bob with `token`: the status and the `Retry-After` header, if any.
    pub async fn as_bob_retry_after(&self, token: &str) -> (StatusCode, Option<String>) {
        let request = Request::get(format!("{}/api/v1/whoami", self.base))
            .header("authorization", format!("Bearer {token}:{BOB}"))
            .body(Full::default())
            .unwrap();
        let response = self.http.request(request).await.unwrap();
        let retry_after = response.headers().get("retry-after");
        let retry_after = retry_after.map(|value| value.to_str().unwrap().to_owned());
        (response.status(), retry_after)
    }

    /// `whoami` as Bob with `token`: the status.
    pub async fn as_bob(&self, token: &str) -> StatusCode {
        let authorization = format!("Bearer {token}:{BOB}");
        self.send(Method::GET, "/api/v1/whoami", &authorization, "")
            .await
            .0
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
