//! The guarded job lifecycle: assignment, acknowledgement, en route, on
//! scene, evidence viewed, closure (with the accountability rules), cancel,
//! reopen and supervisor-approved re-route. Every transition is checked
//! against the state machine, appends an event, tells intake, and changes
//! nothing when refused.
//!
//! Each change runs the same way ([`JobChange`]): begin, lock the job, check
//! the state machine and the rules, update the job (and its unit, locked
//! after the job), append the event, push the unit's feed, tell intake with
//! the event's sequence, commit, then wake the outbox relay.

use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use dispatch311_domain::{
    SrNumber,
    jobs::{kinds, queues},
    resolution,
    status::{priority_name, resolution_name},
    time::to_timestamp,
};
use dispatch311_grpc::status::{
    FieldViolations, failed_precondition, internal, invalid_argument, not_found, permission_denied,
    unavailable,
};
use dispatch311_proto::{
    common::v1::{ResolutionCode, ServiceRequestStatus},
    dispatch::v1::{self as dispatch, AssignmentChange, EventType, FlagKind, JobState, Role},
    jobs::v1::{ClosedEvent, ComplainantQuestion, DispatchTimer, StatusUpdate},
};
use dispatch311_queue::{QueueError, outbox};
use dispatch311_telemetry::attributes::{self, set_on_current};
use sqlx::{PgConnection, Postgres, Transaction};
use tokio::sync::Notify;
use tonic::Status;
use uuid::Uuid;

use crate::{
    accountability::{self, CloseFacts, DuplicateTarget},
    config::DispatchRules,
    events::{self, ActorRef, NewEvent},
    flags,
    outputs::{self, PublicChange},
    state_machine::{Transition, is_open, unit_status_for},
    store::{JobKey, JobRow, Store, StoreError, lock_job},
    units::{self, UnitRow, why_cannot_take},
    validate,
};

const MAX_REASON_CHARS: usize = 1000;
const MAX_MESSAGE_CHARS: usize = 1000;
const VIEWERS_ONLY: &str =
    "only an officer of the assigned unit or a supervisor views a job's photos";
/// Who answers, in the job's event log: never the complainant's identity.
pub const COMPLAINANT_ACTOR: &str = "complainant";
const MAX_NOTES_CHARS: usize = 4000;
const MIN_REROUTE_REASON_CHARS: usize = 10;

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
    /// The job, as locked, failed the check; nothing changed.
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
    pub async fn assign_job(
        &self,
        request: dispatch::AssignJobRequest,
    ) -> Result<dispatch::AssignJobResponse, Status> {
        let mut v = FieldViolations::new();
        let actor = validate::actor(request.actor.as_ref(), &mut v);
        let job_id = validate::uuid(&request.job_id, "job_id", &mut v);
        let unit_id = validate::uuid(&request.unit_id, "unit_id", &mut v);
        let reason = validate::text(&request.reason, "reason", MAX_REASON_CHARS, false, &mut v);
        v.into_result()?;
        validate::role(
            &actor,
            &[Role::Dispatcher, Role::Supervisor, Role::System],
            "only dispatchers and supervisors assign jobs",
        )?;

        let mut change = self.begin(job_id).await?;
        let job = &change.job;
        let previous = job.unit_id.filter(|_| is_open(job.state));
        let transition = if previous.is_some() {
            Transition::Reassign
        } else {
            Transition::Assign
        };
        change.check(transition)?;
        if let Some(previous) = previous {
            if previous == unit_id {
                return Err(Failure::refused(
                    "ALREADY_ASSIGNED",
                    job_id,
                    "the job is already assigned to this unit",
                )
                .into());
            }
            if reason.is_empty() {
                return Err(invalid_argument(
                    "reason",
                    "required: the job is already assigned to a unit, so this is a reassignment",
                ));
            }
        }
        let locked = units::lock_units(
            &mut change.tx,
            &[Some(unit_id), previous]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>(),
        )
        .await
        .map_err(Failure::from)?;
        let Some(unit) = locked.iter().find(|u| u.unit_id == unit_id) else {
            return Err(not_found("unit", unit_id.to_string()));
        };
        if let Some(refusal) = why_cannot_take(unit, &change.job) {
            return Err(refusal.for_unit(unit_id));
        }
        let previous_unit = previous.and_then(|id| locked.iter().find(|u| u.unit_id == id));
        self.apply_assignment(&mut change, &actor, unit, previous_unit, &reason)
            .await?;
        let job = self.finish(change).await?;
        if let Some(previous) = previous {
            self.try_auto_assign_unit(previous).await;
        }
        Ok(dispatch::AssignJobResponse { job: Some(job) })
    }

    pub async fn acknowledge_job(
        &self,
        request: dispatch::AcknowledgeJobRequest,
    ) -> Result<dispatch::AcknowledgeJobResponse, Status> {
        let job = self
            .progress(
                Progress::Acknowledge,
                request.actor.as_ref(),
                &request.job_id,
                request.position.as_ref(),
            )
            .await?;
        Ok(dispatch::AcknowledgeJobResponse { job: Some(job) })
    }

    pub async fn report_en_route(
        &self,
        request: dispatch::ReportEnRouteRequest,
    ) -> Result<dispatch::ReportEnRouteResponse, Status> {
        let job = self
            .progress(
                Progress::EnRoute,
                request.actor.as_ref(),
                &request.job_id,
                request.position.as_ref(),
            )
            .await?;
        Ok(dispatch::ReportEnRouteResponse { job: Some(job) })
    }

    pub async fn report_on_scene(
        &self,
        request: dispatch::ReportOnSceneRequest,
    ) -> Result<dispatch::ReportOnSceneResponse, Status> {
        let job = self
            .progress(
                Progress::OnScene,
                request.actor.as_ref(),
                &request.job_id,
                request.position.as_ref(),
            )
            .await?;
        Ok(dispatch::ReportOnSceneResponse { job: Some(job) })
    }

    pub async fn record_evidence_viewed(
        &self,
        request: dispatch::RecordEvidenceViewedRequest,
    ) -> Result<dispatch::RecordEvidenceViewedResponse, Status> {
        let mut v = FieldViolations::new();
        let actor = validate::actor(request.actor.as_ref(), &mut v);
        let job_id = validate::uuid(&request.job_id, "job_id", &mut v);
        v.into_result()?;
        let change = self.open_for_crew(&actor, job_id, VIEWERS_ONLY).await?;
        let photo_count = u32::try_from(change.job.photo_count).unwrap_or(0);
        if request.photo_index >= photo_count {
            return Err(invalid_argument(
                "photo_index",
                format!("the request has {photo_count} photo(s); the index starts at 0"),
            ));
        }
        let reason = format!("photo {}", request.photo_index);
        let job = self.record_view(change, actor, reason).await?;
        Ok(dispatch::RecordEvidenceViewedResponse { job: Some(job) })
    }

    /// Reads one uploaded photo of a job for its viewer and records the view
    /// in the same transaction: no photo leaves unrecorded, and a photo that
    /// cannot be read records nothing.
    pub async fn get_job_photo(
        &self,
        request: dispatch::GetJobPhotoRequest,
    ) -> Result<dispatch::GetJobPhotoResponse, Status> {
        let mut v = FieldViolations::new();
        let actor = validate::actor(request.actor.as_ref(), &mut v);
        let job_id = validate::uuid(&request.job_id, "job_id", &mut v);
        v.into_result()?;
        let mut change = self.open_for_crew(&actor, job_id, VIEWERS_ONLY).await?;
        let photo_ids: Vec<Uuid> =
            sqlx::query_scalar("SELECT photo_ids FROM jobs WHERE job_id = $1")
                .bind(job_id)
                .fetch_one(&mut *change.tx)
                .await
                .map_err(Failure::from)?;
        let Some(&photo_id) = photo_ids.get(request.photo_index as usize) else {
            return Err(invalid_argument(
                "photo_index",
                format!(
                    "the request has {} uploaded photo(s); the index starts at 0",
                    photo_ids.len()
                ),
            ));
        };
        let content = self.photos.get(photo_id).await.map_err(|e| match e {
            dispatch311_photos::PhotoStoreError::NotFound(_) => {
                dispatch311_grpc::status::not_found(
                    "photo",
                    format!("{} of job {job_id}", request.photo_index),
                )
            }
            other => dispatch311_grpc::status::unavailable("photo store", &other),
        })?;
        let reason = format!("photo {} fetched", request.photo_index);
        let job = self.record_view(change, actor, reason).await?;
        Ok(dispatch::GetJobPhotoResponse {
            content_type: sniffed_type(&content).to_string(),
            content,
            job: Some(job),
        })
    }

    /// Locks `job_id` for its crew's work on an open job by `actor`: an
    /// officer of the assigned unit or a supervisor (`refusal` says what the
    /// others may not do).
    async fn open_for_crew(
        &self,
        actor: &ActorRef,
        job_id: Uuid,
        refusal: &str,
    ) -> Result<JobChange, Status> {
        validate::role(actor, &[Role::Officer, Role::Supervisor], refusal)?;
        let mut change = self.begin(job_id).await?;
        change.check(Transition::ViewEvidence)?;
        if actor.role == Role::Officer {
            // reading the unit is enough: nothing about it changes
            let unit = match change.job.unit_id {
                Some(unit_id) => units::read_unit(&mut change.tx, unit_id)
                    .await
                    .map_err(Failure::from)?,
                None => None,
            };
            require_crew(actor, unit.as_ref())?;
        }
        Ok(change)
    }

    /// Sends the crew's question to the complainant through intake, and
    /// records it (event, message row and the intake job in one transaction).
    pub async fn relay_message_to_complainant(
        &self,
        request: dispatch::RelayMessageToComplainantRequest,
    ) -> Result<dispatch::RelayMessageToComplainantResponse, Status> {
        let mut v = FieldViolations::new();
        let actor = validate::actor(request.actor.as_ref(), &mut v);
        let job_id = validate::uuid(&request.job_id, "job_id", &mut v);
        let text = validate::text(&request.message, "message", MAX_MESSAGE_CHARS, true, &mut v);
        // the complainant learns the precinct, never the officer: no number,
        // address or link to reach whoever asks
        let reachable = dispatch311_domain::redact::contact_details_in(&text);
        if !reachable.is_empty() {
            v.add(
                "message",
                format!(
                    "must not contain {}: the complainant hears from the precinct, not from an officer",
                    reachable.join(" or ")
                ),
            );
        }
        v.into_result()?;
        let mut change = self
            .open_for_crew(
                &actor,
                job_id,
                "only an officer of the assigned unit or a supervisor writes to the complainant",
            )
            .await?;
        let message_id = Uuid::now_v7();
        let question = ComplainantQuestion {
            message_id: message_id.to_string(),
            sr_id: change.job.sr_id.to_string(),
            sr_number: change.job.sr_number.clone(),
            job_id: job_id.to_string(),
            from: format!("NYPD precinct {}", change.job.precinct),
            text: text.clone(),
            asked_at: Some(to_timestamp(change.now)),
        };
        sqlx::query(
            "INSERT INTO complainant_messages (message_id, job_id, asked_by, asked_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(message_id)
        .bind(job_id)
        .bind(&actor.id)
        .bind(change.now)
        .execute(&mut *change.tx)
        .await
        .map_err(Failure::from)?;
        outbox::enqueue(
            &mut change.tx,
            queues::COMPLAINANT_QUESTIONS,
            kinds::COMPLAINANT_QUESTION,
            &question.sr_id,
            &question,
        )
        .await
        .map_err(Failure::from)?;
        let event = NewEvent {
            event_type: EventType::MessageToComplainant,
            actor,
            occurred_at: change.now,
            position: None,
            unit_id: change.job.unit_id,
            reason: text,
        };
        change.record(event, None).await?;
        let job = self.finish(change).await?;
        Ok(dispatch::RelayMessageToComplainantResponse {
            message_id: message_id.to_string(),
            job: Some(job),
        })
    }

    /// Puts the complainant's (redacted) answer to `message_id` on the job's
    /// timeline, once. Returns whether it was new.
    pub async fn record_complainant_answer(
        &self,
        job_id: Uuid,
        message_id: Uuid,
        text: String,
    ) -> Result<bool, Failure> {
        let mut change = self.begin(job_id).await?;
        let answered = sqlx::query(
            "UPDATE complainant_messages SET answered_at = $3 \
             WHERE message_id = $1 AND job_id = $2 AND answered_at IS NULL",
        )
        .bind(message_id)
        .bind(job_id)
        .bind(change.now)
        .execute(&mut *change.tx)
        .await?
        .rows_affected();
        if answered == 0 {
            return Ok(false);
        }
        let event = NewEvent {
            event_type: EventType::ComplainantAnswered,
            actor: ActorRef {
                id: COMPLAINANT_ACTOR.into(),
                role: Role::System,
            },
            occurred_at: change.now,
            position: None,
            unit_id: change.job.unit_id,
            reason: text.chars().take(MAX_NOTES_CHARS).collect(),
        };
        change.record(event, None).await?;
        self.finish(change).await?;
        Ok(true)
    }

    /// Records an EVIDENCE_VIEWED event and commits.
    async fn record_view(
        &self,
        mut change: JobChange,
        actor: ActorRef,
        reason: String,
    ) -> Result<dispatch::Job, Status> {
        let event = NewEvent {
            event_type: EventType::EvidenceViewed,
            actor,
            occurred_at: change.now,
            position: None,
            unit_id: change.job.unit_id,
            reason,
        };
        change.record(event, None).await?;
        Ok(self.finish(change).await?)
    }

    pub async fn close_job(
        &self,
        request: dispatch::CloseJobRequest,
    ) -> Result<dispatch::CloseJobResponse, Status> {
        let mut v = FieldViolations::new();
        let actor = validate::actor(request.actor.as_ref(), &mut v);
        let job_id = validate::uuid(&request.job_id, "job_id", &mut v);
        let code = match ResolutionCode::try_from(request.resolution_code) {
            Ok(ResolutionCode::Unspecified) | Err(_) => {
                v.add(
                    "resolution_code",
                    "required: the outcome, e.g. ACTION_TAKEN or NO_EVIDENCE",
                );
                ResolutionCode::Unspecified
            }
            Ok(code) => code,
        };
        let summons_number =
            validate::text(&request.summons_number, "summons_number", 32, false, &mut v);
        if code == ResolutionCode::SummonsIssued && summons_number.is_empty() {
            v.add(
                "summons_number",
                "required when the resolution is SUMMONS_ISSUED",
            );
        } else if code != ResolutionCode::SummonsIssued && !summons_number.is_empty() {
            v.add("summons_number", "only for the resolution SUMMONS_ISSUED");
        }
        let notes = validate::text(&request.notes, "notes", MAX_NOTES_CHARS, false, &mut v);
        let position = validate::position(request.position.as_ref(), "position", &mut v);
        let duplicate_of = match request.duplicate_of_sr_number.trim() {
            "" => None,
            number => match number.parse::<SrNumber>() {
                Ok(number) if code == ResolutionCode::Duplicate => Some(number.to_string()),
                Ok(_) => {
                    v.add(
                        "duplicate_of_sr_number",
                        "only for the resolution DUPLICATE",
                    );
                    None
                }
                Err(e) => {
                    v.add("duplicate_of_sr_number", e.to_string());
                    None
                }
            },
        };
        v.into_result()?;
        validate::role(
            &actor,
            accountability::CLOSING_ROLES,
            "only an officer of the assigned unit or a supervisor closes a job",
        )?;

        let mut change = self.begin(job_id).await?;
        change.check(Transition::Close)?;
        let unit = change.lock_assigned_unit().await?;
        if actor.role == Role::Officer {
            require_crew(&actor, Some(&unit))?;
        }
        // what the rules need to know beyond the job: read under its lock
        let viewed = change.job.photo_count > 0
            && viewed_evidence(&mut change.tx, job_id, &actor.id)
                .await
                .map_err(Failure::from)?;
        let burst_since = change.now - self.rules.burst_window;
        let earlier_closures = closures_by(&mut change.tx, &actor.id, burst_since)
            .await
            .map_err(Failure::from)?;
        let duplicate_of = match &duplicate_of {
            None => None,
            Some(number) => Some(
                duplicate_target(&mut change.tx, number)
                    .await
                    .map_err(Failure::from)?
                    .ok_or_else(|| {
                        Status::not_found(format!(
                            "no job for {number}, the request this one duplicates"
                        ))
                    })?,
            ),
        };
        let facts = CloseFacts {
            code,
            closer_id: &actor.id,
            closer_role: actor.role,
            position,
            at: change.now,
            closer_viewed_evidence: viewed,
            closer_recent_closures: earlier_closures + 1,
            summons_number_given: !summons_number.is_empty(),
            notes: &notes,
            duplicate_of,
        };
        let to_raise = accountability::check_close(&change.job, &facts, &self.rules)
            .map_err(|refusal| refusal.for_job(job_id))?;

        let now = change.now;
        let closure_number = change.job.closure_count + 1;
        sqlx::query(
            "UPDATE jobs SET state = 'CLOSED', closed_at = $2, closed_by = $3, resolution_code = $4, \
                resolution_notes = $5, summons_number = $6, closure_count = $7, updated_at = $2 \
             WHERE job_id = $1",
        )
        .bind(job_id)
        .bind(now)
        .bind(&actor.id)
        .bind(resolution_name(code))
        .bind(&notes)
        .bind(&summons_number)
        .bind(closure_number)
        .execute(&mut *change.tx)
        .await
        .map_err(Failure::from)?;
        units::release(&mut change.tx, &unit, job_id, AssignmentChange::Closed, now)
            .await
            .map_err(Failure::from)?;
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
        change.record(event, Some(public)).await?;
        let mut flagged = false;
        for flag in &to_raise {
            flagged |= flags::raise(
                &mut change.tx,
                job_id,
                flag.kind,
                &flag.detail,
                &flag.dedup_key,
                now,
            )
            .await
            .map_err(Failure::from)?;
        }
        let job = &change.job;
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
        };
        outputs::publish_closed(&mut change.tx, &closed)
            .await
            .map_err(Failure::from)?;
        tracing::info!(%job_id, unit_id = %unit.unit_id, resolution = resolution_name(code), closure_number, flags = to_raise.len(), "job closed");
        let job = self.finish(change).await?;
        self.try_auto_assign_unit(unit.unit_id).await;
        Ok(dispatch::CloseJobResponse { job: Some(job) })
    }

    pub async fn cancel_job(
        &self,
        request: dispatch::CancelJobRequest,
    ) -> Result<dispatch::CancelJobResponse, Status> {
        let mut v = FieldViolations::new();
        let actor = validate::actor(request.actor.as_ref(), &mut v);
        let job_id = validate::uuid(&request.job_id, "job_id", &mut v);
        let reason = validate::text(&request.reason, "reason", MAX_REASON_CHARS, true, &mut v);
        v.into_result()?;
        validate::role(
            &actor,
            &[Role::Dispatcher, Role::Supervisor],
            "only dispatchers and supervisors cancel jobs",
        )?;

        let mut change = self.begin(job_id).await?;
        change.check(Transition::Cancel)?;
        let freed = change.free_unit().await?;
        sqlx::query(
            "UPDATE jobs SET state = 'CANCELLED', unit_id = NULL, updated_at = $2 WHERE job_id = $1",
        )
        .bind(job_id)
        .bind(change.now)
        .execute(&mut *change.tx)
        .await
        .map_err(Failure::from)?;
        let event = NewEvent {
            event_type: EventType::Cancelled,
            actor,
            occurred_at: change.now,
            position: None,
            unit_id: freed,
            reason,
        };
        let public = Public {
            status: ServiceRequestStatus::Cancelled,
            message: "cancelled by the police dispatcher".into(),
            transition_key: "dispatch:cancelled".into(),
            resolution: None,
        };
        change.record(event, Some(public)).await?;
        tracing::info!(%job_id, "job cancelled");
        let job = self.finish(change).await?;
        if let Some(unit_id) = freed {
            self.try_auto_assign_unit(unit_id).await;
        }
        Ok(dispatch::CancelJobResponse { job: Some(job) })
    }

    pub async fn reopen_job(
        &self,
        request: dispatch::ReopenJobRequest,
    ) -> Result<dispatch::ReopenJobResponse, Status> {
        let mut v = FieldViolations::new();
        let actor = validate::actor(request.actor.as_ref(), &mut v);
        let job_id = validate::uuid(&request.job_id, "job_id", &mut v);
        let reason = validate::text(&request.reason, "reason", MAX_REASON_CHARS, true, &mut v);
        v.into_result()?;
        validate::role(
            &actor,
            &[Role::Supervisor, Role::System],
            "only a supervisor (or the survey path) reopens a job",
        )?;

        let for_review =
            accountability::reopened_by_complainant(&reason, actor.role, request.raise_priority);
        let reopening = Reopening {
            actor,
            reason,
            raise_priority: request.raise_priority,
            for_review,
        };
        let change = self.begin(job_id).await?;
        let job = self.reopen(change, reopening).await?;
        Ok(dispatch::ReopenJobResponse { job: Some(job) })
    }

    /// Reopens the job of request `sr_id` if, as locked, it passes `check`
    /// (which says why not otherwise); nothing changes when it does not.
    /// `None` when the request has no job.
    pub async fn reopen_if(
        &self,
        sr_id: Uuid,
        reopening: Reopening,
        check: impl FnOnce(&JobRow) -> Result<(), &'static str>,
    ) -> Result<Option<GuardedReopen>, Failure> {
        let job_id: Option<Uuid> = sqlx::query_scalar("SELECT job_id FROM jobs WHERE sr_id = $1")
            .bind(sr_id)
            .fetch_optional(self.store.pool())
            .await?;
        let Some(job_id) = job_id else {
            return Ok(None);
        };
        let change = self.begin(job_id).await?;
        if let Err(why) = check(&change.job) {
            // dropping the transaction releases the lock and changes nothing
            return Ok(Some(GuardedReopen::Unchanged {
                job_id,
                state: change.job.state,
                closure_count: change.job.closure_count,
                why,
            }));
        }
        let job = self.reopen(change, reopening).await?;
        Ok(Some(GuardedReopen::Reopened(Box::new(job))))
    }

    /// A closed job goes back to its precinct queue (more urgent when asked),
    /// with a REOPENED event, and a REOPENED_BY_COMPLAINANT flag when it is
    /// for review; intake hears the reopening with the new priority.
    async fn reopen(
        &self,
        mut change: JobChange,
        reopening: Reopening,
    ) -> Result<dispatch::Job, Failure> {
        change.check(Transition::Reopen)?;
        let job_id = change.job.job_id;
        let now = change.now;
        let priority = if reopening.raise_priority {
            accountability::raised(change.job.priority)
        } else {
            change.job.priority
        };
        let reopen_count = change.job.reopen_count + 1;
        // back in the queue as a fresh job: the last visit and closure no
        // longer count (the timeline keeps them)
        sqlx::query(
            "UPDATE jobs SET state = 'QUEUED', unit_id = NULL, queued_at = $2, priority = $3, priority_rank = $4, \
                reopen_count = $5, assigned_at = NULL, acknowledged_at = NULL, en_route_at = NULL, \
                on_scene_at = NULL, on_scene_latitude = NULL, on_scene_longitude = NULL, closed_at = NULL, \
                closed_by = NULL, resolution_code = '', resolution_notes = '', summons_number = '', updated_at = $2 \
             WHERE job_id = $1",
        )
        .bind(job_id)
        .bind(now)
        .bind(priority_name(priority))
        .bind(priority as i16)
        .bind(reopen_count)
        .execute(&mut *change.tx)
        .await
        .map_err(Failure::from)?;
        let for_review = reopening.for_review;
        let event = NewEvent {
            event_type: EventType::Reopened,
            actor: reopening.actor,
            occurred_at: now,
            position: None,
            unit_id: None,
            reason: reopening.reason,
        };
        // the flag says why the job is reopened, so it comes first and the
        // reopening stays the job's latest event
        if for_review {
            flags::raise(
                &mut change.tx,
                job_id,
                FlagKind::ReopenedByComplainant,
                "reopened: the complainant says the problem was not fixed",
                &format!("reopened_by_complainant:{reopen_count}"),
                now,
            )
            .await
            .map_err(Failure::from)?;
        }
        let sequence = events::append(&mut change.tx, job_id, &event)
            .await
            .map_err(Failure::from)?;
        // intake hears the new priority with the reopening
        let update = StatusUpdate {
            sr_id: change.job.sr_id.to_string(),
            status: ServiceRequestStatus::Reopened as i32,
            occurred_at: Some(to_timestamp(now)),
            source: "dispatch".into(),
            message: format!(
                "reopened and back in the dispatch queue of precinct {}",
                change.job.precinct
            ),
            priority: priority as i32,
            transition_key: format!("dispatch:reopened:{reopen_count}"),
            dispatch_sequence: sequence,
            ..Default::default()
        };
        tell_intake_update(&mut change.tx, &update).await?;
        tracing::info!(%job_id, reopen_count, priority = priority_name(priority), for_review, "job reopened");
        let job = self.finish(change).await?;
        self.try_auto_assign_job(job_id).await;
        Ok(job)
    }

    pub async fn approve_reroute(
        &self,
        request: dispatch::ApproveRerouteRequest,
    ) -> Result<dispatch::ApproveRerouteResponse, Status> {
        let mut v = FieldViolations::new();
        let actor = validate::actor(request.actor.as_ref(), &mut v);
        let job_id = validate::uuid(&request.job_id, "job_id", &mut v);
        let agency = validate::text(&request.agency, "agency", 32, true, &mut v);
        if !agency
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '&' | '.'))
        {
            v.add("agency", "must be an agency code such as \"DOT\"");
        }
        let reason = validate::text(&request.reason, "reason", MAX_REASON_CHARS, true, &mut v);
        if !reason.is_empty() && reason.chars().count() < MIN_REROUTE_REASON_CHARS {
            v.add(
                "reason",
                format!(
                    "at least {MIN_REROUTE_REASON_CHARS} characters: say why this is not police work"
                ),
            );
        }
        v.into_result()?;
        validate::role(
            &actor,
            &[Role::Supervisor],
            "only a supervisor approves re-routing a job to another agency",
        )?;

        let mut change = self.begin(job_id).await?;
        change.check(Transition::Reroute)?;
        let freed = change.free_unit().await?;
        let now = change.now;
        sqlx::query(
            "UPDATE jobs SET state = 'REROUTED', rerouted_to = $2, unit_id = NULL, updated_at = $3 WHERE job_id = $1",
        )
        .bind(job_id)
        .bind(&agency)
        .bind(now)
        .execute(&mut *change.tx)
        .await
        .map_err(Failure::from)?;
        let event = NewEvent {
            event_type: EventType::RerouteApproved,
            actor,
            occurred_at: now,
            position: None,
            unit_id: freed,
            reason: format!("to {agency}: {reason}"),
        };
        let sequence = events::append(&mut change.tx, job_id, &event)
            .await
            .map_err(Failure::from)?;
        let update = StatusUpdate {
            sr_id: change.job.sr_id.to_string(),
            status: ServiceRequestStatus::Referred as i32,
            occurred_at: Some(to_timestamp(now)),
            source: "dispatch".into(),
            message: format!("referred to {agency}"),
            agency: agency.clone(),
            transition_key: "dispatch:referred".into(),
            dispatch_sequence: sequence,
            ..Default::default()
        };
        tell_intake_update(&mut change.tx, &update).await?;
        tracing::info!(%job_id, %agency, "job re-routed to another agency");
        let job = self.finish(change).await?;
        if let Some(unit_id) = freed {
            self.try_auto_assign_unit(unit_id).await;
        }
        Ok(dispatch::ApproveRerouteResponse { job: Some(job) })
    }

    /// Acknowledge, en route, on scene: the assigned unit's officers (or the
    /// service itself) move the job one step along its path.
    async fn progress(
        &self,
        step: Progress,
        actor: Option<&dispatch::Actor>,
        job_id: &str,
        position: Option<&dispatch311_proto::common::v1::GeoPoint>,
    ) -> Result<dispatch::Job, Status> {
        let mut v = FieldViolations::new();
        let actor = validate::actor(actor, &mut v);
        let job_id = validate::uuid(job_id, "job_id", &mut v);
        let position = if step == Progress::OnScene {
            Some(validate::required_position(
                position,
                "position",
                "where the unit is on arrival",
                &mut v,
            ))
        } else {
            validate::position(position, "position", &mut v)
        };
        v.into_result()?;
        validate::role(
            &actor,
            &[Role::Officer, Role::System],
            &format!(
                "only an officer of the assigned unit may {}",
                step.transition().verb()
            ),
        )?;

        let mut change = self.begin(job_id).await?;
        change.check(step.transition())?;
        let unit = change.lock_assigned_unit().await?;
        if actor.role == Role::Officer {
            require_crew(&actor, Some(&unit))?;
        }
        let now = change.now;
        let (latitude, longitude) = position.unzip();
        let sql = match step {
            Progress::Acknowledge => {
                "UPDATE jobs SET state = 'ACKNOWLEDGED', acknowledged_at = $2, updated_at = $2 WHERE job_id = $1"
            }
            Progress::EnRoute => {
                "UPDATE jobs SET state = 'EN_ROUTE', en_route_at = $2, updated_at = $2 WHERE job_id = $1"
            }
            Progress::OnScene => {
                "UPDATE jobs SET state = 'ON_SCENE', on_scene_at = $2, on_scene_latitude = $3, \
                    on_scene_longitude = $4, updated_at = $2 WHERE job_id = $1"
            }
        };
        let mut update = sqlx::query(sql).bind(job_id).bind(now);
        if step == Progress::OnScene {
            update = update.bind(latitude).bind(longitude);
        }
        update
            .execute(&mut *change.tx)
            .await
            .map_err(Failure::from)?;
        if let Some(position) = position {
            units::set_position(&mut change.tx, unit.unit_id, position, now)
                .await
                .map_err(Failure::from)?;
        }
        let unit_status = unit_status_for(step.state()).unwrap_or(unit.status);
        units::follow(&mut change.tx, &unit, job_id, unit_status, now)
            .await
            .map_err(Failure::from)?;
        let event = NewEvent {
            event_type: step.event(),
            actor,
            occurred_at: now,
            position,
            unit_id: Some(unit.unit_id),
            reason: String::new(),
        };
        let public = Public {
            status: step.public_status(),
            message: step.public_message().into(),
            transition_key: format!("dispatch:{}:{}", step.key(), change.job.assignment_number),
            resolution: None,
        };
        change.record(event, Some(public)).await?;
        tracing::info!(%job_id, unit_id = %unit.unit_id, state = step.key(), "job moved on");
        Ok(self.finish(change).await?)
    }

    /// Gives a queued job of a precinct with auto-assignment on to the
    /// nearest available unit, as the service. Returns the unit, if one was
    /// assigned. Harmless to repeat: only a queued job is assigned.
    pub async fn auto_assign_job(&self, job_id: Uuid) -> Result<Option<Uuid>, Failure> {
        // most precincts assign by hand: find out without a transaction or a lock
        let wanted: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM jobs JOIN precinct_settings USING (precinct) \
                WHERE job_id = $1 AND state = 'QUEUED' AND auto_assign)",
        )
        .bind(job_id)
        .fetch_one(self.store.pool())
        .await?;
        if !wanted {
            return Ok(None);
        }
        let mut change = self.begin(job_id).await?;
        if change.job.state != JobState::Queued
            || !units::auto_assign_on(&mut change.tx, &change.job.precinct).await?
        {
            return Ok(None);
        }
        let Some(location) = change.job.location else {
            return Ok(None);
        };
        let candidates =
            units::available_near(&mut change.tx, &change.job.precinct, location).await?;
        for (candidate, distance) in candidates {
            // the candidate may have taken other work since it was listed
            let Some(unit) = units::lock_unit(&mut change.tx, candidate.unit_id).await? else {
                continue;
            };
            if why_cannot_take(&unit, &change.job).is_some() {
                continue;
            }
            let reason = format!("auto-assigned: nearest available unit, {distance:.0} m away");
            self.apply_assignment(&mut change, &ActorRef::system(), &unit, None, &reason)
                .await?;
            change.tx.commit().await?;
            self.relay_wakeup.notify_one();
            tracing::info!(%job_id, unit_id = %unit.unit_id, distance_m = distance.round(), "job auto-assigned");
            return Ok(Some(unit.unit_id));
        }
        Ok(None)
    }

    /// Gives a unit that became available the precinct's most urgent, oldest
    /// queued job, when its precinct has auto-assignment on. Returns the job,
    /// if one was assigned.
    pub async fn auto_assign_unit(&self, unit_id: Uuid) -> Result<Option<Uuid>, Failure> {
        let mut tx = self.store.pool().begin().await?;
        let Some(seen) = units::read_unit(&mut tx, unit_id).await? else {
            return Ok(None);
        };
        if seen.status != dispatch::UnitStatus::Available
            || seen.current_job_id.is_some()
            || !units::auto_assign_on(&mut tx, &seen.precinct).await?
        {
            return Ok(None);
        }
        // a job being changed right now is skipped rather than waited for
        let job_id: Option<Uuid> = sqlx::query_scalar(
            "SELECT job_id FROM jobs WHERE precinct = $1 AND state = 'QUEUED' \
             ORDER BY priority_rank DESC, queued_at, job_id LIMIT 1 FOR UPDATE SKIP LOCKED",
        )
        .bind(&seen.precinct)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(job_id) = job_id else {
            return Ok(None);
        };
        let Some(job) = lock_job(&mut tx, job_id).await? else {
            return Ok(None);
        };
        let Some(unit) = units::lock_unit(&mut tx, unit_id).await? else {
            return Ok(None);
        };
        if why_cannot_take(&unit, &job).is_some() {
            return Ok(None);
        }
        let mut change = JobChange {
            tx,
            job,
            now: now_micros(),
        };
        self.apply_assignment(
            &mut change,
            &ActorRef::system(),
            &unit,
            None,
            "auto-assigned: the oldest most urgent job of the precinct queue",
        )
        .await?;
        change.tx.commit().await?;
        self.relay_wakeup.notify_one();
        tracing::info!(%job_id, %unit_id, "available unit auto-assigned");
        Ok(Some(job_id))
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

    /// The job, with its flags, as the RPCs answer it.
    pub async fn view(&self, job_id: Uuid) -> Result<dispatch::Job, Failure> {
        let job = self
            .store
            .get(&JobKey::Id(job_id))
            .await?
            .ok_or_else(|| not_found("dispatch job", job_id.to_string()))?;
        Ok(job)
    }

    /// Starts a change: a transaction holding the job's row lock.
    async fn begin(&self, job_id: Uuid) -> Result<JobChange, Failure> {
        let mut tx = self.store.pool().begin().await?;
        let job = lock_job(&mut tx, job_id)
            .await?
            .ok_or_else(|| not_found("dispatch job", job_id.to_string()))?;
        set_on_current(attributes::SR_NUMBER, job.sr_number.clone());
        set_on_current(attributes::PRECINCT, job.precinct.clone());
        Ok(JobChange {
            tx,
            job,
            now: now_micros(),
        })
    }

    /// Commits a change, wakes the relay for what it told the other
    /// services, and answers with the job as it is now.
    async fn finish(&self, change: JobChange) -> Result<dispatch::Job, Failure> {
        let job_id = change.job.job_id;
        change.tx.commit().await?;
        self.relay_wakeup.notify_one();
        self.view(job_id).await
    }

    /// The job goes to `unit` (locked, and able to take it); `previous`
    /// (locked) loses it. Schedules the acknowledgement timer of this
    /// assignment in the same transaction.
    async fn apply_assignment(
        &self,
        change: &mut JobChange,
        actor: &ActorRef,
        unit: &UnitRow,
        previous: Option<&UnitRow>,
        reason: &str,
    ) -> Result<(), Failure> {
        let job_id = change.job.job_id;
        let now = change.now;
        let assignment_number = change.job.assignment_number + 1;
        // a new assignment starts over: what the previous unit did no longer counts
        sqlx::query(
            "UPDATE jobs SET state = 'ASSIGNED', unit_id = $2, assignment_number = $3, assigned_at = $4, \
                acknowledged_at = NULL, en_route_at = NULL, on_scene_at = NULL, on_scene_latitude = NULL, \
                on_scene_longitude = NULL, updated_at = $4 \
             WHERE job_id = $1",
        )
        .bind(job_id)
        .bind(unit.unit_id)
        .bind(assignment_number)
        .bind(now)
        .execute(&mut *change.tx)
        .await?;
        if let Some(previous) = previous {
            units::release(
                &mut change.tx,
                previous,
                job_id,
                AssignmentChange::Unassigned,
                now,
            )
            .await?;
        }
        units::take(&mut change.tx, unit, job_id, now).await?;
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
                change.job.precinct
            ),
            transition_key: format!("dispatch:assigned:{assignment_number}"),
            resolution: None,
        };
        change.record(event, Some(public)).await?;
        let timer = DispatchTimer {
            job_id: job_id.to_string(),
            check: "ack_timeout".into(),
            assignment_number,
        };
        let due = now
            + chrono::Duration::from_std(self.rules.ack_timeout).unwrap_or(chrono::Duration::MAX);
        outputs::schedule_timer(&mut change.tx, &change.job.sr_id.to_string(), &timer, due).await?;
        tracing::info!(%job_id, unit_id = %unit.unit_id, assignment_number, reassigned = previous.is_some(), "job assigned");
        Ok(())
    }
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
) -> Result<(), Failure> {
    Transition::Requeue
        .check(job.state)
        .map_err(|refusal| refusal.for_job(job.job_id))?;
    let at = event.occurred_at;
    sqlx::query(
        "UPDATE jobs SET state = 'QUEUED', unit_id = NULL, assigned_at = NULL, acknowledged_at = NULL, \
            en_route_at = NULL, on_scene_at = NULL, on_scene_latitude = NULL, on_scene_longitude = NULL, \
            updated_at = $2 \
         WHERE job_id = $1",
    )
    .bind(job.job_id)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    units::release(conn, unit, job.job_id, AssignmentChange::Unassigned, at).await?;
    let sequence = events::append(conn, job.job_id, &event).await?;
    outputs::tell_intake(
        conn,
        PublicChange {
            sr_id: &job.sr_id.to_string(),
            status: ServiceRequestStatus::Queued,
            message: public_message.to_string(),
            transition_key: format!("dispatch:requeued:{}", job.assignment_number),
            sequence,
            at,
            resolution: None,
        },
    )
    .await?;
    Ok(())
}

/// A change in progress: a transaction holding the job's row lock, the job
/// as read under it, and the time of the change.
struct JobChange {
    tx: Transaction<'static, Postgres>,
    job: JobRow,
    now: DateTime<Utc>,
}

/// What intake is told about a transition; the sequence is the event's.
struct Public {
    status: ServiceRequestStatus,
    message: String,
    transition_key: String,
    resolution: Option<(ResolutionCode, String)>,
}

impl JobChange {
    fn check(&self, transition: Transition) -> Result<(), Failure> {
        transition
            .check(self.job.state)
            .map_err(|refusal| Failure::Refused(refusal.for_job(self.job.job_id)))
    }

    /// Appends `event` and, when the public status changes, tells intake
    /// with the event's sequence.
    async fn record(&mut self, event: NewEvent, public: Option<Public>) -> Result<i64, Failure> {
        let sequence = events::append(&mut self.tx, self.job.job_id, &event).await?;
        if let Some(public) = public {
            outputs::tell_intake(
                &mut self.tx,
                PublicChange {
                    sr_id: &self.job.sr_id.to_string(),
                    status: public.status,
                    message: public.message,
                    transition_key: public.transition_key,
                    sequence,
                    at: self.now,
                    resolution: public.resolution,
                },
            )
            .await?;
        }
        Ok(sequence)
    }

    /// Locks the unit working the job (the job is assigned or further on).
    async fn lock_assigned_unit(&mut self) -> Result<UnitRow, Failure> {
        let Some(unit_id) = self.job.unit_id else {
            return Err(Failure::refused(
                "NO_UNIT",
                self.job.job_id,
                "the job has no assigned unit",
            ));
        };
        units::lock_unit(&mut self.tx, unit_id)
            .await?
            .ok_or_else(|| Failure::from(not_found("unit", unit_id.to_string())))
    }

    /// Frees the job's unit, if it has one (cancelled, re-routed): the unit's
    /// feed says UNASSIGNED. Returns the unit.
    async fn free_unit(&mut self) -> Result<Option<Uuid>, Failure> {
        let Some(unit_id) = self.job.unit_id else {
            return Ok(None);
        };
        if let Some(unit) = units::lock_unit(&mut self.tx, unit_id).await? {
            units::release(
                &mut self.tx,
                &unit,
                self.job.job_id,
                AssignmentChange::Unassigned,
                self.now,
            )
            .await?;
        }
        Ok(Some(unit_id))
    }
}

/// The three steps of a unit on its way: each one state further.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    Acknowledge,
    EnRoute,
    OnScene,
}

impl Progress {
    fn transition(self) -> Transition {
        match self {
            Self::Acknowledge => Transition::Acknowledge,
            Self::EnRoute => Transition::EnRoute,
            Self::OnScene => Transition::OnScene,
        }
    }

    fn state(self) -> JobState {
        match self {
            Self::Acknowledge => JobState::Acknowledged,
            Self::EnRoute => JobState::EnRoute,
            Self::OnScene => JobState::OnScene,
        }
    }

    fn event(self) -> EventType {
        match self {
            Self::Acknowledge => EventType::Acknowledged,
            Self::EnRoute => EventType::EnRoute,
            Self::OnScene => EventType::OnScene,
        }
    }

    fn public_status(self) -> ServiceRequestStatus {
        match self {
            Self::Acknowledge => ServiceRequestStatus::Acknowledged,
            Self::EnRoute => ServiceRequestStatus::EnRoute,
            Self::OnScene => ServiceRequestStatus::OnScene,
        }
    }

    fn public_message(self) -> &'static str {
        match self {
            Self::Acknowledge => "the assigned unit acknowledged the job",
            Self::EnRoute => "a unit is on its way",
            Self::OnScene => "a unit arrived at the location",
        }
    }

    /// The transition-key word, e.g. `dispatch:en_route:2`.
    fn key(self) -> &'static str {
        match self {
            Self::Acknowledge => "acknowledged",
            Self::EnRoute => "en_route",
            Self::OnScene => "on_scene",
        }
    }
}

/// PERMISSION_DENIED unless the officer works `unit`.
fn require_crew(actor: &ActorRef, unit: Option<&UnitRow>) -> Result<(), Failure> {
    match unit {
        Some(unit) if unit.has_officer(&actor.id) => Ok(()),
        Some(unit) => Err(permission_denied(format!(
            "officer {} does not work unit {}, which is assigned to this job",
            actor.id, unit.call_sign
        ))
        .into()),
        None => Err(permission_denied(format!(
            "officer {} does not work a unit assigned to this job",
            actor.id
        ))
        .into()),
    }
}

/// The time of a change, to the microsecond PostgreSQL keeps: what the job
/// row stores and what the events and messages say are the same instant.
pub(crate) fn now_micros() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Whether `actor_id` opened the job's photos since it was last reopened.
async fn viewed_evidence(
    conn: &mut PgConnection,
    job_id: Uuid,
    actor_id: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM job_events WHERE job_id = $1 AND event_type = 'EVIDENCE_VIEWED' \
            AND actor = $2 AND sequence > coalesce((SELECT max(sequence) FROM job_events \
                WHERE job_id = $1 AND event_type = 'REOPENED'), 0))",
    )
    .bind(job_id)
    .bind(actor_id)
    .fetch_one(conn)
    .await
}

/// How many jobs `actor_id` closed since `since` (every closure counts, also
/// of jobs reopened since).
/// The job a duplicate closure names, read without locking it (its place
/// and type do not change).
async fn duplicate_target(
    conn: &mut PgConnection,
    sr_number: &str,
) -> Result<Option<DuplicateTarget>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT job_id, complaint_type, precinct, latitude, longitude FROM jobs WHERE sr_number = $1",
    )
    .bind(sr_number)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|row| {
        use sqlx::Row as _;
        let latitude: Option<f64> = row.get("latitude");
        let longitude: Option<f64> = row.get("longitude");
        DuplicateTarget {
            job_id: row.get("job_id"),
            sr_number: sr_number.to_owned(),
            complaint_type: row.get("complaint_type"),
            precinct: row.get("precinct"),
            location: latitude.zip(longitude),
        }
    }))
}

async fn closures_by(
    conn: &mut PgConnection,
    actor_id: &str,
    since: DateTime<Utc>,
) -> Result<u32, sqlx::Error> {
    let count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM job_events WHERE event_type = 'CLOSED' AND actor = $1 AND occurred_at > $2",
    )
    .bind(actor_id)
    .bind(since)
    .fetch_one(conn)
    .await?;
    Ok(u32::try_from(count).unwrap_or(u32::MAX))
}

/// Tells intake a status change that carries more than `outputs::tell_intake`
/// takes (the agency of a referral, the priority of a reopened job).
async fn tell_intake_update(conn: &mut PgConnection, update: &StatusUpdate) -> Result<(), Failure> {
    outbox::enqueue(
        conn,
        queues::STATUS,
        kinds::STATUS_UPDATE,
        &update.sr_id,
        update,
    )
    .await?;
    Ok(())
}

/// Why a lifecycle call failed: a refusal the caller gets as is, or a
/// storage failure (UNAVAILABLE when PostgreSQL cannot be reached).
/// The stored photo's type, from its first bytes (intake only stores JPEG and PNG).
fn sniffed_type(content: &[u8]) -> &'static str {
    if content.starts_with(b"\x89PNG") {
        "image/png"
    } else {
        "image/jpeg"
    }
}

#[derive(Debug)]
pub enum Failure {
    Refused(Status),
    Database(sqlx::Error),
    Outbox(QueueError),
}

impl Failure {
    fn refused(rule: &'static str, job_id: Uuid, description: &str) -> Self {
        Self::Refused(failed_precondition(
            rule,
            format!("jobs/{job_id}"),
            description,
        ))
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(status) => write!(f, "refused: {}", status.message()),
            Self::Database(e) => write!(f, "database: {e}"),
            Self::Outbox(e) => write!(f, "outbox: {e}"),
        }
    }
}

impl Failure {
    /// Whether retrying later may succeed (PostgreSQL could not be reached).
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Database(e) | Self::Outbox(QueueError::Database(e)) => {
                dispatch311_db::is_unavailable(e)
            }
            _ => false,
        }
    }
}

impl From<Status> for Failure {
    fn from(status: Status) -> Self {
        Self::Refused(status)
    }
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        Self::Database(e)
    }
}

impl From<QueueError> for Failure {
    fn from(e: QueueError) -> Self {
        Self::Outbox(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Database(e) => Self::Database(e),
            StoreError::Queue(e) => Self::Outbox(e),
            StoreError::InvalidJob(reason) => Self::Refused(Status::internal(reason)),
            // only the queueing of routed jobs is batched; it stops with the process
            StoreError::Batch(e) => Self::Refused(Status::unavailable(e.to_string())),
        }
    }
}

impl From<Failure> for Status {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Refused(status) => status,
            Failure::Database(e) | Failure::Outbox(QueueError::Database(e))
                if dispatch311_db::is_unavailable(&e) =>
            {
                unavailable("postgresql", &e)
            }
            Failure::Database(e) => internal(&e),
            Failure::Outbox(e) => internal(&e),
        }
    }
}
