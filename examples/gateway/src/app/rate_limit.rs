//! Per-client rate limiting in front of everything, with `tower_governor`: a client guessing
//! tokens gets `429` (gRPC clients `RESOURCE_EXHAUSTED`) long before a guess could matter, and
//! every refused guess is also an audit event of `tower_impersonation::audit`, which the
//! gateway's log tags with the client's address.

use std::{num::NonZeroU32, sync::Arc, time::Duration};

use axum::{
    Router,
    body::Body,
    extract::Request,
    middleware::{Next, from_fn},
    response::Response,
};
use http::{HeaderValue, StatusCode, header};
use serde_json::json;
use tower_governor::{GovernorError, GovernorLayer, governor::GovernorConfigBuilder};

/// How often addresses that have gone quiet are forgotten, so the limiter's memory stays bounded.
const FORGET_QUIET_CLIENTS_EVERY: Duration = Duration::from_secs(60);

/// `app` behind a limit of `per_second` requests a second from one client address, in bursts of
/// as many. Starts the task that forgets quiet clients, so it must be called inside a tokio
/// runtime; the app must be served with its connections' addresses.
pub fn limit(app: Router, per_second: NonZeroU32) -> Router {
    let config = GovernorConfigBuilder::default()
        .period(Duration::from_secs(1) / per_second.get())
        .burst_size(per_second.get())
        .finish()
        .expect("a non-zero rate gives a non-zero period and burst");
    let config = Arc::new(config);
    let limiter = Arc::clone(config.limiter());
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(FORGET_QUIET_CLIENTS_EVERY).await;
            limiter.retain_recent();
        }
    });
    app.layer(GovernorLayer::new(config).error_handler(too_many_requests))
        .layer(from_fn(grpc_status_for_grpc_clients))
}

fn too_many_requests(error: GovernorError) -> Response {
    let (status, wait) = match error {
        GovernorError::TooManyRequests { wait_time, .. } => {
            (StatusCode::TOO_MANY_REQUESTS, wait_time.max(1))
        }
        _ => (StatusCode::BAD_REQUEST, 1),
    };
    let body = json!({
        "error": "too_many_requests",
        "error_description": format!("too many requests from this address; retry in {wait} s"),
    });
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::RETRY_AFTER, HeaderValue::from(wait));
    response
}

/// gRPC clients read a refusal from `grpc-status`, and map a bare HTTP 429 to `UNAVAILABLE`: a
/// gRPC request the limiter refused gets a trailers-only `RESOURCE_EXHAUSTED` (8) instead, with
/// the same message and `retry-after`.
async fn grpc_status_for_grpc_clients(request: Request, next: Next) -> Response {
    let grpc = request
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc"));
    let response = next.run(request).await;
    if !grpc || response.status() != StatusCode::TOO_MANY_REQUESTS {
        return response;
    }
    let (parts, _) = response.into_parts();
    let wait = parts.headers.get(header::RETRY_AFTER).cloned();
    let mut response = Response::new(Body::empty());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert("grpc-status", HeaderValue::from_static("8"));
    headers.insert(
        "grpc-message",
        HeaderValue::from_static("too many requests from this address"),
    );
    if let Some(wait) = wait {
        headers.insert(header::RETRY_AFTER, wait);
    }
    response
}
