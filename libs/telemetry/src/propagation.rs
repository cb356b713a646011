//! W3C trace-context propagation through the two carriers dispatch311 uses:
//! gRPC metadata (see `grpc`) and the `trace_context` map of a job envelope.
//!
//! Both go through the globally registered propagator, which `init` sets to
//! `TraceContextPropagator`; without it nothing would propagate.

use std::collections::HashMap;

use opentelemetry::{Context, global, trace::TraceContextExt};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The trace context of `span`, as `traceparent`/`tracestate` entries.
pub fn inject_span(span: &tracing::Span) -> HashMap<String, String> {
    inject_context(&span.context())
}

/// The trace context of the current span.
pub fn inject_current() -> HashMap<String, String> {
    inject_span(&tracing::Span::current())
}

/// `cx` as `traceparent`/`tracestate` entries; empty when `cx` has no valid span.
pub fn inject_context(cx: &Context) -> HashMap<String, String> {
    let mut carrier = HashMap::new();
    global::get_text_map_propagator(|propagator| propagator.inject_context(cx, &mut carrier));
    carrier
}

/// The remote context carried in `carrier`; an empty context when it carries none.
pub fn extract_context(carrier: &HashMap<String, String>) -> Context {
    global::get_text_map_propagator(|propagator| propagator.extract(carrier))
}

/// The trace id of `span` as 32 lowercase hex characters, if it is sampled into a trace.
pub fn trace_id_of(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    let span_context = cx.span().span_context().clone();
    span_context.is_valid().then(|| span_context.trace_id().to_string())
}
