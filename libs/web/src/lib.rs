//! What every dispatch311 HTTP server shares (the console, the Open311
//! gateway), as axum middleware:
//!
//! - [`traced`]: one server span per request, continuing the caller's W3C
//!   `traceparent` when it sends one (so a browser action or a 311 app's call
//!   is one trace into the gRPC services behind), and the trace id in the
//!   answer's `x-trace-id` header for the help desk;
//! - [`measured`]: the RED metrics, `http.server.request.duration` (seconds;
//!   by method, route template and status code; its count is the number of
//!   requests), the HTTP twin of the gRPC servers' `rpc.server.call.duration`.
//!
//! ```ignore
//! Router::new()
//!     .route(...)
//!     .route_layer(middleware::from_fn(dispatch311_web::measured))
//!     .layer(middleware::from_fn(dispatch311_web::traced))
//! ```

use std::sync::OnceLock;
use std::time::Instant;

use axum::{
    extract::{MatchedPath, Request},
    http::HeaderValue,
    middleware::Next,
    response::Response,
};
use dispatch311_telemetry::propagation;
use opentelemetry::{KeyValue, metrics::Histogram, trace::TraceContextExt as _};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The answer header that carries the request's trace id.
pub const TRACE_ID_HEADER: &str = "x-trace-id";

/// One span per request (the caller's `traceparent` continued when it sends
/// one), its trace id in the answer. Apply with `Router::layer`, so it
/// covers every request, unmatched ones too.
pub async fn traced(request: Request, next: Next) -> Response {
    let span = tracing::info_span!(
        "http.server",
        otel.name = %format!("{} {}", request.method(), request.uri().path()),
        otel.kind = "server",
        http.request.method = %request.method(),
        url.path = %request.uri().path(),
        http.response.status_code = tracing::field::Empty,
    );
    let parent = propagation::extract_headers(request.headers());
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
    let trace_id = propagation::trace_id_of(&span);
    let mut response = next.run(request).instrument(span.clone()).await;
    span.record("http.response.status_code", response.status().as_u16());
    if let Some(trace_id) = trace_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        response.headers_mut().insert(TRACE_ID_HEADER, trace_id);
    }
    response
}

/// Seconds: fine below 100 ms, where a page or an API call is, up to 10 s.
const DURATION_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Made at the first request, after the process installed its meter provider.
fn request_duration() -> &'static Histogram<f64> {
    static DURATION: OnceLock<Histogram<f64>> = OnceLock::new();
    DURATION.get_or_init(|| {
        dispatch311_telemetry::metrics::meter()
            .f64_histogram("http.server.request.duration")
            .with_unit("s")
            .with_description("Duration of HTTP requests, until their answer's head")
            .with_boundaries(DURATION_BUCKETS.to_vec())
            .build()
    })
}

/// Records each request's duration by method, route template (`/jobs/{job_id}`,
/// never the path itself: ids stay out of labels) and status code. Apply
/// with `Router::route_layer`, where the matched route is known. A live
/// stream (server-sent events) counts until its head is sent.
pub async fn measured(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    request_duration().record(
        started.elapsed().as_secs_f64(),
        &[
            KeyValue::new("http.request.method", method),
            KeyValue::new("http.route", route),
            KeyValue::new(
                "http.response.status_code",
                i64::from(response.status().as_u16()),
            ),
        ],
    );
    response
}

/// The listeners of an HTTP server: its own address (`setting` names the
/// variable in the error, e.g. `DISPATCH311_CONSOLE_ADDR`) and, when given,
/// the address of its `/metrics`.
pub async fn bind(
    setting: &str,
    addr: std::net::SocketAddr,
    metrics_addr: Option<std::net::SocketAddr>,
) -> anyhow::Result<(tokio::net::TcpListener, Option<tokio::net::TcpListener>)> {
    use anyhow::Context as _;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {setting}={addr}"))?;
    let metrics = match metrics_addr {
        Some(addr) => Some(dispatch311_grpc::metrics::bind(addr).await?),
        None => None,
    };
    Ok((listener, metrics))
}

/// Serves `router` on `listener` (and the process's `/metrics` on `metrics`,
/// when given) until `shutdown` resolves or a background worker fails; then
/// cancels `closing` (live streams end, so the server can drain) and lets
/// the requests in flight finish. `what` names the server in its log and errors.
pub async fn serve(
    what: &str,
    listener: tokio::net::TcpListener,
    metrics: Option<tokio::net::TcpListener>,
    router: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    closing: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let mut workers = dispatch311_grpc::Workers::new();
    if let Some(listener) = metrics {
        workers.spawn(
            "metrics endpoint",
            dispatch311_grpc::metrics::serve(listener, workers.stop_token()),
        );
    }
    tokio::spawn({
        let closing = closing.clone();
        let failure = workers.failure();
        async move {
            tokio::select! {
                () = shutdown => {}
                () = failure.cancelled() => {}
            }
            closing.cancel();
        }
    });
    let address = listener.local_addr()?;
    tracing::info!(%address, "{what} listening");
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(async move { closing.cancelled().await })
        .await
        .with_context(|| format!("the {what}'s web server failed"));
    workers.stop().await?;
    served
}
