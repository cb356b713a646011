//! One trace across a queue hop: the consumer span is a child of the producer span,
//! on every attempt.

mod common;

use std::time::Duration;

use common::{Recorder, Running, connect, delete_keys, route_job, test_config, wait_until};
use dispatch311_queue::{Delivery, Outcome};
use opentelemetry::trace::{SpanKind, TracerProvider as _};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

const QUEUE: &str = "route";

fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|KeyValue { key: k, .. }| k.as_str() == key)
        .map(|kv| &kv.value)
}

// current-thread runtime: the subscriber is the thread's default, and every task of
// the test (the consumer's included) runs on this thread
#[tokio::test]
async fn consumer_span_is_a_child_of_the_producer_span_on_every_attempt() {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("queue-test")));
    let _default = tracing::subscriber::set_default(subscriber);

    let config = test_config();
    let queue = connect(config.clone()).await;
    let recorder = Recorder::default();
    let handler = {
        let recorder = recorder.clone();
        move |delivery: Delivery| {
            recorder.record(&delivery);
            let outcome = if delivery.envelope.attempt == 1 {
                Outcome::retry("routing table not loaded")
            } else {
                Outcome::Done
            };
            std::future::ready(outcome)
        }
    };
    let consumer = Running::start(&queue, QUEUE, "routing", handler);

    let request = tracing::info_span!("file request");
    let job_id = queue
        .publish(QUEUE, "route", "sr-trace", &route_job("sr-trace"))
        .instrument(request)
        .await
        .unwrap();
    wait_until("both attempts", Duration::from_secs(10), || async {
        recorder.len() == 2
    })
    .await;
    consumer.stop().await;
    let _ = provider.force_flush();

    let spans = exporter.get_finished_spans().unwrap();
    let request = spans.iter().find(|s| s.name == "file request").unwrap();
    let producer = spans
        .iter()
        .find(|s| s.name == "publish route")
        .expect("producer span");
    let consumers: Vec<&SpanData> = spans.iter().filter(|s| s.name == "process route").collect();
    assert_eq!(consumers.len(), 2, "one consumer span per attempt");

    let trace_id = request.span_context.trace_id();
    assert_eq!(producer.span_context.trace_id(), trace_id);
    assert_eq!(producer.parent_span_id, request.span_context.span_id());
    assert_eq!(producer.span_kind, SpanKind::Producer);
    assert_eq!(
        attribute(producer, "messaging.message.id"),
        Some(&Value::from(job_id.clone()))
    );
    for consumer in &consumers {
        assert_eq!(
            consumer.span_context.trace_id(),
            trace_id,
            "the queue hop started a new trace"
        );
        assert_eq!(consumer.parent_span_id, producer.span_context.span_id());
        assert_eq!(consumer.span_kind, SpanKind::Consumer);
        assert_eq!(
            attribute(consumer, "messaging.message.id"),
            Some(&Value::from(job_id.clone()))
        );
        assert_eq!(
            attribute(consumer, "messaging.destination.name"),
            Some(&Value::from(QUEUE))
        );
        assert!(
            matches!(attribute(consumer, "dispatch311.queue.wait_ms"), Some(Value::I64(ms)) if *ms >= 0),
            "queue wait is not a number of milliseconds"
        );
    }
    let attempts: Vec<_> = consumers
        .iter()
        .map(|span| attribute(span, "dispatch311.job.attempt").cloned())
        .collect();
    assert!(
        attempts.contains(&Some(Value::I64(1))) && attempts.contains(&Some(Value::I64(2))),
        "{attempts:?}"
    );
    delete_keys(&config).await;
}
