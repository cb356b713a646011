//! W3C trace-context propagation through the two carriers dispatch311 uses:
//! gRPC metadata (see `grpc`) and the `trace_context` map of a job envelope.
//!
//! Both go through the globally registered propagator, which `init` sets to
//! `TraceContextPropagator`; without it nothing would propagate.

use std::collections::HashMap;

use opentelemetry::{
    Context, global,
    propagation::{Extractor, Injector},
    trace::TraceContextExt,
};
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
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

/// The current span's context as a W3C `traceparent` value, to store with a
/// record so later work on it can link back; empty when there is no trace.
pub fn current_traceparent() -> String {
    inject_current().remove("traceparent").unwrap_or_default()
}

/// Links the current span to the span `traceparent` names (stored by
/// [`current_traceparent`] when the request was made) and names the request
/// on it: work on an existing request is a trace of its own, and the link
/// takes an SRE from it to the request's first trace. A malformed or empty
/// `traceparent` adds no link.
pub fn link_current_to_request(traceparent: &str, sr_number: &str) {
    let span = tracing::Span::current();
    span.set_attribute(crate::attributes::SR_NUMBER, sr_number.to_owned());
    if traceparent.is_empty() {
        return;
    }
    let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let origin = extract_context(&carrier).span().span_context().clone();
    if origin.is_valid() && origin.trace_id() != span.context().span().span_context().trace_id() {
        span.add_link(origin);
    }
}

/// `cx` written into outgoing gRPC metadata (`traceparent`, `tracestate`).
pub fn inject_metadata(cx: &Context, metadata: &mut tonic::metadata::MetadataMap) {
    global::get_text_map_propagator(|propagator| {
        propagator.inject_context(cx, &mut MetadataInjector(metadata))
    });
}

/// The remote context carried in incoming gRPC metadata.
pub fn extract_metadata(metadata: &tonic::metadata::MetadataMap) -> Context {
    global::get_text_map_propagator(|propagator| propagator.extract(&MetadataExtractor(metadata)))
}

/// The remote context carried in HTTP/2 request headers, for code that sees the
/// raw `http::Request` (a tonic `trace_fn`, a tower layer).
pub fn extract_headers(headers: &http::HeaderMap) -> Context {
    global::get_text_map_propagator(|propagator| propagator.extract(&HeaderExtractor(headers)))
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        // Propagator keys and values are ASCII; anything else is dropped rather
        // than failing the call it rides on.
        let Ok(key) = tonic::metadata::MetadataKey::from_bytes(key.as_bytes()) else {
            return;
        };
        let Ok(value) = tonic::metadata::MetadataValue::try_from(value) else {
            return;
        };
        self.0.insert(key, value);
    }
}

struct MetadataExtractor<'a>(&'a tonic::metadata::MetadataMap);

impl Extractor for MetadataExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .map(|key| match key {
                tonic::metadata::KeyRef::Ascii(key) => key.as_str(),
                tonic::metadata::KeyRef::Binary(key) => key.as_str(),
            })
            .collect()
    }
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanId, TraceId};
    use opentelemetry_sdk::propagation::TraceContextPropagator;

    use super::*;

    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn known_carrier() -> HashMap<String, String> {
        global::set_text_map_propagator(TraceContextPropagator::new());
        HashMap::from([("traceparent".to_owned(), TRACEPARENT.to_owned())])
    }

    fn assert_is_known_remote_parent(cx: &Context) {
        let span = cx.span();
        let span_context = span.span_context();
        assert!(span_context.is_remote());
        assert!(span_context.is_sampled());
        assert_eq!(
            span_context.trace_id(),
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()
        );
        assert_eq!(
            span_context.span_id(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap()
        );
    }

    #[test]
    fn a_known_traceparent_survives_a_job_envelope_round_trip() {
        let cx = extract_context(&known_carrier());
        assert_is_known_remote_parent(&cx);

        let carrier = inject_context(&cx);
        assert_eq!(
            carrier.get("traceparent").map(String::as_str),
            Some(TRACEPARENT)
        );
    }

    #[test]
    fn a_known_traceparent_survives_a_grpc_metadata_round_trip() {
        let cx = extract_context(&known_carrier());

        let mut metadata = tonic::metadata::MetadataMap::new();
        inject_metadata(&cx, &mut metadata);
        assert_eq!(
            metadata.get("traceparent").unwrap().to_str().unwrap(),
            TRACEPARENT
        );
        assert_is_known_remote_parent(&extract_metadata(&metadata));

        // A server sees the same metadata as plain HTTP/2 headers.
        assert_is_known_remote_parent(&extract_headers(&metadata.into_headers()));
    }

    #[test]
    fn a_carrier_without_trace_context_yields_no_parent() {
        global::set_text_map_propagator(TraceContextPropagator::new());
        let cx = extract_context(&HashMap::from([(
            "traceparent".to_owned(),
            "not-a-traceparent".to_owned(),
        )]));
        assert!(!cx.span().span_context().is_valid());
        assert!(inject_context(&cx).is_empty());
    }
}
