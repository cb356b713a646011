//! Consumes the `dispatch-timers` queue: scheduled checks on jobs
//! (acknowledgement timeouts, SLA breaches). A timer fires once even with
//! several replicas: the queue delivers it to one consumer at a time, and the
//! check changes a job only if the job is still in the state the timer guards,
//! read under the job's row lock, so a redelivery finds nothing left to do.
//!
//! - `ack_timeout` (scheduled by the assignment for `assigned_at +
//!   ack_timeout`): a job still ASSIGNED with the same assignment number goes
//!   back to QUEUED. It keeps its `queued_at`, so it returns to its old place
//!   in the precinct queue rather than behind requests filed after it: the
//!   complainant should not wait longer because a unit did not answer. The
//!   unit is released, its feed says UNASSIGNED, intake hears QUEUED again
//!   (all by `lifecycle::requeue`) and an ACK_TIMEOUT flag puts the job in
//!   front of the supervisor.
//! - `sla_breach` (scheduled by `Store::enqueue` in the statement that creates
//!   the job, for `sla_due_at`): a job still open at its due time is marked
//!   breached and flagged. A reopened job keeps its first due time and is not
//!   armed again; if it was breached, it stays breached.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use dispatch311_domain::jobs::queues;
use dispatch311_proto::{
    dispatch::v1::{EventType, FlagKind, JobState},
    jobs::v1::DispatchTimer,
};
use dispatch311_queue::{Delivery, JobHandler, Outcome};
use dispatch311_telemetry::attributes::{self, set_on_current};
use prost::Message;
use sqlx::PgConnection;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::jobs::metrics as job_metrics;
use crate::{
    config::DispatchRules,
    jobs::JobError,
    jobs::lifecycle::{self, now_micros},
    store::events::{self, ActorRef, NewEvent},
    store::flags,
    store::{self, JobRow, Store, StoreResult},
};

pub use crate::outputs::{ACK_TIMEOUT, SLA_BREACH, prepare_sla_timer};

pub struct TimerHandler {
    pub store: Store,
    pub rules: DispatchRules,
    /// Wakes the outbox relay after a commit that told intake something.
    pub relay_wakeup: Arc<Notify>,
}

/// Arms again, from dispatch's own tables, the timers Redis lost.
///
/// PostgreSQL is the source of truth: every open job that should have a timer
/// pending — an SLA check for a job not yet breached (and never reopened: a
/// reopened job keeps its first due time and is not armed again), an
/// acknowledgement check for a job still ASSIGNED — gets one published again
/// through the outbox when none is outstanding in the queue (scheduled or
/// published and unsettled). At start and every `interval`, so timers lost
/// with a Redis that restarted empty fire on time, or at once when already
/// due. Publishing one twice (a race with an assignment whose timer is still
/// in the outbox) does no harm: the check acts only on the state it guards.
pub struct TimerReconciler {
    pub store: Store,
    pub queue: dispatch311_queue::JobQueue,
    pub rules: DispatchRules,
    pub interval: Duration,
    pub relay_wakeup: Arc<Notify>,
}

impl TimerReconciler {
    pub async fn run(self, stop: tokio_util::sync::CancellationToken) -> anyhow::Result<()> {
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                _ = ticks.tick() => {}
            }
            match self.round().await {
                Ok(0) => {}
                Ok(armed) => tracing::warn!(armed, "timers missing from the queue armed again"),
                Err(error) => {
                    tracing::warn!(%error, "timer reconciliation failed; trying again later")
                }
            }
        }
    }

    /// One pass; returns how many timers it armed again.
    pub async fn round(&self) -> anyhow::Result<usize> {
        let outstanding: std::collections::HashSet<(String, String, i64)> = self
            .queue
            .outstanding(queues::DISPATCH_TIMERS)
            .await?
            .iter()
            .filter_map(|envelope| DispatchTimer::decode(envelope.payload.as_slice()).ok())
            .map(|timer| (timer.job_id, timer.check, timer.assignment_number))
            .collect();
        let due = self.store.timers_due(self.rules.ack_timeout).await?;
        let missing: Vec<_> = due
            .into_iter()
            .filter(|(job_id, _, check, assignment, _)| {
                !outstanding.contains(&(job_id.to_string(), check.clone(), *assignment))
            })
            .collect();
        if missing.is_empty() {
            return Ok(0);
        }
        let mut tx = self.store.pool().begin().await?;
        for (job_id, sr_id, check, assignment_number, at) in &missing {
            let timer = DispatchTimer {
                job_id: job_id.to_string(),
                check: check.clone(),
                assignment_number: *assignment_number,
            };
            crate::outputs::schedule_timer(&mut tx, &sr_id.to_string(), &timer, *at).await?;
        }
        tx.commit().await?;
        self.relay_wakeup.notify_one();
        Ok(missing.len())
    }
}

/// A timer's check, as decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    AckTimeout { assignment_number: i64 },
    SlaBreach,
}

impl Check {
    fn of(timer: &DispatchTimer) -> Option<Self> {
        match timer.check.as_str() {
            ACK_TIMEOUT => Some(Self::AckTimeout {
                assignment_number: timer.assignment_number,
            }),
            SLA_BREACH => Some(Self::SlaBreach),
            _ => None,
        }
    }
}

/// What a check decides about a job, from the job as locked.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Decision {
    /// The guarded condition holds: change the job.
    Act,
    /// Nothing to do any more (acknowledged, reassigned, closed, already done).
    Moot(&'static str),
    /// Delivered before it is due (clocks differ): look again after this.
    NotDue(Duration),
}

fn is_open(state: JobState) -> bool {
    !matches!(
        state,
        JobState::Closed | JobState::Cancelled | JobState::Rerouted | JobState::Unspecified
    )
}

fn decide_ack_timeout(
    job: &JobRow,
    assignment_number: i64,
    ack_timeout: Duration,
    now: DateTime<Utc>,
) -> Decision {
    if job.state != JobState::Assigned {
        return Decision::Moot("the assignment was acknowledged or ended");
    }
    if job.assignment_number != assignment_number {
        return Decision::Moot("the job was assigned again since");
    }
    let due = job.assigned_at.and_then(|at| {
        chrono::Duration::from_std(ack_timeout)
            .ok()
            .and_then(|timeout| at.checked_add_signed(timeout))
    });
    match due.map(|due| (due - now).to_std()) {
        Some(Ok(remaining)) if !remaining.is_zero() => Decision::NotDue(remaining),
        _ => Decision::Act,
    }
}

fn decide_sla_breach(job: &JobRow, now: DateTime<Utc>) -> Decision {
    if !is_open(job.state) {
        return Decision::Moot("the job is no longer open");
    }
    if job.sla_breached {
        return Decision::Moot("the breach is already recorded");
    }
    let Some(due) = job.sla_due_at else {
        return Decision::Moot("the job has no SLA");
    };
    match (due - now).to_std() {
        Ok(remaining) if !remaining.is_zero() => Decision::NotDue(remaining),
        _ => Decision::Act,
    }
}

impl JobHandler for TimerHandler {
    async fn handle(&self, delivery: Delivery) -> Outcome {
        let timer: DispatchTimer = match delivery.payload() {
            Ok(timer) => timer,
            Err(e) => return Outcome::dead_letter(format!("undecodable dispatch timer: {e}")),
        };
        let Ok(job_id) = Uuid::parse_str(&timer.job_id) else {
            return Outcome::dead_letter(format!(
                "timer for a job id that is not a UUID: {}",
                timer.job_id
            ));
        };
        let Some(check) = Check::of(&timer) else {
            return Outcome::dead_letter(format!("unknown timer check: {}", timer.check));
        };
        match self.run(job_id, check).await {
            Ok(Decision::Act) => {
                self.relay_wakeup.notify_one();
                tracing::info!(%job_id, check = %timer.check, "timer fired");
                Outcome::Done
            }
            Ok(Decision::Moot(why)) => {
                tracing::debug!(%job_id, check = %timer.check, why, "timer has nothing to do");
                Outcome::Done
            }
            Ok(Decision::NotDue(remaining)) => {
                Outcome::retry_after("timer delivered before it is due", remaining)
            }
            Err(e) => Outcome::retry(e),
        }
    }
}

impl TimerHandler {
    /// Runs the check in one transaction, committed only when it acts.
    async fn run(&self, job_id: Uuid, check: Check) -> Result<Decision, JobError> {
        let mut tx = self.store.pool().begin().await?;
        let Some(job) = store::lock_job(&mut tx, job_id).await? else {
            return Ok(Decision::Moot("there is no such job"));
        };
        set_on_current(attributes::SR_NUMBER, job.sr_number.clone());
        set_on_current(attributes::PRECINCT, job.precinct.clone());
        let now = now_micros();
        let decision = match check {
            Check::AckTimeout { assignment_number } => {
                decide_ack_timeout(&job, assignment_number, self.rules.ack_timeout, now)
            }
            Check::SlaBreach => decide_sla_breach(&job, now),
        };
        if decision != Decision::Act {
            return Ok(decision);
        }
        let decision = match check {
            Check::AckTimeout { .. } => self.time_out(&mut tx, &job, now).await?,
            Check::SlaBreach => {
                record_breach(&mut tx, &job, now).await?;
                Decision::Act
            }
        };
        if decision == Decision::Act {
            tx.commit().await?;
            // counted once committed
            match check {
                Check::AckTimeout { .. } => {
                    job_metrics::ack_timed_out(&job);
                    job_metrics::flag_raised(FlagKind::AckTimeout);
                }
                Check::SlaBreach => {
                    job_metrics::sla_breached(&job);
                    job_metrics::flag_raised(FlagKind::SlaBreach);
                }
            }
        }
        Ok(decision)
    }

    /// Puts an unacknowledged job back in the queue, releases its unit and
    /// flags the timeout. No auto-assignment follows: the nearest available
    /// unit is often the one that did not answer; the job waits for a
    /// dispatcher or for the next unit that becomes available.
    async fn time_out(
        &self,
        conn: &mut PgConnection,
        job: &JobRow,
        now: DateTime<Utc>,
    ) -> Result<Decision, JobError> {
        let assignment = job.assignment_number;
        let timeout_secs = self.rules.ack_timeout.as_secs();
        // lock order: the job (held), then its unit
        let unit = match job.unit_id {
            Some(unit_id) => store::units::lock_unit(conn, unit_id).await?,
            None => None,
        };
        let Some(unit) = unit else {
            tracing::warn!(job_id = %job.job_id, "assigned job without a unit; leaving it alone");
            return Ok(Decision::Moot("the job has no unit to take it from"));
        };
        let event = NewEvent {
            event_type: EventType::AckTimeout,
            actor: ActorRef::system(),
            occurred_at: now,
            position: None,
            unit_id: Some(unit.unit_id),
            reason: format!(
                "unit {} did not acknowledge within {timeout_secs}s; back in the precinct queue",
                unit.call_sign
            ),
        };
        lifecycle::requeue(
            conn,
            job,
            &unit,
            event,
            "back in the dispatch queue: the assigned unit did not acknowledge in time",
        )
        .await?;
        flags::raise(
            conn,
            job.job_id,
            FlagKind::AckTimeout,
            &format!(
                "assignment {assignment} to unit {} not acknowledged within {timeout_secs}s",
                unit.call_sign
            ),
            &format!("ack_timeout:{assignment}"),
            now,
        )
        .await?;
        Ok(Decision::Act)
    }
}

/// Marks an open job past its SLA as breached; the flag puts it in the
/// supervisor's review list.
async fn record_breach(
    conn: &mut PgConnection,
    job: &JobRow,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let due = job
        .sla_due_at
        .map(|due| due.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    let state = store::state_name(job.state);
    store::set_sla_breached(conn, job.job_id, now).await?;
    events::append(
        conn,
        job.job_id,
        &NewEvent {
            event_type: EventType::SlaBreached,
            actor: ActorRef::system(),
            occurred_at: now,
            position: None,
            unit_id: job.unit_id,
            reason: format!("SLA due at {due} passed while the job was {state}"),
        },
    )
    .await?;
    flags::raise(
        conn,
        job.job_id,
        FlagKind::SlaBreach,
        &format!("still {state} when the SLA was due at {due}"),
        "sla_breach",
        now,
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use dispatch311_proto::common::v1::Priority;

    use super::*;

    fn job(state: JobState) -> JobRow {
        let queued_at = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        JobRow {
            sr_number: "311-00000001".into(),
            borough: "BROOKLYN".into(),
            precinct: "78".into(),
            location: None,
            priority: Priority::Normal,
            state,
            created_at: queued_at,
            queued_at,
            ..JobRow::sample()
        }
    }

    fn assigned(assignment_number: i64, at: DateTime<Utc>) -> JobRow {
        JobRow {
            unit_id: Some(Uuid::now_v7()),
            assignment_number,
            assigned_at: Some(at),
            ..job(JobState::Assigned)
        }
    }

    #[test]
    fn an_unacknowledged_assignment_times_out_once_due() {
        let at = Utc::now();
        let timeout = Duration::from_secs(300);
        let job = assigned(2, at);
        assert_eq!(
            decide_ack_timeout(&job, 2, timeout, at + chrono::Duration::seconds(300)),
            Decision::Act
        );
        assert_eq!(
            decide_ack_timeout(&job, 2, timeout, at + chrono::Duration::seconds(400)),
            Decision::Act
        );
        assert_eq!(
            decide_ack_timeout(&job, 2, timeout, at + chrono::Duration::seconds(290)),
            Decision::NotDue(Duration::from_secs(10))
        );
    }

    #[test]
    fn an_ack_timer_of_an_acknowledged_or_later_assignment_is_moot() {
        let at = Utc::now() - chrono::Duration::hours(1);
        let timeout = Duration::from_secs(300);
        let now = Utc::now();
        let reassigned = assigned(3, at);
        assert!(matches!(
            decide_ack_timeout(&reassigned, 2, timeout, now),
            Decision::Moot(_)
        ));
        for state in [
            JobState::Acknowledged,
            JobState::EnRoute,
            JobState::OnScene,
            JobState::Closed,
            JobState::Cancelled,
            JobState::Queued,
        ] {
            let job = JobRow {
                state,
                ..assigned(2, at)
            };
            assert!(
                matches!(decide_ack_timeout(&job, 2, timeout, now), Decision::Moot(_)),
                "{state:?}"
            );
        }
    }

    #[test]
    fn an_open_job_past_its_due_time_breaches_its_sla() {
        let due = Utc::now();
        for state in [
            JobState::Queued,
            JobState::Assigned,
            JobState::Acknowledged,
            JobState::EnRoute,
            JobState::OnScene,
        ] {
            let job = JobRow {
                sla_due_at: Some(due),
                ..job(state)
            };
            assert_eq!(decide_sla_breach(&job, due), Decision::Act, "{state:?}");
        }
    }

    #[test]
    fn an_sla_timer_waits_for_its_due_time_and_fires_once() {
        let due = Utc::now();
        let open = JobRow {
            sla_due_at: Some(due),
            ..job(JobState::Queued)
        };
        assert_eq!(
            decide_sla_breach(&open, due - chrono::Duration::seconds(5)),
            Decision::NotDue(Duration::from_secs(5))
        );
        let breached = JobRow {
            sla_breached: true,
            ..open.clone()
        };
        assert!(matches!(
            decide_sla_breach(&breached, due),
            Decision::Moot(_)
        ));
        let no_sla = job(JobState::Queued);
        assert!(matches!(decide_sla_breach(&no_sla, due), Decision::Moot(_)));
    }

    #[test]
    fn a_finished_job_never_breaches() {
        let due = Utc::now() - chrono::Duration::hours(1);
        for state in [JobState::Closed, JobState::Cancelled, JobState::Rerouted] {
            let job = JobRow {
                sla_due_at: Some(due),
                ..job(state)
            };
            assert!(
                matches!(decide_sla_breach(&job, Utc::now()), Decision::Moot(_)),
                "{state:?}"
            );
        }
    }

    #[test]
    fn unknown_checks_are_refused() {
        let timer = DispatchTimer {
            job_id: Uuid::now_v7().to_string(),
            check: "coffee_break".into(),
            assignment_number: 1,
        };
        assert_eq!(Check::of(&timer), None);
        let ack = DispatchTimer {
            check: ACK_TIMEOUT.into(),
            ..timer
        };
        assert_eq!(
            Check::of(&ack),
            Some(Check::AckTimeout {
                assignment_number: 1
            })
        );
    }

    #[test]
    fn sla_timers_are_scheduled_for_their_due_time() {
        let due = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        let job_id = Uuid::now_v7();
        let row = prepare_sla_timer(&Uuid::now_v7().to_string(), job_id, due).unwrap();
        assert_eq!(row.queue, queues::DISPATCH_TIMERS);
        let envelope = dispatch311_queue::JobEnvelope::decode(row.envelope.as_slice()).unwrap();
        assert_eq!(envelope.deliver_at.unwrap().seconds, 1_790_000_000);
        let timer = DispatchTimer::decode(envelope.payload.as_slice()).unwrap();
        assert_eq!(timer.job_id, job_id.to_string());
        assert_eq!(timer.check, SLA_BREACH);
    }
}
