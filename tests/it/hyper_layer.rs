//! The layer in a plain hyper server (no axum), through hyper-util's `TowerToHyperService`, driven
//! by a real HTTP client on loopback: the same documented answers as in axum.

use crate::common::http_cases;
use crate::common::world;

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
    service::TowerToHyperService,
};
use tokio::net::TcpListener;
use tower::{ServiceBuilder, service_fn};
use tower_impersonation::ImpersonationLayer;

use http_cases::{HttpClient, check_documented_answers, what_the_app_saw};
use world::{BOB, directory, tokens};

/// Serves `layer` around an inner service that answers what it saw, one connection per task.
async fn serve(layer: ImpersonationLayer) -> HttpClient {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let service = ServiceBuilder::new().layer(layer).service(service_fn(
        |request: Request<Incoming>| async move {
            let seen = what_the_app_saw(&request).to_string();
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(seen))))
        },
    ));
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let connection = auto::Builder::new(TokioExecutor::new());
                let _ = connection
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    HttpClient::new(base)
}

#[tokio::test]
async fn every_documented_answer_over_hyper() {
    let tokens = tokens().await;
    let client = serve(ImpersonationLayer::new(tokens.store.clone(), directory())).await;
    check_documented_answers(&client, &tokens).await;
}

#[tokio::test]
async fn the_rejection_body_is_json_a_client_can_act_on() {
    let tokens = tokens().await;
    let client = serve(ImpersonationLayer::new(tokens.store.clone(), directory())).await;
    let bearer = format!("Bearer {}", tokens.full).into_bytes();

    let reply = client.get("/", &[("authorization", &bearer)]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.headers["content-type"], "application/json");
    assert_eq!(reply.body["error"], "invalid_request");
    let description = reply.body["error_description"].as_str().unwrap();
    assert!(description.contains("user header"), "{description}");

    let with_user = client
        .get(
            "/",
            &[
                ("authorization", &bearer),
                ("x-guru-userid", BOB.as_bytes()),
            ],
        )
        .await;
    assert_eq!(with_user.status, StatusCode::OK);
}
