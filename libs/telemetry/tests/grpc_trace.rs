//! A client span calling a real tonic server over loopback: the server span
//! joins the client's trace and records the gRPC status.

use std::time::Duration;

use dispatch311_telemetry::grpc::{GrpcStatusLayer, TraceContextInterceptor, server_span};
use opentelemetry::{
    Value, global,
    trace::{SpanId, SpanKind, Status, TraceContextExt, TracerProvider as _},
};
use opentelemetry_sdk::{
    propagation::TraceContextPropagator,
    trace::{InMemorySpanExporter, SdkTracerProvider, SpanData},
};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{
    Code,
    service::interceptor::InterceptedService,
    transport::{Channel, Endpoint, Server},
};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse, health_client::HealthClient};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

/// Starts a health server on an ephemeral port wired like dispatch311 servers.
async fn health_server() -> Channel {
    let (_reporter, health) = tonic_health::server::health_reporter();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(
        Server::builder()
            .trace_fn(server_span)
            .layer(GrpcStatusLayer::default())
            .add_service(health)
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .connect_lazy()
}

/// The finished server spans, waiting for them: a server span ends when its
/// response body (with the status trailers) has been sent.
async fn server_spans(exporter: &InMemorySpanExporter, count: usize) -> Vec<SpanData> {
    for _ in 0..200 {
        let spans: Vec<SpanData> = exporter
            .get_finished_spans()
            .unwrap()
            .into_iter()
            .filter(|span| span.span_kind == SpanKind::Server)
            .collect();
        if spans.len() >= count {
            return spans;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "expected {count} server spans, got {:?}",
        exporter.get_finished_spans()
    );
}

fn attribute(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

fn ids(span: &tracing::Span) -> (opentelemetry::trace::TraceId, SpanId) {
    let cx = span.context();
    let otel_span = cx.span();
    let span_context = otel_span.span_context();
    (span_context.trace_id(), span_context.span_id())
}

// Current-thread runtime: the thread-local subscriber also sees the server's tasks.
#[tokio::test(flavor = "current_thread")]
async fn the_server_span_joins_the_client_spans_trace_and_records_the_status() {
    global::set_text_map_propagator(TraceContextPropagator::new());
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let _subscriber = tracing::subscriber::set_default(subscriber);

    let channel = health_server().await;
    let mut client = HealthClient::new(InterceptedService::new(channel, TraceContextInterceptor));

    let serving_call = tracing::info_span!("check overall health", otel.kind = "client");
    client
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .instrument(serving_call.clone())
        .await
        .expect("the server as a whole is serving");
    let unknown_call = tracing::info_span!("check an unknown service", otel.kind = "client");
    let status = client
        .check(HealthCheckRequest {
            service: "dispatch311.nothing.v1.Nothing".into(),
        })
        .instrument(unknown_call.clone())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    let spans = server_spans(&exporter, 2).await;
    for (client_span, expected_code) in [(&serving_call, 0), (&unknown_call, 5)] {
        let (trace_id, span_id) = ids(client_span);
        let server = spans
            .iter()
            .find(|span| span.span_context.trace_id() == trace_id)
            .expect("a server span in the client's trace");
        assert_eq!(server.parent_span_id, span_id);
        assert!(server.parent_span_is_remote);
        assert_eq!(server.name, "grpc.health.v1.Health/Check");
        assert_eq!(attribute(server, "rpc.system"), Some(Value::from("grpc")));
        assert_eq!(
            attribute(server, "rpc.service"),
            Some(Value::from("grpc.health.v1.Health"))
        );
        assert_eq!(attribute(server, "rpc.method"), Some(Value::from("Check")));
        assert_eq!(
            attribute(server, "rpc.grpc.status_code"),
            Some(Value::I64(expected_code))
        );
        // NOT_FOUND is the caller's mistake, not a server error.
        assert_eq!(server.status, Status::Unset);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_call_without_trace_context_starts_a_new_trace_and_server_failures_are_errors() {
    global::set_text_map_propagator(TraceContextPropagator::new());
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let _subscriber = tracing::subscriber::set_default(subscriber);

    // A plain channel sends no traceparent, and the health service has no such method.
    let mut grpc = tonic::client::Grpc::new(health_server().await);
    grpc.ready().await.unwrap();
    let status = grpc
        .unary(
            tonic::Request::new(HealthCheckRequest::default()),
            http::uri::PathAndQuery::from_static("/grpc.health.v1.Health/Missing"),
            tonic_prost::ProstCodec::<HealthCheckRequest, HealthCheckResponse>::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);

    let spans = server_spans(&exporter, 1).await;
    let server = &spans[0];
    assert_eq!(server.parent_span_id, SpanId::INVALID);
    assert_eq!(server.name, "grpc.health.v1.Health/Missing");
    assert_eq!(
        attribute(server, "rpc.grpc.status_code"),
        Some(Value::I64(12))
    );
    assert!(matches!(server.status, Status::Error { .. }));
}
