//! `init` as a binary calls it: no collector configured.

use dispatch311_telemetry::propagation;

#[tokio::test]
async fn init_gives_spans_real_trace_ids_without_a_collector_and_tolerates_a_second_call() {
    let guard = dispatch311_telemetry::init("telemetry-test").unwrap();

    let span = tracing::info_span!("handle");
    let trace_id = propagation::trace_id_of(&span).expect("a valid trace id without an exporter");
    assert_eq!(trace_id.len(), 32);
    assert_ne!(trace_id, "0".repeat(32));

    // The propagator is registered: the span's context goes into a job envelope.
    let carrier = propagation::inject_span(&span);
    assert!(carrier["traceparent"].contains(&trace_id));

    let second = dispatch311_telemetry::init("telemetry-test").unwrap();
    drop(second);
    // The first guard still owns the provider: spans keep their ids.
    assert!(propagation::trace_id_of(&tracing::info_span!("after")).is_some());
    drop(guard);
}
