//! Patrol units: registration, status and position reports, and the
//! recommendation of the nearest available unit. 911 comes first: a unit busy
//! with an emergency is never recommended or assigned 311 work, and a unit
//! called to one gives its 311 job back to the queue.
//!
//! Lock order, as everywhere: the job first, then its unit(s).

use dispatch311_grpc::{
    pagination,
    status::{FieldViolations, failed_precondition, not_found},
};
use dispatch311_proto::dispatch::v1::{self as dispatch, EventType, Role, UnitStatus};
use tonic::Status;
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
    validate,
};

pub struct Units {
    pub store: Store,
    /// Status reports can take a job from a unit, and a unit back in service
    /// can be auto-assigned: both are lifecycle transitions.
    pub lifecycle: Lifecycle,
}

const MAX_CALL_SIGN_CHARS: usize = 32;

const MAX_OFFICERS: usize = 16;

const DEFAULT_RECOMMENDATIONS: usize = 5;

const MAX_RECOMMENDATIONS: usize = 100;

impl Units {
    pub async fn register_unit(
        &self,
        request: dispatch::RegisterUnitRequest,
    ) -> Result<dispatch::RegisterUnitResponse, Status> {
        let mut v = FieldViolations::new();
        let actor = validate::actor(request.actor.as_ref(), &mut v);
        let call_sign = request.call_sign.trim().to_string();
        if call_sign.is_empty() {
            v.add("call_sign", "required, e.g. \"14-ADAM-3\"");
        } else if call_sign.chars().count() > MAX_CALL_SIGN_CHARS
            || !call_sign.chars().all(|c| c.is_ascii_graphic() || c == ' ')
        {
            v.add(
                "call_sign",
                format!("must be at most {MAX_CALL_SIGN_CHARS} printable ASCII characters"),
            );
        }
        let precinct = validate::precinct(&request.precinct, "precinct", &mut v);
        let mut officer_ids: Vec<String> = Vec::new();
        for (i, id) in request.officer_ids.iter().enumerate() {
            let id = validate::text(id, &format!("officer_ids[{i}]"), 64, true, &mut v);
            if !officer_ids.contains(&id) {
                officer_ids.push(id);
            }
        }
        if officer_ids.is_empty() {
            v.add("officer_ids", "at least one officer works a unit");
        } else if officer_ids.len() > MAX_OFFICERS {
            v.add("officer_ids", format!("at most {MAX_OFFICERS} officers"));
        }
        let position = validate::position(request.position.as_ref(), "position", &mut v);
        v.into_result()?;
        validate::role(
            &actor,
            &[Role::Dispatcher, Role::Supervisor, Role::System],
            "only dispatchers and supervisors register units",
        )?;

        let now = lifecycle::now_micros();
        let unit = self
            .store
            .register_unit(&call_sign, &precinct, &officer_ids, position, now)
            .await
            .map_err(JobError::from)?;
        tracing::info!(unit_id = %unit.unit_id, call_sign = %unit.call_sign, precinct = %unit.precinct, "unit registered");
        Ok(dispatch::RegisterUnitResponse {
            unit: Some(unit.to_proto()),
        })
    }

    pub async fn report_unit_status(
        &self,
        request: dispatch::ReportUnitStatusRequest,
    ) -> Result<dispatch::ReportUnitStatusResponse, Status> {
        let mut v = FieldViolations::new();
        let actor = validate::actor(request.actor.as_ref(), &mut v);
        let unit_id = validate::uuid(&request.unit_id, "unit_id", &mut v);
        let status = match UnitStatus::try_from(request.status) {
            Ok(
                s @ (UnitStatus::Unspecified
                | UnitStatus::Available
                | UnitStatus::BusyEmergency
                | UnitStatus::OutOfService),
            ) => s,
            Ok(UnitStatus::Assigned | UnitStatus::EnRoute | UnitStatus::OnScene) => {
                v.add(
                    "status",
                    "ASSIGNED, EN_ROUTE and ON_SCENE follow the unit's job: report them on the job",
                );
                UnitStatus::Unspecified
            }
            Err(_) => {
                v.add("status", "not a unit status");
                UnitStatus::Unspecified
            }
        };
        let position = validate::position(request.position.as_ref(), "position", &mut v);
        if request.status == UnitStatus::Unspecified as i32 && request.position.is_none() {
            v.add("status", "give a status, a position or both");
        }
        v.into_result()?;
        validate::role(
            &actor,
            &[
                Role::Officer,
                Role::Dispatcher,
                Role::Supervisor,
                Role::System,
            ],
            "only the unit's officers, dispatchers and supervisors report a unit's status",
        )?;

        let report = StatusReport {
            actor,
            unit_id,
            status,
            position,
        };
        let outcome = self.apply_report(&report).await?;
        self.lifecycle.relay_wakeup.notify_one();
        // what the change freed is offered to auto-assignment, after commit
        if let Some(job_id) = outcome.requeued_job {
            self.lifecycle.try_auto_assign_job(job_id).await;
        }
        if outcome.became_available {
            self.lifecycle.try_auto_assign_unit(unit_id).await;
        }
        let mut conn = self.store.pool().acquire().await.map_err(JobError::from)?;
        let unit = read_unit(&mut conn, unit_id)
            .await
            .map_err(JobError::from)?
            .ok_or_else(|| not_found("unit", unit_id.to_string()))?;
        Ok(dispatch::ReportUnitStatusResponse {
            unit: Some(unit.to_proto()),
        })
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

    pub async fn list_units(
        &self,
        request: dispatch::ListUnitsRequest,
    ) -> Result<dispatch::ListUnitsResponse, Status> {
        let mut v = FieldViolations::new();
        let precinct = validate::precinct(&request.precinct, "precinct", &mut v);
        let limit = pagination::page_size(request.page_size, "page_size", &mut v);
        let after = pagination::decode_token(&request.page_token, "page_token", &mut v);
        v.into_result()?;

        // call signs are unique: the last one of a page is the cursor
        let mut units = self
            .store
            .units_of(&precinct, after.as_deref(), limit + 1)
            .await
            .map_err(JobError::from)?;
        let next_page_token = if units.len() > limit {
            units.truncate(limit);
            units
                .last()
                .map(|u| pagination::encode_token(&u.call_sign))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(dispatch::ListUnitsResponse {
            units: units.iter().map(UnitRow::to_proto).collect(),
            next_page_token,
        })
    }

    pub async fn recommend_units(
        &self,
        request: dispatch::RecommendUnitsRequest,
    ) -> Result<dispatch::RecommendUnitsResponse, Status> {
        let mut v = FieldViolations::new();
        let job_id = validate::uuid(&request.job_id, "job_id", &mut v);
        let max_units = match usize::try_from(request.max_units) {
            Ok(0) => DEFAULT_RECOMMENDATIONS,
            Ok(n) => n.min(MAX_RECOMMENDATIONS),
            Err(_) => {
                v.add("max_units", "must not be negative");
                DEFAULT_RECOMMENDATIONS
            }
        };
        v.into_result()?;

        let job = self
            .store
            .get(&JobKey::Id(job_id))
            .await
            .map_err(JobError::from)?
            .ok_or_else(|| not_found("dispatch job", job_id.to_string()))?;
        let Some(location) = job.location.map(|l| (l.latitude, l.longitude)) else {
            return Err(failed_precondition(
                "NO_LOCATION",
                format!("jobs/{job_id}"),
                "the job has no location to measure distances from",
            ));
        };
        let mut conn = self.store.pool().acquire().await.map_err(JobError::from)?;
        let mut ranked = rank_by_distance(
            available_in(&mut conn, &job.precinct)
                .await
                .map_err(JobError::from)?,
            location,
        );
        ranked.truncate(max_units);
        Ok(dispatch::RecommendUnitsResponse {
            recommendations: ranked
                .into_iter()
                .map(|(unit, distance_meters)| dispatch::UnitRecommendation {
                    unit: Some(unit.to_proto()),
                    distance_meters,
                })
                .collect(),
        })
    }

    pub async fn set_auto_assign(
        &self,
        request: dispatch::SetAutoAssignRequest,
    ) -> Result<dispatch::SetAutoAssignResponse, Status> {
        let mut v = FieldViolations::new();
        let actor = validate::actor(request.actor.as_ref(), &mut v);
        let precinct = validate::precinct(&request.precinct, "precinct", &mut v);
        v.into_result()?;
        validate::role(
            &actor,
            &[Role::Supervisor],
            "only a supervisor turns auto-assignment on or off",
        )?;
        self.store
            .set_auto_assign(&precinct, request.enabled)
            .await
            .map_err(JobError::from)?;
        tracing::info!(%precinct, enabled = request.enabled, supervisor = %actor.id, "auto-assignment set");
        Ok(dispatch::SetAutoAssignResponse {
            precinct,
            enabled: request.enabled,
        })
    }
}

struct StatusReport {
    actor: ActorRef,
    unit_id: Uuid,
    status: UnitStatus,
    position: Option<(f64, f64)>,
}

struct ReportOutcome {
    requeued_job: Option<Uuid>,
    became_available: bool,
}
