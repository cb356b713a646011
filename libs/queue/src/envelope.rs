//! Building job envelopes and the producer span around publishing them.
//!
//! `JobQueue::publish`, `JobQueue::schedule` and `outbox::enqueue` all go through
//! [`new_traced_envelope`], so a job carries the same fields and its producer span looks
//! the same whichever way it entered the queue.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dispatch311_proto::jobs::v1::JobEnvelope;
use prost::Message;
use prost_types::Timestamp;
use tracing::Span;

use crate::error::Result;
use crate::keys::validate_name;

/// A first-attempt envelope with a new UUIDv7 job id, `enqueued_at` now, and the given
/// trace context (often empty, filled in once the producer span exists).
pub fn new_envelope(
    kind: &str,
    sr_id: &str,
    payload: &impl Message,
    trace_context: HashMap<String, String>,
) -> JobEnvelope {
    JobEnvelope {
        job_id: uuid::Uuid::now_v7().to_string(),
        kind: kind.to_owned(),
        sr_id: sr_id.to_owned(),
        attempt: 1,
        enqueued_at: Some(Timestamp::from(SystemTime::now())),
        trace_context,
        payload: payload.encode_to_vec(),
        last_error: String::new(),
        deliver_at: None,
    }
}

/// The PRODUCER span `publish <queue>` for `envelope`, a child of the current span.
pub fn producer_span(queue: &str, envelope: &JobEnvelope) -> Span {
    tracing::info_span!(
        "publish",
        otel.name = %format!("publish {queue}"),
        otel.kind = "producer",
        messaging.system = "redis",
        messaging.destination.name = %queue,
        messaging.operation.type = "send",
        messaging.message.id = %envelope.job_id,
        dispatch311.sr.id = %envelope.sr_id,
    )
}

/// The CLIENT span of one Redis round trip of the queue (`db.system` redis,
/// `db.operation.name` the command, or `PIPELINE` with its command count), so
/// a slow publish or settle shows in the trace. None outside a traced job, like
/// the database's statement spans: an idle poll is not worth a trace.
pub fn redis_span(operation: &'static str, queue: &str, commands: usize) -> Span {
    if !dispatch311_telemetry::detail_spans() || Span::current().is_none() {
        return Span::none();
    }
    tracing::info_span!(
        "redis",
        otel.name = %format_args!("{operation} {queue}"),
        otel.kind = "client",
        db.system = "redis",
        db.operation.name = operation,
        db.operation.batch.size = i64::try_from(commands).unwrap_or(i64::MAX),
        messaging.destination.name = %queue,
    )
}

/// A new envelope and its producer span, with the span's context already injected into
/// the envelope so the consumer continues the same trace. Publish the envelope inside
/// the returned span.
pub fn new_traced_envelope(
    queue: &str,
    kind: &str,
    sr_id: &str,
    payload: &impl Message,
) -> Result<(JobEnvelope, Span)> {
    validate_name("queue name", queue)?;
    validate_name("job kind", kind)?;
    let mut envelope = new_envelope(kind, sr_id, payload, HashMap::new());
    let span = producer_span(queue, &envelope);
    envelope.trace_context = dispatch311_telemetry::propagation::inject_span(&span);
    Ok((envelope, span))
}

/// Milliseconds since the epoch, rounded up so a job is never due before its time.
pub(crate) fn due_millis(at: SystemTime) -> i64 {
    let since_epoch = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let millis =
        since_epoch.as_millis() + u128::from(!since_epoch.subsec_nanos().is_multiple_of(1_000_000));
    i64::try_from(millis).unwrap_or(i64::MAX)
}

/// Milliseconds since the epoch, rounded down: what is due "now".
pub(crate) fn now_millis() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) fn to_system_time(timestamp: Option<&Timestamp>) -> Option<SystemTime> {
    timestamp.and_then(|t| SystemTime::try_from(*t).ok())
}

/// How long the job has been waiting for this delivery: since it became due (a
/// scheduled job or a retry) or since it was first enqueued.
pub(crate) fn queue_wait(envelope: &JobEnvelope, now: SystemTime) -> Duration {
    let enqueued = to_system_time(envelope.enqueued_at.as_ref());
    let due = to_system_time(envelope.deliver_at.as_ref());
    let Some(available_since) = enqueued.max(due) else {
        return Duration::ZERO;
    };
    now.duration_since(available_since).unwrap_or_default()
}

/// A member of the delayed set: `<job_id>\n<kind>\n<envelope bytes>`. The readable
/// header lets the promotion script write the `job_id` and `kind` fields of the stream
/// entry without decoding protobuf in Lua; the envelope bytes also make the member
/// unique per attempt.
pub(crate) fn delayed_member(envelope: &JobEnvelope) -> Vec<u8> {
    let body = envelope.encode_to_vec();
    let mut member =
        Vec::with_capacity(envelope.job_id.len() + envelope.kind.len() + 2 + body.len());
    member.extend_from_slice(envelope.job_id.as_bytes());
    member.push(b'\n');
    member.extend_from_slice(envelope.kind.as_bytes());
    member.push(b'\n');
    member.extend_from_slice(&body);
    member
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_envelope_is_a_first_attempt_with_a_time_ordered_id() {
        let payload = Timestamp {
            seconds: 7,
            nanos: 0,
        };
        let envelope = new_envelope("route", "sr-1", &payload, HashMap::new());
        assert_eq!(envelope.attempt, 1);
        assert_eq!(envelope.kind, "route");
        assert_eq!(envelope.sr_id, "sr-1");
        assert_eq!(
            Timestamp::decode(envelope.payload.as_slice()).unwrap(),
            payload
        );
        let id = uuid::Uuid::parse_str(&envelope.job_id).unwrap();
        assert_eq!(id.get_version_num(), 7);
        assert!(envelope.enqueued_at.is_some());
    }

    #[test]
    fn due_time_rounds_up_and_now_rounds_down() {
        let at = UNIX_EPOCH + Duration::from_micros(1_500);
        assert_eq!(due_millis(at), 2);
        assert_eq!(due_millis(UNIX_EPOCH + Duration::from_millis(3)), 3);
    }

    #[test]
    fn queue_wait_counts_from_the_due_time_of_a_retry() {
        let now = SystemTime::now();
        let mut envelope = new_envelope("route", "sr-1", &Timestamp::default(), HashMap::new());
        envelope.enqueued_at = Some(Timestamp::from(now - Duration::from_secs(60)));
        assert!(queue_wait(&envelope, now) >= Duration::from_secs(59));
        envelope.deliver_at = Some(Timestamp::from(now - Duration::from_secs(2)));
        let wait = queue_wait(&envelope, now);
        assert!(wait >= Duration::from_secs(2) && wait < Duration::from_secs(3));
    }

    #[test]
    fn delayed_member_starts_with_a_readable_header() {
        let envelope = new_envelope("route", "sr-1", &Timestamp::default(), HashMap::new());
        let member = delayed_member(&envelope);
        let header = format!("{}\nroute\n", envelope.job_id);
        assert!(member.starts_with(header.as_bytes()));
        let decoded = JobEnvelope::decode(&member[header.len()..]).unwrap();
        assert_eq!(decoded, envelope);
    }
}
