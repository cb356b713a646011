//! The job transitions' RPCs: each request is checked here (fields, ranges,
//! the caller's role) and becomes a command the lifecycle carries out; its
//! domain error becomes a status once (`From<JobError> for Status`).

use dispatch311_domain::SrNumber;
use dispatch311_grpc::status::FieldViolations;
use dispatch311_proto::{
    common::v1::ResolutionCode,
    dispatch::v1::{self as dispatch, Role},
};
use tonic::Status;

use super::DispatchApi;
use super::validate;
use crate::{
    jobs::accountability,
    jobs::commands::{Advance, AskComplainant, Assign, Cancel, Close, Reroute, Step, ViewPhoto},
    jobs::lifecycle::{MAX_NOTES_CHARS, Reopening},
};

const MAX_REASON_CHARS: usize = 1000;
const MAX_MESSAGE_CHARS: usize = 1000;
const MIN_REROUTE_REASON_CHARS: usize = 10;
/// An unlinking says why the reports are two incidents after all.
const MIN_UNLINK_REASON_CHARS: usize = 20;
const VIEWERS_ONLY: &str =
    "only an officer of the assigned unit or a supervisor views a job's photos";

impl DispatchApi {
    pub(super) async fn assign_job(
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
        let job = self
            .lifecycle
            .assign(Assign {
                actor,
                job_id,
                unit_id,
                reason,
            })
            .await?;
        Ok(dispatch::AssignJobResponse { job: Some(job) })
    }

    pub(super) async fn record_evidence_viewed(
        &self,
        request: dispatch::RecordEvidenceViewedRequest,
    ) -> Result<dispatch::RecordEvidenceViewedResponse, Status> {
        let mut v = FieldViolations::new();
        let actor = validate::actor(request.actor.as_ref(), &mut v);
        let job_id = validate::uuid(&request.job_id, "job_id", &mut v);
        v.into_result()?;
        validate::role(&actor, &[Role::Officer, Role::Supervisor], VIEWERS_ONLY)?;
        let job = self
            .lifecycle
            .record_evidence_viewed(ViewPhoto {
                actor,
                job_id,
                photo_index: request.photo_index,
            })
            .await?;
        Ok(dispatch::RecordEvidenceViewedResponse { job: Some(job) })
    }

    pub(super) async fn get_job_photo(
        &self,
        request: dispatch::GetJobPhotoRequest,
    ) -> Result<dispatch::GetJobPhotoResponse, Status> {
        let mut v = FieldViolations::new();
        let actor = validate::actor(request.actor.as_ref(), &mut v);
        let job_id = validate::uuid(&request.job_id, "job_id", &mut v);
        v.into_result()?;
        validate::role(&actor, &[Role::Officer, Role::Supervisor], VIEWERS_ONLY)?;
        let photo = self
            .lifecycle
            .get_job_photo(ViewPhoto {
                actor,
                job_id,
                photo_index: request.photo_index,
            })
            .await?;
        Ok(dispatch::GetJobPhotoResponse {
            content_type: photo.content_type.to_string(),
            content: photo.content,
            job: Some(photo.job),
        })
    }

    pub(super) async fn relay_message_to_complainant(
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
        validate::role(
            &actor,
            &[Role::Officer, Role::Supervisor],
            "only an officer of the assigned unit or a supervisor writes to the complainant",
        )?;
        let (message_id, job) = self
            .lifecycle
            .relay_message_to_complainant(AskComplainant {
                actor,
                job_id,
                text,
            })
            .await?;
        Ok(dispatch::RelayMessageToComplainantResponse {
            message_id: message_id.to_string(),
            job: Some(job),
        })
    }

    pub(super) async fn close_job(
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
        let job = self
            .lifecycle
            .close_job(Close {
                actor,
                job_id,
                code,
                summons_number,
                notes,
                position,
                duplicate_of,
            })
            .await?;
        Ok(dispatch::CloseJobResponse { job: Some(job) })
    }

    pub(super) async fn cancel_job(
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
        let job = self
            .lifecycle
            .cancel_job(Cancel {
                actor,
                job_id,
                reason,
            })
            .await?;
        Ok(dispatch::CancelJobResponse { job: Some(job) })
    }

    pub(super) async fn approve_reroute(
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
        let job = self
            .lifecycle
            .approve_reroute(Reroute {
                actor,
                job_id,
                agency,
                reason,
            })
            .await?;
        Ok(dispatch::ApproveRerouteResponse { job: Some(job) })
    }

    pub(super) async fn unlink_report(
        &self,
        request: dispatch::UnlinkReportRequest,
    ) -> Result<dispatch::UnlinkReportResponse, Status> {
        let mut v = FieldViolations::new();
        let actor = validate::actor(request.actor.as_ref(), &mut v);
        let sr_number = validate::text(&request.sr_number, "sr_number", 32, true, &mut v);
        let reason = validate::text(&request.reason, "reason", MAX_REASON_CHARS, true, &mut v);
        if !reason.is_empty() && reason.chars().count() < MIN_UNLINK_REASON_CHARS {
            v.add(
                "reason",
                format!(
                    "at least {MIN_UNLINK_REASON_CHARS} characters: say why this is another incident"
                ),
            );
        }
        v.into_result()?;
        validate::role(
            &actor,
            &[Role::Supervisor],
            "only a supervisor unlinks a report from the job of its incident",
        )?;
        let (own, linked) = crate::jobs::duplicates::unlink_report(
            &self.lifecycle.store,
            crate::jobs::duplicates::Unlink {
                actor,
                sr_number,
                reason,
            },
        )
        .await?;
        Ok(dispatch::UnlinkReportResponse {
            job: Some(self.lifecycle.view(own).await?),
            linked_job: Some(self.lifecycle.view(linked).await?),
        })
    }

    pub(super) async fn reopen_job(
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
        let job = self.lifecycle.reopen_job(job_id, reopening).await?;
        Ok(dispatch::ReopenJobResponse { job: Some(job) })
    }

    pub(super) async fn acknowledge_job(
        &self,
        request: dispatch::AcknowledgeJobRequest,
    ) -> Result<dispatch::AcknowledgeJobResponse, Status> {
        let job = self
            .progress(
                Step::Acknowledge,
                request.actor.as_ref(),
                &request.job_id,
                request.position.as_ref(),
            )
            .await?;
        Ok(dispatch::AcknowledgeJobResponse { job: Some(job) })
    }

    pub(super) async fn report_en_route(
        &self,
        request: dispatch::ReportEnRouteRequest,
    ) -> Result<dispatch::ReportEnRouteResponse, Status> {
        let job = self
            .progress(
                Step::EnRoute,
                request.actor.as_ref(),
                &request.job_id,
                request.position.as_ref(),
            )
            .await?;
        Ok(dispatch::ReportEnRouteResponse { job: Some(job) })
    }

    pub(super) async fn report_on_scene(
        &self,
        request: dispatch::ReportOnSceneRequest,
    ) -> Result<dispatch::ReportOnSceneResponse, Status> {
        let job = self
            .progress(
                Step::OnScene,
                request.actor.as_ref(),
                &request.job_id,
                request.position.as_ref(),
            )
            .await?;
        Ok(dispatch::ReportOnSceneResponse { job: Some(job) })
    }

    /// Acknowledge, en route, on scene: checked here, moved on by the lifecycle.
    async fn progress(
        &self,
        step: Step,
        actor: Option<&dispatch::Actor>,
        job_id: &str,
        position: Option<&dispatch311_proto::common::v1::GeoPoint>,
    ) -> Result<dispatch::Job, Status> {
        let mut v = FieldViolations::new();
        let actor = validate::actor(actor, &mut v);
        let job_id = validate::uuid(job_id, "job_id", &mut v);
        let position = if step == Step::OnScene {
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
        Ok(self
            .lifecycle
            .advance(Advance {
                step,
                actor,
                job_id,
                position,
            })
            .await?)
    }
}
