//! What dispatch tells the other services, written to its outbox in the
//! transaction of the change: status updates for intake's public timeline,
//! closed events for the survey service, and its own scheduled timers.

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use dispatch311_domain::{
    jobs::{kinds, queues},
    time::to_timestamp,
};
use dispatch311_proto::{
    common::v1::{ResolutionCode, ServiceRequestStatus},
    jobs::v1::{ClosedEvent, DispatchTimer, StatusUpdate},
};
use dispatch311_queue::{JobEnvelope, QueueError, new_traced_envelope, outbox};
use prost::Message as _;
use prost_types::Timestamp;
use sqlx::PgConnection;

/// A public status change of the request behind a job. `sequence` is the job
/// event that caused it; `transition_key` makes a redelivery harmless.
pub struct PublicChange<'a> {
    pub sr_id: &'a str,
    /// The request's epoch (see `StatusUpdate.dispatch_epoch`).
    pub epoch: i32,
    pub status: ServiceRequestStatus,
    pub message: String,
    pub transition_key: String,
    pub sequence: i64,
    pub at: DateTime<Utc>,
    pub resolution: Option<(ResolutionCode, String)>,
}

pub async fn tell_intake(
    conn: &mut PgConnection,
    change: PublicChange<'_>,
) -> Result<(), QueueError> {
    let (resolution_code, resolution_text) = change
        .resolution
        .unwrap_or((ResolutionCode::Unspecified, String::new()));
    let update = StatusUpdate {
        sr_id: change.sr_id.to_string(),
        status: change.status as i32,
        occurred_at: Some(to_timestamp(change.at)),
        source: "dispatch".into(),
        message: change.message,
        resolution_code: resolution_code as i32,
        resolution_text,
        transition_key: dispatch311_domain::jobs::epoch_key(&change.transition_key, change.epoch),
        dispatch_sequence: change.sequence,
        dispatch_epoch: change.epoch as u32,
        ..Default::default()
    };
    outbox::enqueue(
        conn,
        queues::STATUS,
        kinds::STATUS_UPDATE,
        &update.sr_id,
        &update,
    )
    .await?;
    Ok(())
}

pub async fn publish_closed(
    conn: &mut PgConnection,
    event: &ClosedEvent,
) -> Result<(), QueueError> {
    outbox::enqueue(conn, queues::CLOSED, kinds::CLOSED, &event.sr_id, event).await?;
    Ok(())
}

/// A check on a job due at `at` on the shared queue, so it survives
/// restarts and runs on one replica.
fn timer_envelope(
    sr_id: &str,
    timer: &DispatchTimer,
    at: DateTime<Utc>,
) -> Result<JobEnvelope, QueueError> {
    let (mut envelope, _span) =
        new_traced_envelope(queues::DISPATCH_TIMERS, kinds::DISPATCH_TIMER, sr_id, timer)?;
    let at: SystemTime = at.into();
    envelope.deliver_at = Some(Timestamp::from(at));
    Ok(envelope)
}

/// The outbox row of [`timer_envelope`], for a change that writes it itself.
pub fn prepare_timer(
    sr_id: &str,
    timer: &DispatchTimer,
    at: DateTime<Utc>,
) -> Result<outbox::OutboxRow, QueueError> {
    let envelope = timer_envelope(sr_id, timer, at)?;
    Ok(outbox::OutboxRow {
        queue: queues::DISPATCH_TIMERS.to_string(),
        envelope: envelope.encode_to_vec(),
        job_id: envelope.job_id,
    })
}

/// Schedules [`timer_envelope`] in the caller's transaction.
pub async fn schedule_timer(
    conn: &mut PgConnection,
    sr_id: &str,
    timer: &DispatchTimer,
    at: DateTime<Utc>,
) -> Result<(), QueueError> {
    let envelope = timer_envelope(sr_id, timer, at)?;
    outbox::enqueue_envelope(conn, queues::DISPATCH_TIMERS, &envelope).await
}

/// The `check` of an acknowledgement timer.
pub const ACK_TIMEOUT: &str = "ack_timeout";
/// The `check` of an SLA timer.
pub const SLA_BREACH: &str = "sla_breach";

/// The outbox row of an SLA timer for `job_id`, due at `due`; `Store::enqueue`
/// writes it in the statement that creates the job.
pub fn prepare_sla_timer(
    sr_id: &str,
    job_id: uuid::Uuid,
    due: DateTime<Utc>,
) -> Result<outbox::OutboxRow, QueueError> {
    let timer = DispatchTimer {
        job_id: job_id.to_string(),
        check: SLA_BREACH.into(),
        assignment_number: 0,
    };
    prepare_timer(sr_id, &timer, due)
}
