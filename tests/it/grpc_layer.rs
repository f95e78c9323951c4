//! The layer in a real tonic server (`Server::builder().layer`) in front of tonic-health, called by
//! tonic's own client on loopback: refusals arrive as gRPC status codes 3, 16 and 7.

use crate::common::world;

use tonic::{
    Code, Request,
    metadata::MetadataValue,
    transport::{Channel, Server, server::TcpIncoming},
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tower_impersonation::{
    Access, ImpersonationLayer,
    policy::{AccessPolicy, GrpcPolicy},
};

use world::{BOB, CAROL_OF_GLOBEX, Tokens, directory, tokens};

const CHECK: &str = "/grpc.health.v1.Health/Check";

/// A tonic server with the health service behind the layer, and a client connected to it.
async fn serve<A: AccessPolicy>(tokens: &Tokens, policy: A) -> HealthClient<Channel> {
    let layer = ImpersonationLayer::builder(tokens.store.clone(), directory())
        .access_policy(policy)
        .build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let server = Server::builder()
        .layer(layer)
        .add_service(health)
        .serve_with_incoming(TcpIncoming::from(listener));
    tokio::spawn(server);
    let channel = Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    HealthClient::new(channel)
}

/// Calls `Check` with this metadata: the serving status, or the gRPC code and message.
async fn check(
    client: &mut HealthClient<Channel>,
    metadata: &[(&'static str, &str)],
) -> Result<ServingStatus, (Code, String)> {
    let mut request = Request::new(HealthCheckRequest::default());
    for (name, value) in metadata {
        let value: MetadataValue<_> = value.parse().unwrap();
        request.metadata_mut().insert(*name, value);
    }
    match client.check(request).await {
        Ok(response) => Ok(response.into_inner().status()),
        Err(status) => Err((status.code(), status.message().to_owned())),
    }
}

fn suffixed(token: &str) -> String {
    format!("Bearer {token}:{BOB}")
}

#[tokio::test]
async fn accepted_calls_reach_the_service_and_refusals_are_grpc_codes() {
    let tokens = tokens().await;
    let mut client = serve(&tokens, GrpcPolicy::new()).await;
    let full = suffixed(&tokens.full);
    let header_form = format!("Bearer {}", tokens.full);
    let unknown = suffixed("GINT:IMP:6f1c8a50-0b1e-4c3e-9d5a-2f0e7b9c1d4a");
    let revoked = suffixed(&tokens.revoked);

    let serving = Ok(ServingStatus::Serving);
    assert_eq!(check(&mut client, &[]).await, serving, "no credential");
    assert_eq!(
        check(&mut client, &[("authorization", &full)]).await,
        serving
    );
    let header = [
        ("authorization", header_form.as_str()),
        ("x-guru-userid", BOB),
    ];
    assert_eq!(check(&mut client, &header).await, serving);

    let code = |answer: Result<ServingStatus, (Code, String)>| answer.map_err(|(code, _)| code);
    let no_user = [("authorization", header_form.as_str())];
    assert_eq!(
        code(check(&mut client, &no_user).await),
        Err(Code::InvalidArgument)
    );
    assert_eq!(
        code(check(&mut client, &[("authorization", &unknown)]).await),
        Err(Code::Unauthenticated)
    );
    assert_eq!(
        code(check(&mut client, &[("authorization", &revoked)]).await),
        Err(Code::Unauthenticated)
    );
    let spoofed = [("x-guru-userid", BOB)];
    assert_eq!(
        code(check(&mut client, &spoofed).await),
        Err(Code::PermissionDenied)
    );
    let foreign = format!("Bearer {}:{CAROL_OF_GLOBEX}", tokens.full);
    assert_eq!(
        code(check(&mut client, &[("authorization", &foreign)]).await),
        Err(Code::PermissionDenied)
    );
}

#[tokio::test]
async fn grpc_message_tells_the_client_what_to_do() {
    let tokens = tokens().await;
    let mut client = serve(&tokens, GrpcPolicy::new()).await;
    let header_form = format!("Bearer {}", tokens.full);

    let (code, message) = check(&mut client, &[("authorization", &header_form)])
        .await
        .unwrap_err();
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.contains("user header"), "{message}");
}

#[tokio::test]
async fn read_only_tokens_may_call_read_methods_only() {
    let tokens = tokens().await;
    let read_only = suffixed(&tokens.read_only);
    let metadata = [("authorization", read_only.as_str())];

    // `Check` is not named like a read, so it writes by default…
    let mut by_name = serve(&tokens, GrpcPolicy::new()).await;
    let refused = check(&mut by_name, &metadata).await;
    assert_eq!(
        refused.map_err(|(code, _)| code),
        Err(Code::PermissionDenied)
    );

    // …until the policy says it reads.
    let overridden = GrpcPolicy::new().method(CHECK, Access::Read);
    let mut overridden = serve(&tokens, overridden).await;
    assert_eq!(
        check(&mut overridden, &metadata).await,
        Ok(ServingStatus::Serving)
    );
}

#[tokio::test]
async fn watch_is_a_read_by_its_name() {
    let tokens = tokens().await;
    let mut client = serve(&tokens, GrpcPolicy::new()).await;
    let read_only = suffixed(&tokens.read_only);
    let mut request = Request::new(HealthCheckRequest::default());
    let value: MetadataValue<_> = read_only.parse().unwrap();
    request.metadata_mut().insert("authorization", value);

    let mut updates = client.watch(request).await.expect("a read").into_inner();
    let first = updates.message().await.unwrap().unwrap();
    assert_eq!(first.status(), ServingStatus::Serving);
}
