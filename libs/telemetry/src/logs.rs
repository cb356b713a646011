//! JSON log lines that join traces: a line written inside a span carries the
//! OpenTelemetry `trace_id` and `span_id` (hex) as top-level fields, so a log
//! search for a trace id finds every line of that request in every service.
//!
//! It takes two small pieces because tracing-opentelemetry keeps each span's
//! OpenTelemetry context private, builds it lazily, and can only be asked
//! through the dispatcher, which an event formatter cannot reach.
//! [`OtelIdsLayer`] asks when a span is first entered (OpenTelemetry builds
//! the span at that point anyway) and stores the ids in the span's extensions;
//! [`JsonWithTraceIds`] reads them back while formatting an event.

use std::{fmt, sync::OnceLock};

use opentelemetry::trace::{SpanId, TraceContextExt, TraceId};
use tracing::{Dispatch, Event, Subscriber, dispatcher::WeakDispatch, span};
use tracing_subscriber::{
    fmt::{
        FmtContext, FormatEvent, FormatFields,
        format::{Format, Json, JsonFields, Writer},
    },
    layer::{self, Layer},
    registry::LookupSpan,
};

/// The OpenTelemetry ids of one span, kept in its extensions.
#[derive(Clone, Copy, Debug)]
struct OtelIds {
    trace_id: TraceId,
    span_id: SpanId,
}

/// Stores each span's OpenTelemetry ids when it is first entered. Must sit
/// after the tracing-opentelemetry layer in the same subscriber.
#[derive(Debug, Default)]
pub(crate) struct OtelIdsLayer {
    // Weak: the dispatcher owns this layer.
    dispatch: OnceLock<WeakDispatch>,
}

impl<S> Layer<S> for OtelIdsLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, dispatch: &Dispatch) {
        let _ = self.dispatch.set(dispatch.downgrade());
    }

    fn on_enter(&self, id: &span::Id, ctx: layer::Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        if span.extensions().get::<OtelIds>().is_some() {
            return;
        }
        let Some(dispatch) = self.dispatch.get().and_then(WeakDispatch::upgrade) else {
            return;
        };
        let Some(cx) = tracing_opentelemetry::get_otel_context(id, &dispatch) else {
            return;
        };
        let otel_span = cx.span();
        let span_context = otel_span.span_context();
        if !span_context.is_valid() {
            return;
        }
        span.extensions_mut().insert(OtelIds {
            trace_id: span_context.trace_id(),
            span_id: span_context.span_id(),
        });
    }
}

/// tracing-subscriber's JSON format with `trace_id` and `span_id` first.
pub(crate) struct JsonWithTraceIds {
    json: Format<Json>,
}

impl JsonWithTraceIds {
    pub(crate) fn new() -> Self {
        let json = tracing_subscriber::fmt::format()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false);
        Self { json }
    }
}

impl<S, N> FormatEvent<S, N> for JsonWithTraceIds
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // The nearest span with ids: an event's own span was entered, unless
        // the event names an explicit parent that never was.
        let ids = ctx.parent_span().and_then(|span| {
            span.scope()
                .find_map(|span| span.extensions().get::<OtelIds>().copied())
        });
        let Some(ids) = ids else {
            return self.json.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.json.format_event(ctx, Writer::new(&mut line), event)?;
        let Some(rest) = line.strip_prefix('{') else {
            return writer.write_str(&line);
        };
        let separator = if rest.starts_with('}') { "" } else { "," };
        write!(
            writer,
            r#"{{"trace_id":"{}","span_id":"{}"{separator}{rest}"#,
            ids.trace_id, ids.span_id
        )
    }
}

/// The JSON lines layer used by `init`, writing to `make_writer`.
pub(crate) fn json_layer<S, W>(
    make_writer: W,
) -> tracing_subscriber::fmt::Layer<S, JsonFields, JsonWithTraceIds, W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + 'static,
{
    tracing_subscriber::fmt::layer()
        .fmt_fields(JsonFields::new())
        .event_format(JsonWithTraceIds::new())
        .with_writer(make_writer)
}

#[cfg(test)]
mod tests {
    use std::{
        collections::HashMap,
        io,
        sync::{Arc, Mutex},
    };

    use opentelemetry::{global, trace::TracerProvider as _};
    use opentelemetry_sdk::{propagation::TraceContextPropagator, trace::SdkTracerProvider};
    use serde_json::Value;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;
    use crate::propagation;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Lines {
        fn parsed(&self) -> Vec<Value> {
            let bytes = self.0.lock().unwrap().clone();
            String::from_utf8(bytes)
                .unwrap()
                .lines()
                .map(|line| serde_json::from_str(line).expect("every line is one JSON object"))
                .collect()
        }
    }

    /// Runs `f` with the subscriber `init` builds (minus the filter), logging to the returned lines.
    fn with_json_logs(f: impl FnOnce()) -> Vec<Value> {
        let provider = SdkTracerProvider::builder().build();
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
            .with(OtelIdsLayer::default())
            .with(json_layer(move || writer.clone()));
        tracing::subscriber::with_default(subscriber, f);
        lines.parsed()
    }

    #[test]
    fn a_json_line_inside_a_span_carries_that_spans_trace_and_span_ids() {
        let mut expected = Vec::new();
        let lines = with_json_logs(|| {
            tracing::info!("outside any span");
            let outer = tracing::info_span!("handle", sr = "SR-1");
            let _outer = outer.enter();
            tracing::info!(attempt = 1, "in the outer span");
            let inner = tracing::info_span!("store");
            inner.in_scope(|| tracing::warn!("in the inner span"));
            for span in [&outer, &inner] {
                let cx = span.context();
                let otel_span = cx.span();
                let ids = otel_span.span_context();
                expected.push((ids.trace_id().to_string(), ids.span_id().to_string()));
            }
        });

        assert_eq!(lines.len(), 3);
        assert!(lines[0].get("trace_id").is_none());
        assert_eq!(lines[0]["message"], "outside any span");

        let (outer_trace, outer_span) = &expected[0];
        let (inner_trace, inner_span) = &expected[1];
        assert_eq!(outer_trace.len(), 32);
        assert_eq!(inner_trace, outer_trace);
        assert_eq!(lines[1]["trace_id"], outer_trace.as_str());
        assert_eq!(lines[1]["span_id"], outer_span.as_str());
        assert_eq!(lines[1]["attempt"], 1);
        assert_eq!(lines[1]["span"]["sr"], "SR-1");
        assert_eq!(lines[2]["trace_id"], outer_trace.as_str());
        assert_eq!(lines[2]["span_id"], inner_span.as_str());
        assert_eq!(lines[2]["level"], "WARN");
    }

    #[test]
    fn a_json_line_in_a_span_continuing_a_remote_trace_carries_the_remote_trace_id() {
        global::set_text_map_propagator(TraceContextPropagator::new());
        let carrier = HashMap::from([(
            "traceparent".to_owned(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
        )]);
        let lines = with_json_logs(|| {
            let span = tracing::info_span!("process");
            span.set_parent(propagation::extract_context(&carrier))
                .unwrap();
            span.in_scope(|| tracing::info!("processing"));
        });
        assert_eq!(lines[0]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(lines[0]["span_id"], "00f067aa0ba902b7");
    }
}
