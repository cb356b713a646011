//! Patrol units: registration, status and position reports, and the
//! recommendation of the nearest available unit. 911 comes first: a unit busy
//! with an emergency is never recommended or assigned 311 work, and a unit
//! called to one gives its 311 job back to the queue.
//!
//! Which unit may take a job and how units rank by distance live in
//! `jobs::assignment` (the lifecycle's assignment uses them too);
//! auto-assignment is a lifecycle transition (`jobs::auto_assign`).
//!
//! Lock order, as everywhere: the job first, then its unit(s).

use dispatch311_proto::dispatch::v1::{EventType, Role, UnitStatus};
use uuid::Uuid;

use crate::{
    jobs::JobError,
    jobs::assignment::rank_by_distance,
    jobs::lifecycle::{self, Lifecycle},
    jobs::state_machine::Refusal,
    store::events::{ActorRef, NewEvent},
    store::{
        JobKey, Store, lock_job,
        units::{
            UnitRow, available_in, lock_unit, read_unit, set_position, set_status, status_name,
        },
    },
};

pub struct Units {
    pub store: Store,
    /// Status reports can take a job from a unit, and a unit back in service
    /// can be auto-assigned: both are lifecycle transitions.
    pub lifecycle: Lifecycle,
}

/// A unit to register, checked.
pub struct NewUnit {
    pub call_sign: String,
    pub precinct: String,
    pub officer_ids: Vec<String>,
    pub position: Option<(f64, f64)>,
}

/// A status or position report, checked: `status` is AVAILABLE,
/// BUSY_EMERGENCY, OUT_OF_SERVICE, or UNSPECIFIED for a position alone.
pub struct StatusReport {
    pub actor: ActorRef,
    pub unit_id: Uuid,
    pub status: UnitStatus,
    pub position: Option<(f64, f64)>,
}

struct ReportOutcome {
    requeued_job: Option<Uuid>,
    became_available: bool,
}

impl Units {
    pub async fn register(&self, unit: NewUnit) -> Result<UnitRow, JobError> {
        let now = lifecycle::now_micros();
        let unit = self
            .store
            .register_unit(
                &unit.call_sign,
                &unit.precinct,
                &unit.officer_ids,
                unit.position,
                now,
            )
            .await?;
        tracing::info!(unit_id = %unit.unit_id, call_sign = %unit.call_sign, precinct = %unit.precinct, "unit registered");
        Ok(unit)
    }

    /// Applies `report`, then offers what it freed to auto-assignment (a job
    /// its unit gave back, the unit back in service); the unit as it is then.
    pub async fn report_status(&self, report: StatusReport) -> Result<UnitRow, JobError> {
        let outcome = self.apply_report(&report).await?;
        self.lifecycle.relay_wakeup.notify_one();
        // after commit
        if let Some(job_id) = outcome.requeued_job {
            self.lifecycle.try_auto_assign_job(job_id).await;
        }
        if outcome.became_available {
            self.lifecycle.try_auto_assign_unit(report.unit_id).await;
        }
        let mut conn = self.store.pool().acquire().await?;
        read_unit(&mut conn, report.unit_id)
            .await?
            .ok_or_else(|| JobError::not_found("unit", report.unit_id))
    }

    /// Applies a status report in one transaction. A unit called to a 911
    /// emergency or going out of service gives its 311 job back to the
    /// queue; to keep the lock order (job, then unit), the unit's job is
    /// locked first and the report is retried if the unit changed jobs
    /// meanwhile.
    async fn apply_report(&self, report: &StatusReport) -> Result<ReportOutcome, JobError> {
        let pulls_unit = matches!(
            report.status,
            UnitStatus::BusyEmergency | UnitStatus::OutOfService
        );
        for _ in 0..3 {
            let mut tx = self.store.pool().begin().await?;
            let Some(seen) = read_unit(&mut tx, report.unit_id).await? else {
                return Err(JobError::not_found("unit", report.unit_id));
            };
            let job = match seen.current_job_id {
                Some(job_id) if pulls_unit => lock_job(&mut tx, job_id).await?,
                _ => None,
            };
            let Some(unit) = lock_unit(&mut tx, report.unit_id).await? else {
                return Err(JobError::not_found("unit", report.unit_id));
            };
            if unit.current_job_id != seen.current_job_id {
                continue;
            }
            if report.actor.role == Role::Officer && !unit.has_officer(&report.actor.id) {
                return Err(JobError::NotAllowed(format!(
                    "officer {} does not work unit {}",
                    report.actor.id, unit.call_sign
                )));
            }
            if report.status == UnitStatus::Available
                && let Some(job_id) = unit.current_job_id
            {
                return Err(Refusal::new(
                    "UNIT_ON_A_JOB",
                    format!(
                        "unit {} is working job {job_id}: its status follows the job until the job is closed \
                         or reassigned",
                        unit.call_sign
                    ),
                )
                .for_unit(unit.unit_id));
            }

            let now = lifecycle::now_micros();
            let status = if report.status == UnitStatus::Unspecified {
                unit.status
            } else {
                report.status
            };
            set_status(&mut tx, unit.unit_id, status, now).await?;
            if let Some(position) = report.position {
                set_position(&mut tx, unit.unit_id, position, now).await?;
            }
            let mut requeued_job = None;
            if let Some(job) = job.filter(|j| j.unit_id == Some(unit.unit_id)) {
                let (reason, public_message) = if report.status == UnitStatus::BusyEmergency {
                    (
                        "unit pulled to a 911 emergency",
                        "back in the precinct queue: the assigned unit was called to an emergency",
                    )
                } else {
                    (
                        "unit went out of service",
                        "back in the precinct queue: the assigned unit went out of service",
                    )
                };
                let unit_now = UnitRow {
                    status,
                    ..unit.clone()
                };
                let event = NewEvent {
                    event_type: EventType::Reassigned,
                    actor: report.actor.clone(),
                    occurred_at: now,
                    position: report.position,
                    unit_id: Some(unit.unit_id),
                    reason: reason.to_string(),
                };
                lifecycle::requeue(&mut tx, &job, &unit_now, event, public_message).await?;
                tracing::info!(job_id = %job.job_id, unit_id = %unit.unit_id, unit_status = status_name(status), "job back in the queue: its unit was taken away");
                requeued_job = Some(job.job_id);
            }
            tx.commit().await?;
            return Ok(ReportOutcome {
                requeued_job,
                became_available: status == UnitStatus::Available
                    && unit.status != UnitStatus::Available,
            });
        }
        Err(JobError::Busy(report.unit_id))
    }

    /// A page of `precinct`'s units by call sign, after `after`.
    pub async fn list(
        &self,
        precinct: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<UnitRow>, JobError> {
        Ok(self.store.units_of(precinct, after, limit).await?)
    }

    /// The available units of the job's precinct, nearest first, at most
    /// `max_units`, with their distance in metres.
    #[tracing::instrument(name = "recommend units", skip_all, fields(dispatch311.job.id = %job_id))]
    pub async fn recommend(
        &self,
        job_id: Uuid,
        max_units: usize,
    ) -> Result<Vec<(UnitRow, f64)>, JobError> {
        let job = self
            .store
            .get(&JobKey::Id(job_id))
            .await?
            .ok_or_else(|| JobError::not_found("dispatch job", job_id))?;
        let Some(location) = job.location.map(|l| (l.latitude, l.longitude)) else {
            return Err(Refusal::new(
                "NO_LOCATION",
                "the job has no location to measure distances from",
            )
            .for_job(job_id));
        };
        let mut conn = self.store.pool().acquire().await?;
        let mut ranked = rank_by_distance(available_in(&mut conn, &job.precinct).await?, location);
        ranked.truncate(max_units);
        Ok(ranked)
    }

    /// Turns auto-assignment on or off for `precinct`.
    pub async fn set_auto_assign(
        &self,
        precinct: &str,
        enabled: bool,
        supervisor: &str,
    ) -> Result<(), JobError> {
        self.store.set_auto_assign(precinct, enabled).await?;
        tracing::info!(%precinct, enabled, %supervisor, "auto-assignment set");
        Ok(())
    }
}
