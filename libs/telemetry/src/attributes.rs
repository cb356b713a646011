//! Span attribute and log field names, defined once. Project attributes use the
//! `dispatch311.` prefix; OpenTelemetry semantic-convention names are used
//! where one exists.
//!
//! `tracing` field names must be literals in macros, so these constants are
//! for `Span::set_attribute`/`record` and for tests that read exported spans;
//! the literal spellings in `info_span!` calls must match them.

/// The human-readable service request number, e.g. "SR-2026-0000042".
pub const SR_NUMBER: &str = "dispatch311.sr.number";
/// The service request id (UUID).
pub const SR_ID: &str = "dispatch311.sr.id";
/// Complaint type, e.g. "Illegal Parking".
pub const COMPLAINT_TYPE: &str = "dispatch311.complaint_type";
/// Police precinct a request was routed to.
pub const PRECINCT: &str = "dispatch311.precinct";
/// Agency a request was routed to.
pub const AGENCY: &str = "dispatch311.agency";
/// Job id on the queue.
pub const JOB_ID: &str = "dispatch311.job.id";
/// Delivery attempt of a job (1 = first).
pub const JOB_ATTEMPT: &str = "dispatch311.job.attempt";
/// Milliseconds a job waited on the queue before this delivery.
pub const QUEUE_WAIT_MS: &str = "dispatch311.queue.wait_ms";

/// Semantic conventions for messaging spans.
pub const MESSAGING_SYSTEM: &str = "messaging.system";
pub const MESSAGING_DESTINATION: &str = "messaging.destination.name";
pub const MESSAGING_OPERATION: &str = "messaging.operation.type";
pub const MESSAGING_MESSAGE_ID: &str = "messaging.message.id";
pub const MESSAGING_CONSUMER_GROUP: &str = "messaging.consumer.group.name";

/// Semantic conventions for RPC spans.
pub const RPC_SYSTEM: &str = "rpc.system";
pub const RPC_SERVICE: &str = "rpc.service";
pub const RPC_METHOD: &str = "rpc.method";
pub const RPC_GRPC_STATUS_CODE: &str = "rpc.grpc.status_code";

/// Sets `key` on the current span's exported attributes. Unlike
/// `Span::record`, the span need not have declared the field, so a handler can
/// add what it learns (the SR number it decoded) to a span created elsewhere.
pub fn set_on_current(key: &'static str, value: impl Into<opentelemetry::Value>) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    tracing::Span::current().set_attribute(key, value);
}
