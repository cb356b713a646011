//! Trace context across gRPC calls.
//!
//! Servers create their request span in `Server::builder().trace_fn(server_span)`,
//! which sets the caller's context as parent *before* the span is entered (set
//! later, inside an instrumented handler, it would silently start a new trace).
//! `GrpcStatusLayer` then records the gRPC status on that span. Clients wrap their
//! channel in `TraceContextInterceptor`, which sends the current span's context
//! as `traceparent` metadata.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};

use http_body_util::BodyExt;
use opentelemetry::{KeyValue, metrics::Histogram, trace::TraceContextExt};
use tonic::{
    Code, Status,
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::propagation;

/// A channel that sends the current span's trace context with every call and
/// records each call in `rpc.client.call.duration`:
/// `IntakeServiceClient<TracedChannel>`.
pub type TracedChannel = InterceptedService<ClientMetrics<Channel>, TraceContextInterceptor>;

/// `channel` with trace context and client metrics: what
/// `dispatch311_grpc::client::connect_lazy` returns.
pub fn traced(channel: Channel) -> TracedChannel {
    InterceptedService::new(ClientMetrics::new(channel), TraceContextInterceptor)
}

/// Records each outgoing call's duration in `rpc.client.call.duration`
/// (seconds; by `rpc.service`, `rpc.method` and `rpc.grpc.status_code`,
/// UNAVAILABLE when the call never reached the server): the RED metrics of
/// the calling side, which see what the callee cannot (it was down, or the
/// network was slow).
#[derive(Clone, Debug)]
pub struct ClientMetrics<S> {
    inner: S,
    duration: Histogram<f64>,
}

impl<S> ClientMetrics<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            duration: crate::metrics::meter()
                .f64_histogram("rpc.client.call.duration")
                .with_unit("s")
                .with_description("Duration of outgoing gRPC calls, until their status")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
        }
    }
}

impl<S, RequestBody> tower::Service<http::Request<RequestBody>> for ClientMetrics<S>
where
    S: tower::Service<http::Request<RequestBody>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<RequestBody>) -> Self::Future {
        let call = CallMetrics::start(self.duration.clone(), request.uri().path());
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = match response.await {
                Ok(response) => response,
                Err(error) => {
                    call.record(Code::Unavailable);
                    return Err(error);
                }
            };
            if let Some(code) = grpc_status(response.headers()) {
                call.record(code);
                return Ok(response);
            }
            Ok(response.map(|body| {
                tonic::body::Body::new(body.map_frame(move |frame| {
                    if let Some(code) = frame.trailers_ref().and_then(grpc_status) {
                        call.record(code);
                    }
                    frame
                }))
            }))
        })
    }
}

/// The span of one incoming gRPC call, child of the caller's span when the
/// request carries a `traceparent`. For `Server::builder().trace_fn(server_span)`.
pub fn server_span(request: &http::Request<()>) -> tracing::Span {
    let path = request.uri().path().trim_start_matches('/');
    let (service, method) = path.split_once('/').unwrap_or((path, ""));
    let span = tracing::info_span!(
        "grpc.server",
        otel.name = %path,
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
        rpc.grpc.status_code = tracing::field::Empty,
    );
    let parent = propagation::extract_headers(request.headers());
    if parent.span().span_context().is_valid() {
        // Fails only when the span is disabled by the log filter: nothing to trace then.
        let _ = span.set_parent(parent);
    }
    span
}

/// Sends the current span's trace context as gRPC metadata. Interceptors run
/// synchronously inside the client call, so the context is that of the span
/// the call is made in (an `#[instrument]`ed handler, or `.instrument(span)`).
#[derive(Clone, Copy, Debug, Default)]
pub struct TraceContextInterceptor;

impl Interceptor for TraceContextInterceptor {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        let cx = tracing::Span::current().context();
        propagation::inject_metadata(&cx, request.metadata_mut());
        Ok(request)
    }
}

/// Records `rpc.grpc.status_code` on the server span (and marks it as an
/// error for the codes that mean the server failed). Add it with
/// `Server::builder().trace_fn(server_span).layer(GrpcStatusLayer)`.
///
/// Error statuses of unary calls arrive in the response headers; every other
/// status arrives in the trailers at the end of the body, so the body is
/// watched too, which keeps the span open until a stream is finished.
///
/// It also records each call's duration in `rpc.server.call.duration`
/// (seconds; by `rpc.service`, `rpc.method` and `rpc.grpc.status_code`), whose
/// count is the number of calls: the RED metrics of every server. Build it
/// after `init`, so the instrument comes from the installed meter provider.
#[derive(Clone, Debug)]
pub struct GrpcStatusLayer {
    duration: Histogram<f64>,
}

impl Default for GrpcStatusLayer {
    fn default() -> Self {
        Self {
            duration: crate::metrics::meter()
                .f64_histogram("rpc.server.call.duration")
                .with_unit("s")
                .with_description("Duration of incoming gRPC calls, until their status")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
        }
    }
}

/// Seconds: fine below 100 ms, where a healthy call is, up to 10 s.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

impl<S> tower::Layer<S> for GrpcStatusLayer {
    type Service = GrpcStatusService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcStatusService {
            inner,
            duration: self.duration.clone(),
        }
    }
}

/// The service built by [`GrpcStatusLayer`].
#[derive(Clone, Debug)]
pub struct GrpcStatusService<S> {
    inner: S,
    duration: Histogram<f64>,
}

impl<S, RequestBody> tower::Service<http::Request<RequestBody>> for GrpcStatusService<S>
where
    S: tower::Service<http::Request<RequestBody>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<RequestBody>) -> Self::Future {
        let call = CallMetrics::start(self.duration.clone(), request.uri().path());
        let response = self.inner.call(request);
        Box::pin(async move {
            let mut response = response.await?;
            undecodable_is_invalid_argument(response.headers_mut());
            // tonic polls this future inside the span `trace_fn` created.
            let span = tracing::Span::current();
            if let Some(code) = grpc_status(response.headers()) {
                record_status(&span, code);
                call.record(code);
                return Ok(response);
            }
            Ok(response.map(|body| {
                tonic::body::Body::new(body.map_frame(move |frame| {
                    if let Some(code) = frame.trailers_ref().and_then(grpc_status) {
                        record_status(&span, code);
                        call.record(code);
                    }
                    frame
                }))
            }))
        })
    }
}

/// What one call's duration is recorded with.
struct CallMetrics {
    duration: Histogram<f64>,
    started: Instant,
    attributes: [KeyValue; 3],
}

impl CallMetrics {
    /// Starts timing a call to `path` (`/package.Service/Method`).
    fn start(duration: Histogram<f64>, path: &str) -> Self {
        let path = path.trim_start_matches('/');
        let (service, method) = path.split_once('/').unwrap_or((path, ""));
        // the routes are the services' own: a bounded set of names
        Self {
            duration,
            started: Instant::now(),
            attributes: [
                KeyValue::new("rpc.system", "grpc"),
                KeyValue::new("rpc.service", service.to_owned()),
                KeyValue::new("rpc.method", method.to_owned()),
            ],
        }
    }

    fn record(&self, code: Code) {
        let [system, service, method] = self.attributes.clone();
        self.duration.record(
            self.started.elapsed().as_secs_f64(),
            &[
                system,
                service,
                method,
                KeyValue::new("rpc.grpc.status_code", code as i64),
            ],
        );
    }
}

/// Two statuses tonic gives malformed requests, as a client should read them:
/// bytes that are not a valid message (a string that is not UTF-8, a
/// truncated field) come back INTERNAL, which tells a careful client the
/// server failed and the request may have done something; it is the
/// caller's input and nothing ran, so INVALID_ARGUMENT, as for every other
/// bad input. A message past the size limit comes back OUT_OF_RANGE, where
/// gRPC's status code table says RESOURCE_EXHAUSTED.
fn undecodable_is_invalid_argument(headers: &mut http::HeaderMap) {
    let rewritten = match grpc_status(headers) {
        Some(Code::Internal) if message_starts(headers, "failed to decode Protobuf message") => {
            Code::InvalidArgument
        }
        Some(Code::OutOfRange)
            if message_starts(headers, "Error, decoded message length too large") =>
        {
            Code::ResourceExhausted
        }
        _ => return,
    };
    headers.insert("grpc-status", http::HeaderValue::from(rewritten as i32));
}

/// Whether the response's `grpc-message` (percent-encoded on the wire) starts with `prefix`.
fn message_starts(headers: &http::HeaderMap, prefix: &str) -> bool {
    headers
        .get("grpc-message")
        .and_then(|message| message.to_str().ok())
        .is_some_and(|message| message.replace("%20", " ").starts_with(prefix))
}

fn grpc_status(headers: &http::HeaderMap) -> Option<Code> {
    let value = headers.get("grpc-status")?.to_str().ok()?;
    value.parse::<i32>().ok().map(Code::from_i32)
}

fn record_status(span: &tracing::Span, code: Code) {
    span.record("rpc.grpc.status_code", code as i64);
    // The codes OpenTelemetry's RPC conventions count as server errors; the
    // others (NOT_FOUND, INVALID_ARGUMENT…) are the caller's mistake.
    let server_error = matches!(
        code,
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    );
    if server_error {
        span.record("otel.status_code", "error");
    }
}
