//! One change to a job, decided before anything is written.
//!
//! A transition reads the job (and the units it touches) as they are, checks
//! the state machine and the rules, and describes here everything it writes:
//! the job's new row, its units' new rows and feed entries, the hash-chained
//! events (hashed here, from the job's last hash as read), the flags, the
//! outbox jobs that tell the other services and a complainant message. The
//! storage layer writes all of it in one statement, only if the job's last
//! event and each unit's status and job are still what was read; otherwise
//! nothing is written and the transition is decided again on a fresh read.

use chrono::{DateTime, Utc};
use dispatch311_domain::{
    event_log::{EventContent, event_hash},
    jobs::{kinds, queues},
    time::to_timestamp,
};
use dispatch311_proto::{
    common::v1::{ResolutionCode, ServiceRequestStatus},
    dispatch::v1::{AssignmentChange, EventType, FlagKind, UnitStatus},
    jobs::v1::StatusUpdate,
};
use dispatch311_queue::{QueueError, outbox::OutboxRow};
use prost::Message;
use uuid::Uuid;

use crate::{
    jobs::state_machine::unit_status_after_release,
    store::events::{ActorRef, NewEvent, event_type_name, role_name},
    store::flags::kind_name,
    store::{JobRow, units::UnitRow},
};

/// Everything one transition writes. Built from the job as read
/// ([`JobChange::new`]); `before` is what the write checks is still there.
#[derive(Debug, Clone)]
pub struct JobChange {
    pub before: JobRow,
    /// The job's row after the change; its last event is the last of `events`.
    pub after: JobRow,
    /// The instant of the change, to the microsecond PostgreSQL keeps.
    pub now: DateTime<Utc>,
    pub units: Vec<UnitChange>,
    pub events: Vec<ChainedEvent>,
    pub flags: Vec<NewFlag>,
    pub outbox: Vec<OutboxRow>,
    /// A question from the crew to the complainant, recorded with the change.
    pub asked: Option<AskedMessage>,
    /// A question the complainant answered; the write checks it was still open.
    pub answered: Option<Uuid>,
    /// Dedup keys of the job's flags as read, and of those raised here.
    flag_keys: Vec<String>,
}

/// A unit the change touches: its row as read (the write checks its status
/// and job are unchanged), as it becomes, and what its feed says.
#[derive(Debug, Clone)]
pub struct UnitChange {
    pub before: UnitRow,
    pub after: UnitRow,
    pub feed: Option<AssignmentChange>,
}

/// An event with its place in the job's hash chain.
#[derive(Debug, Clone)]
pub struct ChainedEvent {
    pub event: NewEvent,
    pub sequence: i64,
    pub previous_hash: String,
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFlag {
    pub kind: FlagKind,
    pub detail: String,
    pub dedup_key: String,
}

#[derive(Debug, Clone)]
pub struct AskedMessage {
    pub message_id: Uuid,
    pub asked_by: String,
}

/// What intake is told about a transition; the sequence is the event's.
pub struct Public {
    pub status: ServiceRequestStatus,
    pub message: String,
    pub transition_key: String,
    pub resolution: Option<(ResolutionCode, String)>,
}

impl JobChange {
    /// A change to `job` (as read, with the dedup keys of its flags) at `now`.
    pub fn new(job: &JobRow, flag_keys: &[String], now: DateTime<Utc>) -> Self {
        Self {
            before: job.clone(),
            after: job.clone(),
            now,
            units: Vec::new(),
            events: Vec::new(),
            flags: Vec::new(),
            outbox: Vec::new(),
            asked: None,
            answered: None,
            flag_keys: flag_keys.to_vec(),
        }
    }

    pub fn job_id(&self) -> Uuid {
        self.before.job_id
    }

    /// Appends `event` to the job's chain; returns its sequence.
    pub fn append(&mut self, event: NewEvent) -> i64 {
        let sequence = self.after.last_event_sequence + 1;
        let previous_hash = std::mem::take(&mut self.after.last_event_hash);
        let hash = hash_of(self.before.job_id, sequence, &previous_hash, &event);
        self.after.last_event_sequence = sequence;
        self.after.last_event_hash = hash.clone();
        self.events.push(ChainedEvent {
            event,
            sequence,
            previous_hash,
            hash,
        });
        sequence
    }

    /// Appends `event` and, when the public status changes, tells intake
    /// with the event's sequence.
    pub fn record(&mut self, event: NewEvent, public: Option<Public>) -> Result<i64, QueueError> {
        let sequence = self.append(event);
        if let Some(public) = public {
            let (resolution_code, resolution_text) = public
                .resolution
                .unwrap_or((ResolutionCode::Unspecified, String::new()));
            self.tell_intake(StatusUpdate {
                status: public.status as i32,
                message: public.message,
                resolution_code: resolution_code as i32,
                resolution_text,
                transition_key: public.transition_key,
                dispatch_sequence: sequence,
                ..Default::default()
            })?;
        }
        Ok(sequence)
    }

    /// Tells intake a status change of the request and of every report
    /// linked to the job, which follow it (ids, time and source are filled
    /// in here).
    pub fn tell_intake(&mut self, update: StatusUpdate) -> Result<(), QueueError> {
        let update = StatusUpdate {
            occurred_at: Some(to_timestamp(self.now)),
            source: "dispatch".into(),
            ..update
        };
        // linked reports are in their first epoch: a request moves to
        // another job only when unlinked, and then it is the job's own
        let requests: Vec<(Uuid, i32)> =
            std::iter::once((self.before.sr_id, self.before.request_epoch))
                .chain(self.before.reports.iter().map(|r| (r.sr_id, 0)))
                .collect();
        for (sr_id, epoch) in requests {
            let update = StatusUpdate {
                sr_id: sr_id.to_string(),
                transition_key: dispatch311_domain::jobs::epoch_key(&update.transition_key, epoch),
                dispatch_epoch: epoch as u32,
                ..update.clone()
            };
            self.publish_for(sr_id, queues::STATUS, kinds::STATUS_UPDATE, &update)?;
        }
        Ok(())
    }

    /// Sends `payload` to `queue` with the change, keyed by the job's request.
    pub fn publish(
        &mut self,
        queue: &str,
        kind: &str,
        payload: &impl Message,
    ) -> Result<(), QueueError> {
        self.publish_for(self.before.sr_id, queue, kind, payload)
    }

    /// Sends `payload` to `queue` with the change, keyed by request `sr_id`
    /// (the job's own or a linked report's).
    pub fn publish_for(
        &mut self,
        sr_id: Uuid,
        queue: &str,
        kind: &str,
        payload: &impl Message,
    ) -> Result<(), QueueError> {
        let row = dispatch311_queue::outbox::prepare(queue, kind, &sr_id.to_string(), payload)?;
        self.outbox.push(row);
        Ok(())
    }

    /// Schedules a prepared timer job with the change.
    pub fn schedule(&mut self, timer: OutboxRow) {
        self.outbox.push(timer);
    }

    /// Raises a flag unless the job has one with this dedup key; a raised flag
    /// is a FLAGGED event too. Returns whether it was raised.
    pub fn raise_flag(&mut self, kind: FlagKind, detail: &str, dedup_key: &str) -> bool {
        if self.flag_keys.iter().any(|k| k == dedup_key) {
            return false;
        }
        self.flag_keys.push(dedup_key.to_string());
        self.flags.push(NewFlag {
            kind,
            detail: detail.to_string(),
            dedup_key: dedup_key.to_string(),
        });
        self.append(NewEvent {
            event_type: EventType::Flagged,
            actor: ActorRef::system(),
            occurred_at: self.now,
            position: None,
            unit_id: None,
            reason: format!("{}: {detail}", kind_name(kind)),
        });
        true
    }

    /// The change to `unit`, started from its row as read.
    fn unit(&mut self, unit: &UnitRow) -> &mut UnitChange {
        let at = match self
            .units
            .iter()
            .position(|u| u.before.unit_id == unit.unit_id)
        {
            Some(at) => at,
            None => {
                self.units.push(UnitChange {
                    before: unit.clone(),
                    after: unit.clone(),
                    feed: None,
                });
                self.units.len() - 1
            }
        };
        &mut self.units[at]
    }

    /// `unit` takes the job: ASSIGNED, and its feed says so.
    pub fn unit_takes(&mut self, unit: &UnitRow) {
        let job_id = self.job_id();
        let change = self.unit(unit);
        change.after.status = UnitStatus::Assigned;
        change.after.current_job_id = Some(job_id);
        change.feed = Some(AssignmentChange::Assigned);
    }

    /// `unit` follows its job to `status` (en route, on scene); its feed gets
    /// an update.
    pub fn unit_follows(&mut self, unit: &UnitRow, status: UnitStatus) {
        let job_id = self.job_id();
        let change = self.unit(unit);
        if change.after.current_job_id == Some(job_id) {
            change.after.status = status;
        }
        change.feed = Some(AssignmentChange::Updated);
    }

    /// `unit` no longer works the job: available again unless it is on 911
    /// work or out of service; its feed gets `feed`.
    pub fn unit_released(&mut self, unit: &UnitRow, feed: AssignmentChange) {
        let job_id = self.job_id();
        let change = self.unit(unit);
        if change.after.current_job_id == Some(job_id) {
            change.after.status = unit_status_after_release(change.after.status);
            change.after.current_job_id = None;
        }
        change.feed = Some(feed);
    }

    /// `unit` reports where it is.
    pub fn unit_at(&mut self, unit: &UnitRow, position: (f64, f64)) {
        let now = self.now;
        let change = self.unit(unit);
        change.after.position = Some(position);
        change.after.position_reported_at = Some(now);
    }
}

/// The event's hash in the job's chain: the formula the verifier and the
/// database's `job_event_hash` share.
fn hash_of(job_id: Uuid, sequence: i64, previous_hash: &str, event: &NewEvent) -> String {
    let (latitude, longitude) = event.position.unzip();
    event_hash(&EventContent {
        previous_hash,
        job_id,
        sequence,
        event_type: event_type_name(event.event_type),
        occurred_at_micros: event.occurred_at.timestamp_micros(),
        actor: &event.actor.id,
        actor_role: role_name(event.actor.role),
        latitude,
        longitude,
        unit_id: event.unit_id,
        reason: &event.reason,
    })
}
