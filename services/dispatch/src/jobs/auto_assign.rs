//! Auto-assignment, for precincts that turn it on: a queued job goes to the
//! nearest available unit, and a unit that becomes available takes the
//! precinct's most urgent, oldest queued job. Each is an assignment by the
//! service, written like any other change.

use dispatch311_proto::dispatch::v1::{self as dispatch, JobState};
use uuid::Uuid;

use super::{
    JobError,
    assignment::{rank_by_distance, why_cannot_take},
    change::JobChange,
    lifecycle::{Lifecycle, MAX_ATTEMPTS, now_micros},
};
use crate::store::{changes::ReadFor, events::ActorRef};

impl Lifecycle {
    /// Gives a queued job of a precinct with auto-assignment on to the
    /// nearest available unit, as the service. Returns the unit, if one was
    /// assigned. Harmless to repeat: only a queued job is assigned.
    #[tracing::instrument(name = "auto-assign job", skip_all, fields(dispatch311.job.id = %job_id))]
    pub async fn auto_assign_job(&self, job_id: Uuid) -> Result<Option<Uuid>, JobError> {
        for _ in 0..MAX_ATTEMPTS {
            // most precincts assign by hand: the read says so
            let Some(s) = self
                .store
                .read_for_change(job_id, &ReadFor::default())
                .await?
            else {
                return Ok(None);
            };
            if s.job.state != JobState::Queued || !s.auto_assign {
                return Ok(None);
            }
            let Some(location) = s.job.location else {
                return Ok(None);
            };
            let candidates =
                rank_by_distance(self.store.available_units(&s.job.precinct).await?, location);
            let Some((unit, distance)) = candidates
                .into_iter()
                .find(|(unit, _)| why_cannot_take(unit, &s.job).is_none())
            else {
                return Ok(None);
            };
            let reason = format!("auto-assigned: nearest available unit, {distance:.0} m away");
            let mut change = JobChange::new(&s.job, &s.flag_keys, now_micros());
            self.apply_assignment(&mut change, &ActorRef::system(), &unit, None, &reason)?;
            // the unit may have taken other work since it was listed: look again
            if self.write(&change, &s).await?.is_some() {
                tracing::info!(%job_id, unit_id = %unit.unit_id, distance_m = distance.round(), "job auto-assigned");
                return Ok(Some(unit.unit_id));
            }
        }
        Err(JobError::Busy(job_id))
    }

    /// Gives a unit that became available the precinct's most urgent, oldest
    /// queued job, when its precinct has auto-assignment on. Returns the job,
    /// if one was assigned.
    #[tracing::instrument(name = "auto-assign unit", skip_all, fields(dispatch311.unit.id = %unit_id))]
    pub async fn auto_assign_unit(&self, unit_id: Uuid) -> Result<Option<Uuid>, JobError> {
        for _ in 0..MAX_ATTEMPTS {
            let Some((seen, auto_assign)) = self.store.unit_for_auto_assign(unit_id).await? else {
                return Ok(None);
            };
            if seen.status != dispatch::UnitStatus::Available
                || seen.current_job_id.is_some()
                || !auto_assign
            {
                return Ok(None);
            }
            let Some(job_id) = self.store.next_queued_job(&seen.precinct).await? else {
                return Ok(None);
            };
            let read = ReadFor {
                unit_ids: &[unit_id],
                ..ReadFor::default()
            };
            let Some(s) = self.store.read_for_change(job_id, &read).await? else {
                continue;
            };
            if s.job.state != JobState::Queued {
                // taken meanwhile: the next one in the queue, if any
                continue;
            }
            let Some(unit) = s.unit(unit_id) else {
                return Ok(None);
            };
            if why_cannot_take(unit, &s.job).is_some() {
                return Ok(None);
            }
            let mut change = JobChange::new(&s.job, &s.flag_keys, now_micros());
            self.apply_assignment(
                &mut change,
                &ActorRef::system(),
                unit,
                None,
                "auto-assigned: the oldest most urgent job of the precinct queue",
            )?;
            if self.write(&change, &s).await?.is_some() {
                tracing::info!(%job_id, %unit_id, "available unit auto-assigned");
                return Ok(Some(job_id));
            }
        }
        Err(JobError::Busy(unit_id))
    }

    /// [`Self::auto_assign_job`] after another change committed: a failure
    /// leaves the job in the queue for a dispatcher, so it is only logged.
    pub async fn try_auto_assign_job(&self, job_id: Uuid) {
        if let Err(e) = self.auto_assign_job(job_id).await {
            tracing::warn!(%job_id, error = %e, "auto-assignment failed; the job waits in the queue");
        }
    }

    /// [`Self::auto_assign_unit`], logging a failure.
    pub async fn try_auto_assign_unit(&self, unit_id: Uuid) {
        if let Err(e) = self.auto_assign_unit(unit_id).await {
            tracing::warn!(%unit_id, error = %e, "auto-assignment of an available unit failed");
        }
    }
}
