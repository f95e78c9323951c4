//! The example gateway's app served in this process on a loopback port, and a client for it:
//! what the tests that drive the app (not the binary) share.
#![allow(dead_code, reason = "each test binary uses part of it")]

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde_json::Value;
use tokio::{net::TcpListener, task::JoinHandle};
use tower_impersonation::TokenStore;

use impersonation_gateway::app::{self, Gateway};

/// A gateway served on a loopback port until the test ends, and a client for it.
pub struct Running {
    pub base: String,
    pub client: Client<HttpConnector, Full<Bytes>>,
    server: JoinHandle<std::io::Result<()>>,
}

/// Serves `gateway` on a free loopback port.
pub async fn serve<St: TokenStore + Clone>(gateway: Gateway<St>) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(app::serve(
        listener,
        app::router(gateway),
        app::Limits::default(),
        std::future::pending(),
    ));
    let client = Client::builder(TokioExecutor::new()).build_http();
    Running {
        base,
        client,
        server,
    }
}

impl Running {
    /// Sends a request: the status, the headers and the body.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (StatusCode, HeaderMap, Bytes) {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::from(body.to_owned())).unwrap();
        let response = self.client.request(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (parts.status, parts.headers, body)
    }

    /// Sends a request: the status and the body as JSON (`Null` when it is not JSON).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (StatusCode, Value) {
        let (status, _, body) = self.request(method, path, headers, body).await;
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// Stops serving, as a gateway that is shut down.
    pub fn stop(&self) {
        self.server.abort();
    }
}
