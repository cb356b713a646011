//! The guarded job lifecycle: assignment, acknowledgement, en route, on
//! scene, evidence viewed, closure (with the accountability rules), cancel,
//! reopen and supervisor-approved re-route. Every transition is checked
//! against the state machine, appends an event, tells intake, and changes
//! nothing when refused.
//!
//! Each change runs the same way ([`Lifecycle::change`]): read the job and
//! what its rules need (one round trip, no lock), decide — the state
//! machine, the rules, and everything the change writes, as a
//! [`JobChange`] — then write it all in one statement (one round trip) that
//! applies only if the job and its units are still as read; when they are
//! not, nothing was written and the change is decided again on a fresh read.
//! The answer is the job as the write returned it.

use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use dispatch311_domain::{
    jobs::{kinds, queues},
    resolution,
    status::{priority_name, resolution_name},
    time::to_timestamp,
};
use dispatch311_proto::{
    common::v1::{ResolutionCode, ServiceRequestStatus},
    dispatch::v1::{self as dispatch, AssignmentChange, EventType, FlagKind, JobState, Role},
    jobs::v1::{ClosedEvent, DispatchTimer, StatusUpdate},
};
use dispatch311_telemetry::attributes::{self, set_on_current};
use sqlx::PgConnection;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::{
    config::DispatchRules,
    jobs::accountability::{self, CloseFacts},
    jobs::state_machine::{Transition, is_open, unit_status_for},
    jobs::{
        JobError,
        assignment::why_cannot_take,
        change::{JobChange, Public},
        commands::{Advance, Assign, Cancel, Close, Reroute, Step},
    },
    outputs::{self, PublicChange},
    store::events::{self, ActorRef, NewEvent},
    store::{
        JobKey, JobRow, Store, StoreError,
        changes::{JobSnapshot, ReadFor},
        units::{self as store_units, UnitRow},
    },
};

/// Who answers, in the job's event log: never the complainant's identity.
pub const COMPLAINANT_ACTOR: &str = "complainant";
/// The longest closing notes, and the longest answer kept on the timeline.
pub const MAX_NOTES_CHARS: usize = 4000;
/// How often a change is decided again because its job or unit changed
/// between the read and the write before the caller hears ABORTED.
pub(super) const MAX_ATTEMPTS: usize = 10;

/// Who reopens a job and why, whether it becomes more urgent, and whether it
/// goes on the review list (a REOPENED_BY_COMPLAINANT flag).
#[derive(Debug, Clone)]
pub struct Reopening {
    pub actor: ActorRef,
    pub reason: String,
    pub raise_priority: bool,
    pub for_review: bool,
}

/// What [`Lifecycle::reopen_if`] did.
#[derive(Debug)]
pub enum GuardedReopen {
    /// Reopened: the job as it is now.
    Reopened(Box<dispatch::Job>),
    /// The job, as read, failed the check; nothing changed.
    Unchanged {
        job_id: Uuid,
        state: JobState,
        closure_count: i32,
        why: &'static str,
    },
}

#[derive(Clone)]
pub struct Lifecycle {
    pub store: Store,
    pub rules: DispatchRules,
    /// Wakes the outbox relay after a commit.
    pub relay_wakeup: Arc<Notify>,
    /// The complainants' photos (written by intake, metadata stripped).
    pub photos: dispatch311_photos::PhotoStore,
}

impl Lifecycle {
    pub async fn assign(&self, command: Assign) -> Result<dispatch::Job, JobError> {
        let Assign {
            actor,
            job_id,
            unit_id,
            reason,
        } = command;

        let read = ReadFor {
            unit_ids: &[unit_id],
            ..ReadFor::default()
        };
        let (job, change) = self
            .must_change(job_id, &read, |s, now| {
                let job = &s.job;
                let previous = job.unit_id.filter(|_| is_open(job.state));
                let transition = if previous.is_some() {
                    Transition::Reassign
                } else {
                    Transition::Assign
                };
                check(transition, job)?;
                if let Some(previous) = previous {
                    if previous == unit_id {
                        return Err(JobError::refused(
                            "ALREADY_ASSIGNED",
                            job_id,
                            "the job is already assigned to this unit",
                        ));
                    }
                    if reason.is_empty() {
                        return Err(JobError::bad_argument(
                            "reason",
                            "required: the job is already assigned to a unit, so this is a reassignment",
                        ));
                    }
                }
                let Some(unit) = s.unit(unit_id) else {
                    return Err(JobError::not_found("unit", unit_id));
                };
                if let Some(refusal) = why_cannot_take(unit, job) {
                    return Err(refusal.for_unit(unit_id));
                }
                let previous_unit = previous.and_then(|id| s.unit(id));
                let mut change = JobChange::new(job, &s.flag_keys, now);
                self.apply_assignment(&mut change, &actor, unit, previous_unit, &reason)?;
                Ok(change)
            })
            .await?;
        if let Some(previous) = change
            .before
            .unit_id
            .filter(|_| is_open(change.before.state))
        {
            self.try_auto_assign_unit(previous).await;
        }
        Ok(job)
    }

    pub async fn close_job(&self, command: Close) -> Result<dispatch::Job, JobError> {
        let Close {
            actor,
            job_id,
            code,
            summons_number,
            notes,
            position,
            duplicate_of,
        } = command;

        // the closer's earlier closures within the burst window count
        let burst_since = now_micros() - self.rules.burst_window;
        let read = ReadFor {
            closer: Some((&actor.id, burst_since)),
            duplicate_sr_number: duplicate_of.as_deref(),
            ..ReadFor::default()
        };
        let (job, change) = self
            .must_change(job_id, &read, |s, now| {
                check(Transition::Close, &s.job)?;
                let unit = assigned_unit(s)?;
                if actor.role == Role::Officer {
                    require_crew(&actor, Some(unit))?;
                }
                let duplicate_of = match &duplicate_of {
                    None => None,
                    Some(number) => Some(s.duplicate_target.clone().ok_or_else(|| {
                        JobError::not_found("dispatch job of the duplicated request", number)
                    })?),
                };
                let facts = CloseFacts {
                    code,
                    closer_id: &actor.id,
                    closer_role: actor.role,
                    position,
                    at: now,
                    closer_viewed_evidence: s.closer_viewed_evidence,
                    closer_recent_closures: s.closer_recent_closures + 1,
                    summons_number_given: !summons_number.is_empty(),
                    notes: &notes,
                    duplicate_of,
                };
                let to_raise = accountability::check_close(&s.job, &facts, &self.rules)
                    .map_err(|refusal| refusal.for_job(job_id))?;

                let mut change = JobChange::new(&s.job, &s.flag_keys, now);
                let closure_number = s.job.closure_count + 1;
                let after = &mut change.after;
                after.state = JobState::Closed;
                after.closed_at = Some(now);
                after.closed_by = Some(actor.id.clone());
                after.resolution_code = resolution_name(code).to_string();
                after.resolution_notes = notes.clone();
                after.summons_number = summons_number.clone();
                after.closure_count = closure_number;
                change.unit_released(unit, AssignmentChange::Closed);
                let public_text = resolution::public_text(code);
                let event = NewEvent {
                    event_type: EventType::Closed,
                    actor: actor.clone(),
                    occurred_at: now,
                    position,
                    unit_id: Some(unit.unit_id),
                    reason: resolution_name(code).to_string(),
                };
                let public = Public {
                    status: ServiceRequestStatus::Closed,
                    message: public_text.to_string(),
                    transition_key: format!("dispatch:closed:{closure_number}"),
                    resolution: Some((code, public_text.to_string())),
                };
                change.record(event, Some(public))?;
                let mut flagged = false;
                for flag in &to_raise {
                    flagged |= change.raise_flag(flag.kind, &flag.detail, &flag.dedup_key);
                }
                let job = &s.job;
                let closed = ClosedEvent {
                    sr_id: job.sr_id.to_string(),
                    sr_number: job.sr_number.clone(),
                    agency: job.agency.clone(),
                    precinct: job.precinct.clone(),
                    borough: job.borough.clone(),
                    complaint_type: job.complaint_type.clone(),
                    descriptor: job.descriptor.clone(),
                    resolution_code: code as i32,
                    resolution_text: public_text.to_string(),
                    closed_at: Some(to_timestamp(now)),
                    assigned_at: job.assigned_at.map(to_timestamp),
                    flagged,
                    complainant_consented: job.complainant_consented,
                    closure_number: closure_number as u32,
                    summons_issued: code == ResolutionCode::SummonsIssued,
                    origin_traceparent: job.origin_traceparent.clone(),
                    job_id: job.job_id.to_string(),
                };
                change.publish(queues::CLOSED, kinds::CLOSED, &closed)?;
                // every report of the incident is closed with the job, and
                // each complainant who consented is surveyed
                for report in &job.reports {
                    let closed = ClosedEvent {
                        sr_id: report.sr_id.to_string(),
                        sr_number: report.sr_number.clone(),
                        complainant_consented: report.complainant_consented,
                        origin_traceparent: report.origin_traceparent.clone(),
                        ..closed.clone()
                    };
                    change.publish_for(report.sr_id, queues::CLOSED, kinds::CLOSED, &closed)?;
                }
                Ok(change)
            })
            .await?;
        let unit_id = change.before.unit_id;
        tracing::info!(%job_id, unit_id = ?unit_id, resolution = resolution_name(code), closure_number = change.after.closure_count, flags = change.flags.len(), "job closed");
        if let Some(unit_id) = unit_id {
            self.try_auto_assign_unit(unit_id).await;
        }
        Ok(job)
    }

    pub async fn cancel_job(&self, command: Cancel) -> Result<dispatch::Job, JobError> {
        let Cancel {
            actor,
            job_id,
            reason,
        } = command;

        let (job, change) = self
            .must_change(job_id, &ReadFor::default(), |s, now| {
                check(Transition::Cancel, &s.job)?;
                let mut change = JobChange::new(&s.job, &s.flag_keys, now);
                let freed = free_unit(&mut change, s);
                change.after.state = JobState::Cancelled;
                change.after.unit_id = None;
                let event = NewEvent {
                    event_type: EventType::Cancelled,
                    actor: actor.clone(),
                    occurred_at: now,
                    position: None,
                    unit_id: freed,
                    reason: reason.clone(),
                };
                let public = Public {
                    status: ServiceRequestStatus::Cancelled,
                    message: "cancelled by the police dispatcher".into(),
                    transition_key: "dispatch:cancelled".into(),
                    resolution: None,
                };
                change.record(event, Some(public))?;
                Ok(change)
            })
            .await?;
        tracing::info!(%job_id, "job cancelled");
        if let Some(unit_id) = change.before.unit_id {
            self.try_auto_assign_unit(unit_id).await;
        }
        Ok(job)
    }

    /// A supervisor (or the survey path) reopens a closed job.
    pub async fn reopen_job(
        &self,
        job_id: Uuid,
        reopening: Reopening,
    ) -> Result<dispatch::Job, JobError> {
        self.reopen(job_id, &reopening, |_| Ok(()))
            .await?
            .ok_or_else(|| JobError::not_found("dispatch job", job_id))
    }

    /// Reopens the job of request `sr_id` if, as read, it passes `check`
    /// (which says why not otherwise); nothing changes when it does not.
    /// `None` when the request has no job.
    pub async fn reopen_if(
        &self,
        sr_id: Uuid,
        reopening: Reopening,
        check: impl Fn(&JobRow) -> Result<(), &'static str>,
    ) -> Result<Option<GuardedReopen>, JobError> {
        let Some(job_id) = self.store.job_of_request(sr_id).await? else {
            return Ok(None);
        };
        let mut refused = None;
        let reopened = self
            .reopen(job_id, &reopening, |job| {
                check(job).inspect_err(|why| {
                    refused = Some(GuardedReopen::Unchanged {
                        job_id,
                        state: job.state,
                        closure_count: job.closure_count,
                        why,
                    });
                })
            })
            .await?;
        Ok(match reopened {
            Some(job) => Some(GuardedReopen::Reopened(Box::new(job))),
            None => refused,
        })
    }

    /// A closed job goes back to its precinct queue (more urgent when asked),
    /// with a REOPENED event, and a REOPENED_BY_COMPLAINANT flag when it is
    /// for review; intake hears the reopening with the new priority. `None`
    /// when the job, as read, fails `check`.
    async fn reopen(
        &self,
        job_id: Uuid,
        reopening: &Reopening,
        mut check: impl FnMut(&JobRow) -> Result<(), &'static str>,
    ) -> Result<Option<dispatch::Job>, JobError> {
        let written = self
            .change(job_id, &ReadFor::default(), |s, now| {
                if check(&s.job).is_err() {
                    return Ok(None);
                }
                self::check(Transition::Reopen, &s.job)?;
                let job = &s.job;
                let priority = if reopening.raise_priority {
                    accountability::raised(job.priority)
                } else {
                    job.priority
                };
                let reopen_count = job.reopen_count + 1;
                let mut change = JobChange::new(job, &s.flag_keys, now);
                // back in the queue as a fresh job: the last visit and closure
                // no longer count (the timeline keeps them)
                let after = &mut change.after;
                after.state = JobState::Queued;
                after.unit_id = None;
                after.queued_at = now;
                after.priority = priority;
                after.reopen_count = reopen_count;
                after.assigned_at = None;
                after.acknowledged_at = None;
                after.en_route_at = None;
                after.on_scene_at = None;
                after.on_scene_position = None;
                after.closed_at = None;
                after.closed_by = None;
                after.resolution_code = String::new();
                after.resolution_notes = String::new();
                after.summons_number = String::new();
                // the flag says why the job is reopened, so it comes first and
                // the reopening stays the job's latest event
                if reopening.for_review {
                    change.raise_flag(
                        FlagKind::ReopenedByComplainant,
                        "reopened: the complainant says the problem was not fixed",
                        &format!("reopened_by_complainant:{reopen_count}"),
                    );
                }
                let sequence = change.append(NewEvent {
                    event_type: EventType::Reopened,
                    actor: reopening.actor.clone(),
                    occurred_at: now,
                    position: None,
                    unit_id: None,
                    reason: reopening.reason.clone(),
                });
                // intake hears the new priority with the reopening
                change.tell_intake(StatusUpdate {
                    status: ServiceRequestStatus::Reopened as i32,
                    message: format!(
                        "reopened and back in the dispatch queue of precinct {}",
                        job.precinct
                    ),
                    priority: priority as i32,
                    transition_key: format!("dispatch:reopened:{reopen_count}"),
                    dispatch_sequence: sequence,
                    ..Default::default()
                })?;
                Ok(Some(change))
            })
            .await?;
        let Some((job, change)) = written else {
            return Ok(None);
        };
        tracing::info!(%job_id, reopen_count = change.after.reopen_count, priority = priority_name(change.after.priority), for_review = reopening.for_review, "job reopened");
        self.try_auto_assign_job(job_id).await;
        Ok(Some(job))
    }

    pub async fn approve_reroute(&self, command: Reroute) -> Result<dispatch::Job, JobError> {
        let Reroute {
            actor,
            job_id,
            agency,
            reason,
        } = command;

        let (job, change) = self
            .must_change(job_id, &ReadFor::default(), |s, now| {
                check(Transition::Reroute, &s.job)?;
                let mut change = JobChange::new(&s.job, &s.flag_keys, now);
                let freed = free_unit(&mut change, s);
                change.after.state = JobState::Rerouted;
                change.after.rerouted_to = agency.clone();
                change.after.unit_id = None;
                let sequence = change.append(NewEvent {
                    event_type: EventType::RerouteApproved,
                    actor: actor.clone(),
                    occurred_at: now,
                    position: None,
                    unit_id: freed,
                    reason: format!("to {agency}: {reason}"),
                });
                change.tell_intake(StatusUpdate {
                    status: ServiceRequestStatus::Referred as i32,
                    message: format!("referred to {agency}"),
                    agency: agency.clone(),
                    transition_key: "dispatch:referred".into(),
                    dispatch_sequence: sequence,
                    ..Default::default()
                })?;
                Ok(change)
            })
            .await?;
        tracing::info!(%job_id, %agency, "job re-routed to another agency");
        if let Some(unit_id) = change.before.unit_id {
            self.try_auto_assign_unit(unit_id).await;
        }
        Ok(job)
    }

    /// Acknowledge, en route, on scene: the assigned unit's officers (or the
    /// service itself) move the job one step along its path.
    pub async fn advance(&self, command: Advance) -> Result<dispatch::Job, JobError> {
        let Advance {
            step,
            actor,
            job_id,
            position,
        } = command;

        let (job, change) = self
            .must_change(job_id, &ReadFor::default(), |s, now| {
                check(step.transition(), &s.job)?;
                let unit = assigned_unit(s)?;
                if actor.role == Role::Officer {
                    require_crew(&actor, Some(unit))?;
                }
                let mut change = JobChange::new(&s.job, &s.flag_keys, now);
                let after = &mut change.after;
                after.state = step.state();
                match step {
                    Step::Acknowledge => after.acknowledged_at = Some(now),
                    Step::EnRoute => after.en_route_at = Some(now),
                    Step::OnScene => {
                        after.on_scene_at = Some(now);
                        after.on_scene_position = position;
                    }
                }
                if let Some(position) = position {
                    change.unit_at(unit, position);
                }
                change.unit_follows(unit, unit_status_for(step.state()).unwrap_or(unit.status));
                let event = NewEvent {
                    event_type: step.event(),
                    actor: actor.clone(),
                    occurred_at: now,
                    position,
                    unit_id: Some(unit.unit_id),
                    reason: String::new(),
                };
                let public = Public {
                    status: step.public_status(),
                    message: step.public_message().into(),
                    transition_key: format!("dispatch:{}:{}", step.key(), s.job.assignment_number),
                    resolution: None,
                };
                change.record(event, Some(public))?;
                Ok(change)
            })
            .await?;
        tracing::info!(%job_id, unit_id = ?change.before.unit_id, state = step.key(), "job moved on");
        Ok(job)
    }

    /// The job, with its flags, as the RPCs answer it.
    pub async fn view(&self, job_id: Uuid) -> Result<dispatch::Job, JobError> {
        let job = self
            .store
            .get(&JobKey::Id(job_id))
            .await?
            .ok_or_else(|| JobError::not_found("dispatch job", job_id))?;
        Ok(job)
    }

    /// Reads the job for a change; NOT_FOUND when there is none.
    pub(super) async fn read(
        &self,
        job_id: Uuid,
        read: &ReadFor<'_>,
    ) -> Result<JobSnapshot, JobError> {
        let snapshot = self
            .store
            .read_for_change(job_id, read)
            .await?
            .ok_or_else(|| JobError::not_found("dispatch job", job_id))?;
        set_on_current(attributes::SR_NUMBER, snapshot.job.sr_number.clone());
        set_on_current(attributes::PRECINCT, snapshot.job.precinct.clone());
        Ok(snapshot)
    }

    /// Writes a decided change; `None` when the job or a unit changed since
    /// `snapshot` was read (nothing was written). Wakes the outbox relay.
    pub(super) async fn write(
        &self,
        change: &JobChange,
        snapshot: &JobSnapshot,
    ) -> Result<Option<dispatch::Job>, JobError> {
        match self.store.write_change(change, &snapshot.flags).await {
            Ok(job) => {
                if !change.outbox.is_empty() {
                    self.relay_wakeup.notify_one();
                }
                super::metrics::record_change(change);
                Ok(Some(job))
            }
            Err(StoreError::Conflict) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads the job, lets `decide` say what changes (`None`: nothing), and
    /// writes it; decides again on a fresh read when the job or one of its
    /// units changed meanwhile. Answers with the job as written and the
    /// change, or `None` when `decide` changed nothing.
    pub(super) async fn change(
        &self,
        job_id: Uuid,
        read: &ReadFor<'_>,
        mut decide: impl FnMut(&JobSnapshot, DateTime<Utc>) -> Result<Option<JobChange>, JobError>,
    ) -> Result<Option<(dispatch::Job, JobChange)>, JobError> {
        for _ in 0..MAX_ATTEMPTS {
            let snapshot = self.read(job_id, read).await?;
            let Some(change) = decide(&snapshot, now_micros())? else {
                return Ok(None);
            };
            if let Some(job) = self.write(&change, &snapshot).await? {
                return Ok(Some((job, change)));
            }
        }
        Err(JobError::Busy(job_id))
    }

    /// [`Self::change`] for a transition that always writes.
    pub(super) async fn must_change(
        &self,
        job_id: Uuid,
        read: &ReadFor<'_>,
        mut decide: impl FnMut(&JobSnapshot, DateTime<Utc>) -> Result<JobChange, JobError>,
    ) -> Result<(dispatch::Job, JobChange), JobError> {
        self.change(job_id, read, |s, now| decide(s, now).map(Some))
            .await?
            // `decide` always writes, so `None` never comes back
            .ok_or(JobError::Busy(job_id))
    }

    /// The job goes to `unit` (able to take it); `previous` loses it. The
    /// acknowledgement timer of this assignment is scheduled with the change.
    pub(super) fn apply_assignment(
        &self,
        change: &mut JobChange,
        actor: &ActorRef,
        unit: &UnitRow,
        previous: Option<&UnitRow>,
        reason: &str,
    ) -> Result<(), JobError> {
        let job_id = change.job_id();
        let now = change.now;
        let assignment_number = change.before.assignment_number + 1;
        // a new assignment starts over: what the previous unit did no longer counts
        let after = &mut change.after;
        after.state = JobState::Assigned;
        after.unit_id = Some(unit.unit_id);
        after.assignment_number = assignment_number;
        after.assigned_at = Some(now);
        after.acknowledged_at = None;
        after.en_route_at = None;
        after.on_scene_at = None;
        after.on_scene_position = None;
        if let Some(previous) = previous {
            change.unit_released(previous, AssignmentChange::Unassigned);
        }
        change.unit_takes(unit);
        let event = NewEvent {
            event_type: if previous.is_some() {
                EventType::Reassigned
            } else {
                EventType::Assigned
            },
            actor: actor.clone(),
            occurred_at: now,
            position: None,
            unit_id: Some(unit.unit_id),
            reason: reason.to_string(),
        };
        let public = Public {
            status: ServiceRequestStatus::Assigned,
            message: format!(
                "assigned to a patrol unit of precinct {}",
                change.before.precinct
            ),
            transition_key: format!("dispatch:assigned:{assignment_number}"),
            resolution: None,
        };
        change.record(event, Some(public))?;
        let timer = DispatchTimer {
            job_id: job_id.to_string(),
            check: outputs::ACK_TIMEOUT.into(),
            assignment_number,
        };
        let due = now
            + chrono::Duration::from_std(self.rules.ack_timeout).unwrap_or(chrono::Duration::MAX);
        change.schedule(outputs::prepare_timer(
            &change.before.sr_id.to_string(),
            &timer,
            due,
        )?);
        tracing::info!(%job_id, unit_id = %unit.unit_id, assignment_number, reassigned = previous.is_some(), "job assigned");
        Ok(())
    }
}

/// FAILED_PRECONDITION unless a job in its state may take `transition`.
fn check(transition: Transition, job: &JobRow) -> Result<(), JobError> {
    transition
        .check(job.state)
        .map_err(|refusal| refusal.for_job(job.job_id))
}

/// The unit working the job (the job is assigned or further on).
fn assigned_unit(s: &JobSnapshot) -> Result<&UnitRow, JobError> {
    let Some(unit_id) = s.job.unit_id else {
        return Err(JobError::refused(
            "NO_UNIT",
            s.job.job_id,
            "the job has no assigned unit",
        ));
    };
    s.unit(unit_id)
        .ok_or_else(|| JobError::not_found("unit", unit_id))
}

/// Whether `actor` may work on the open job as its crew: an officer of the
/// assigned unit, or a supervisor (the role was checked before).
pub(super) fn open_for_crew(actor: &ActorRef, s: &JobSnapshot) -> Result<(), JobError> {
    check(Transition::ViewEvidence, &s.job)?;
    if actor.role == Role::Officer {
        let unit = s.job.unit_id.and_then(|id| s.unit(id));
        require_crew(actor, unit)?;
    }
    Ok(())
}

/// Frees the job's unit, if it has one (cancelled, re-routed): the unit's
/// feed says UNASSIGNED. Returns the unit.
fn free_unit(change: &mut JobChange, s: &JobSnapshot) -> Option<Uuid> {
    let unit_id = s.job.unit_id?;
    if let Some(unit) = s.unit(unit_id) {
        change.unit_released(unit, AssignmentChange::Unassigned);
    }
    Some(unit_id)
}

/// Puts a job whose unit was taken from it (a 911 emergency, out of
/// service, an acknowledgement timeout) back in its precinct queue, in the
/// caller's transaction: the caller holds the job's lock, then the unit's.
/// `event` says what happened (REASSIGNED, ACK_TIMEOUT…) and who did it; the
/// unit's feed gets UNASSIGNED and intake hears the job is queued again.
///
/// The job keeps its place in the queue (`queued_at` is unchanged): it lost
/// its unit through no fault of the complainant.
pub async fn requeue(
    conn: &mut PgConnection,
    job: &JobRow,
    unit: &UnitRow,
    event: NewEvent,
    public_message: &str,
) -> Result<(), JobError> {
    Transition::Requeue
        .check(job.state)
        .map_err(|refusal| refusal.for_job(job.job_id))?;
    let at = event.occurred_at;
    crate::store::set_requeued(conn, job.job_id, at).await?;
    store_units::release(conn, unit, job.job_id, AssignmentChange::Unassigned, at).await?;
    let sequence = events::append(conn, job.job_id, &event).await?;
    // the job's own request and every report linked to it
    let mut requests = vec![(job.sr_id, job.request_epoch)];
    requests.extend(
        crate::store::linked_requests(conn, job.job_id)
            .await?
            .into_iter()
            .map(|sr_id| (sr_id, 0)),
    );
    for (sr_id, epoch) in requests {
        outputs::tell_intake(
            conn,
            PublicChange {
                sr_id: &sr_id.to_string(),
                epoch,
                status: ServiceRequestStatus::Queued,
                message: public_message.to_string(),
                transition_key: format!("dispatch:requeued:{}", job.assignment_number),
                sequence,
                at,
                resolution: None,
            },
        )
        .await?;
    }
    Ok(())
}

/// PERMISSION_DENIED unless the officer works `unit`.
fn require_crew(actor: &ActorRef, unit: Option<&UnitRow>) -> Result<(), JobError> {
    match unit {
        Some(unit) if unit.has_officer(&actor.id) => Ok(()),
        Some(unit) => Err(JobError::NotAllowed(format!(
            "officer {} does not work unit {}, which is assigned to this job",
            actor.id, unit.call_sign
        ))),
        None => Err(JobError::NotAllowed(format!(
            "officer {} does not work a unit assigned to this job",
            actor.id
        ))),
    }
}

/// The time of a change, to the microsecond PostgreSQL keeps: what the job
/// row stores and what the events and messages say are the same instant.
pub(crate) fn now_micros() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
