//! A `GrpcServer` on an ephemeral port, called as a client would call it.
//! The probe service stands in for a real API: it answers on the path of
//! `SurveyService/ListClosedRequests`, so the policy table applies to it.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use dispatch311_auth::{AuthLayer, KeyPair, RateLimit, Role, TokenVerifier, client::with_token};
use dispatch311_grpc::{GrpcServer, client};
use dispatch311_telemetry::grpc::TracedChannel;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::{
    Code, Status,
    body::Body,
    codegen::Service,
    server::{NamedService, UnaryService},
};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use tonic_prost::ProstCodec;
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

const SERVING: i32 = 1;
const NOT_SERVING: i32 = 2;
const PROBE_DELAY: Duration = Duration::from_millis(300);

/// A one-method service whose call takes [`PROBE_DELAY`], to have a call in flight.
#[derive(Clone)]
struct SlowProbe;

impl NamedService for SlowProbe {
    const NAME: &'static str = "dispatch311.survey.v1.SurveyService";
}

impl Service<http::Request<Body>> for SlowProbe {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(ProstCodec::<(), ()>::default());
            Ok(grpc.unary(Wait, request).await)
        })
    }
}

struct Wait;

impl UnaryService<()> for Wait {
    type Response = ();
    type Future = Pin<Box<dyn Future<Output = Result<tonic::Response<()>, Status>> + Send>>;

    fn call(&mut self, _request: tonic::Request<()>) -> Self::Future {
        Box::pin(async {
            tokio::time::sleep(PROBE_DELAY).await;
            Ok(tonic::Response::new(()))
        })
    }
}

async fn call_probe(channel: TracedChannel, token: Option<&str>) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|error| Status::unavailable(error.to_string()))?;
    let path = http::uri::PathAndQuery::from_static(
        "/dispatch311.survey.v1.SurveyService/ListClosedRequests",
    );
    let request = match token {
        Some(token) => with_token((), token).unwrap(),
        None => tonic::Request::new(()),
    };
    grpc.unary(request, path, ProstCodec::<(), ()>::default())
        .await?;
    Ok(())
}

struct Running {
    channel: TracedChannel,
    /// A token of the one role the probe's method admits.
    survey_token: String,
    officer_token: String,
    address: std::net::SocketAddr,
    stop: oneshot::Sender<()>,
    served: JoinHandle<anyhow::Result<()>>,
}

async fn start(drain_timeout: Duration) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let keys = KeyPair::generate("test").unwrap();
    let verifier = TokenVerifier::from_jwks(&keys.jwks_json, "issuer", "audience").unwrap();
    let signer = keys.signer("issuer", "audience").unwrap();
    let mint = |role| {
        signer
            .mint("caller", role, Duration::from_secs(60))
            .unwrap()
    };
    let limit = RateLimit {
        per_second: 100.0,
        burst: 100.0,
    };
    let served = tokio::spawn(
        GrpcServer::new(AuthLayer::new(verifier, limit))
            .add_service(SlowProbe)
            .with_drain_timeout(drain_timeout)
            .serve(listener, async {
                let _ = stopped.await;
            }),
    );
    let channel = client::connect_lazy(&address.to_string(), None).unwrap();
    Running {
        channel,
        survey_token: mint(Role::SurveySystem),
        officer_token: mint(Role::Officer),
        address,
        stop,
        served,
    }
}

async fn health_of(channel: TracedChannel, service: &str) -> Result<i32, Status> {
    let request = HealthCheckRequest {
        service: service.to_owned(),
    };
    Ok(HealthClient::new(channel)
        .check(request)
        .await?
        .into_inner()
        .status)
}

#[tokio::test]
async fn health_reports_each_service_and_reflection_lists_the_apis() {
    let server = start(Duration::from_secs(5)).await;

    assert_eq!(
        health_of(server.channel.clone(), "").await.unwrap(),
        SERVING
    );
    assert_eq!(
        health_of(server.channel.clone(), SlowProbe::NAME)
            .await
            .unwrap(),
        SERVING
    );
    let unknown = health_of(server.channel.clone(), "dispatch311.nothing.v1.Nothing").await;
    assert_eq!(unknown.unwrap_err().code(), Code::NotFound);
    call_probe(server.channel.clone(), Some(&server.survey_token))
        .await
        .expect("the added service answers");

    let mut reflection = ServerReflectionClient::new(server.channel.clone());
    // What `grpcurl list` and `grpcurl describe` ask: the services, then a
    // service's file and the well-known file it imports.
    let requests = [
        MessageRequest::ListServices(String::new()),
        MessageRequest::FileContainingSymbol("dispatch311.intake.v1.IntakeService".into()),
        MessageRequest::FileByFilename("google/protobuf/timestamp.proto".into()),
    ]
    .map(|message_request| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(message_request),
    });
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(listed)) =
        responses.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected a list of services");
    };
    let names: Vec<String> = listed
        .service
        .into_iter()
        .map(|service| service.name)
        .collect();
    for expected in [
        "dispatch311.intake.v1.IntakeService",
        "dispatch311.routing.v1.RoutingService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|name| name == expected),
            "{expected} not in {names:?}"
        );
    }
    for _ in 0..2 {
        let response = responses.message().await.unwrap().unwrap().message_response;
        assert!(
            matches!(response, Some(MessageResponse::FileDescriptorResponse(ref files)) if !files.file_descriptor_proto.is_empty()),
            "{response:?}"
        );
    }

    // Older tools still speak v1alpha.
    let mut reflection =
        tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient::new(
            server.channel.clone(),
        );
    let request = tonic_reflection::pb::v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            ),
        ),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    assert!(
        responses
            .message()
            .await
            .unwrap()
            .unwrap()
            .message_response
            .is_some()
    );

    server.stop.send(()).unwrap();
    server.served.await.unwrap().unwrap();
}

#[tokio::test]
async fn shutdown_reports_not_serving_lets_calls_in_flight_finish_and_refuses_new_ones() {
    let drain_timeout = Duration::from_secs(1);
    let server = start(drain_timeout).await;

    // A health watcher keeps its stream open and sees the status change.
    let mut watch = HealthClient::new(server.channel.clone())
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(watch.message().await.unwrap().unwrap().status, SERVING);

    let in_flight = tokio::spawn({
        let (channel, token) = (server.channel.clone(), server.survey_token.clone());
        async move { call_probe(channel, Some(&token)).await }
    });
    tokio::time::sleep(PROBE_DELAY / 3).await;
    server.stop.send(()).unwrap();

    assert_eq!(watch.message().await.unwrap().unwrap().status, NOT_SERVING);
    in_flight
        .await
        .unwrap()
        .expect("a call in flight at shutdown completes");

    // The open watch stream would hold the server forever; the drain timeout ends it.
    let stopped = tokio::time::timeout(drain_timeout * 5, server.served).await;
    stopped
        .expect("the server stops after the drain timeout")
        .unwrap()
        .unwrap();

    let fresh = client::connect_lazy(&server.address.to_string(), None).unwrap();
    assert_eq!(
        health_of(fresh, "").await.unwrap_err().code(),
        Code::Unavailable
    );
}

#[tokio::test]
async fn calls_need_a_token_of_a_role_the_policy_admits_while_health_stays_open() {
    let server = start(Duration::from_secs(5)).await;

    assert_eq!(
        health_of(server.channel.clone(), "").await.unwrap(),
        SERVING
    );
    let missing = call_probe(server.channel.clone(), None).await.unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated);
    assert!(missing.message().contains("bearer token"), "{missing:?}");
    let garbage = call_probe(server.channel.clone(), Some("x.y.z"))
        .await
        .unwrap_err();
    assert_eq!(garbage.code(), Code::Unauthenticated);
    let forbidden = call_probe(server.channel.clone(), Some(&server.officer_token))
        .await
        .unwrap_err();
    assert_eq!(forbidden.code(), Code::PermissionDenied);
    assert!(forbidden.message().contains("officer"), "{forbidden:?}");
    call_probe(server.channel.clone(), Some(&server.survey_token))
        .await
        .unwrap();

    server.stop.send(()).unwrap();
    server.served.await.unwrap().unwrap();
}
