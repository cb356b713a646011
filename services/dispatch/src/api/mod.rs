//! The gRPC adapter of the dispatch service.

mod jobs;
mod repeat_locations;
mod slow_jobs;
pub mod supervision;
mod units;
mod validate;
pub mod watch;

use dispatch311_auth::Role as AuthRole;
use dispatch311_domain::SrNumber;
use dispatch311_grpc::{
    pagination,
    status::{self as grpc_status, FieldViolations},
};
use dispatch311_proto::dispatch::v1 as dispatch;
use dispatch311_proto::dispatch::v1::{
    GetJobRequest, GetJobResponse, ListQueueRequest, ListQueueResponse,
    dispatch_service_server::DispatchService, get_job_request::Key,
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use self::supervision::Supervision;
use self::watch::Watch;
use crate::{
    jobs::JobError,
    jobs::lifecycle::Lifecycle,
    store::{JobKey, QueuePosition, Store, StoreError},
    units::Units,
};

/// The adapter: queue views here; each group of RPCs delegates to the
/// module that owns its rules.
pub struct DispatchApi {
    pub store: Store,
    pub lifecycle: Lifecycle,
    pub units: Units,
    pub supervision: Supervision,
    pub watch: Watch,
}

#[tonic::async_trait]
impl DispatchService for DispatchApi {
    async fn list_queue(
        &self,
        request: Request<ListQueueRequest>,
    ) -> Result<Response<ListQueueResponse>, Status> {
        let request = request.into_inner();
        let mut v = FieldViolations::new();
        let precinct = request.precinct.trim().to_string();
        if precinct.is_empty() {
            v.add("precinct", "required, e.g. \"14\"");
        } else if precinct.len() > 16 || !precinct.bytes().all(|b| b.is_ascii_alphanumeric()) {
            v.add("precinct", "must be a precinct number such as \"14\"");
        }
        let limit = pagination::page_size(request.page_size, "page_size", &mut v);
        let after = pagination::decode_token(&request.page_token, "page_token", &mut v).and_then(
            |cursor| {
                let position = QueuePosition::decode(&cursor);
                if position.is_none() {
                    v.add("page_token", "not a token from this list");
                }
                position
            },
        );
        v.into_result()?;

        let (mut jobs, total_queued) = self
            .store
            .queue(&precinct, after, limit + 1)
            .await
            .map_err(Status::from)?;
        let next_page_token = if jobs.len() > limit {
            jobs.truncate(limit);
            jobs.last()
                .and_then(QueuePosition::of)
                .map(|p| pagination::encode_token(&p.encode()))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(ListQueueResponse {
            jobs,
            next_page_token,
            total_queued,
        }))
    }

    async fn get_job(
        &self,
        request: Request<GetJobRequest>,
    ) -> Result<Response<GetJobResponse>, Status> {
        let mut v = FieldViolations::new();
        let (key, shown) = match request.into_inner().key {
            Some(Key::JobId(id)) => match Uuid::parse_str(id.trim()) {
                Ok(parsed) => (Some(JobKey::Id(parsed)), id),
                Err(_) => {
                    v.add("job_id", "must be a UUID");
                    (None, id)
                }
            },
            Some(Key::SrNumber(number)) => match number.parse::<SrNumber>() {
                Ok(parsed) => (Some(JobKey::SrNumber(parsed.to_string())), number),
                Err(e) => {
                    v.add("sr_number", e.to_string());
                    (None, number)
                }
            },
            None => {
                v.add("key", "give job_id or sr_number");
                (None, String::new())
            }
        };
        v.into_result()?;
        let key = key.expect("a key without violations");
        match self.store.get(&key).await.map_err(Status::from)? {
            Some(job) => Ok(Response::new(GetJobResponse { job: Some(job) })),
            None => Err(grpc_status::not_found("dispatch job", &shown)),
        }
    }

    async fn list_jobs(
        &self,
        request: Request<dispatch::ListJobsRequest>,
    ) -> Result<Response<dispatch::ListJobsResponse>, Status> {
        self.supervision
            .list_jobs(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_job_timeline(
        &self,
        request: Request<dispatch::GetJobTimelineRequest>,
    ) -> Result<Response<dispatch::GetJobTimelineResponse>, Status> {
        self.supervision
            .get_job_timeline(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn verify_job_timeline(
        &self,
        request: Request<dispatch::VerifyJobTimelineRequest>,
    ) -> Result<Response<dispatch::VerifyJobTimelineResponse>, Status> {
        self.supervision
            .verify_job_timeline(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_event_log(
        &self,
        request: Request<dispatch::ListEventLogRequest>,
    ) -> Result<Response<dispatch::ListEventLogResponse>, Status> {
        self.supervision
            .list_event_log(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_review_items(
        &self,
        request: Request<dispatch::ListReviewItemsRequest>,
    ) -> Result<Response<dispatch::ListReviewItemsResponse>, Status> {
        self.supervision
            .list_review_items(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_slow_jobs(
        &self,
        request: Request<dispatch::ListSlowJobsRequest>,
    ) -> Result<Response<dispatch::ListSlowJobsResponse>, Status> {
        self.supervision
            .list_slow_jobs(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_repeat_locations(
        &self,
        request: Request<dispatch::ListRepeatLocationsRequest>,
    ) -> Result<Response<dispatch::ListRepeatLocationsResponse>, Status> {
        self.supervision
            .list_repeat_locations(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_precinct_stats(
        &self,
        request: Request<dispatch::GetPrecinctStatsRequest>,
    ) -> Result<Response<dispatch::GetPrecinctStatsResponse>, Status> {
        self.supervision
            .get_precinct_stats(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn register_unit(
        &self,
        request: Request<dispatch::RegisterUnitRequest>,
    ) -> Result<Response<dispatch::RegisterUnitResponse>, Status> {
        self.register_unit(as_caller(request)?)
            .await
            .map(Response::new)
    }

    async fn report_unit_status(
        &self,
        request: Request<dispatch::ReportUnitStatusRequest>,
    ) -> Result<Response<dispatch::ReportUnitStatusResponse>, Status> {
        self.report_unit_status(as_caller(request)?)
            .await
            .map(Response::new)
    }

    async fn list_units(
        &self,
        request: Request<dispatch::ListUnitsRequest>,
    ) -> Result<Response<dispatch::ListUnitsResponse>, Status> {
        self.list_units(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn recommend_units(
        &self,
        request: Request<dispatch::RecommendUnitsRequest>,
    ) -> Result<Response<dispatch::RecommendUnitsResponse>, Status> {
        self.recommend_units(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn set_auto_assign(
        &self,
        request: Request<dispatch::SetAutoAssignRequest>,
    ) -> Result<Response<dispatch::SetAutoAssignResponse>, Status> {
        self.set_auto_assign(as_caller(request)?)
            .await
            .map(Response::new)
    }

    async fn assign_job(
        &self,
        request: Request<dispatch::AssignJobRequest>,
    ) -> Result<Response<dispatch::AssignJobResponse>, Status> {
        self.assign_job(as_caller(request)?)
            .await
            .map(Response::new)
    }

    async fn acknowledge_job(
        &self,
        request: Request<dispatch::AcknowledgeJobRequest>,
    ) -> Result<Response<dispatch::AcknowledgeJobResponse>, Status> {
        self.acknowledge_job(as_caller(request)?)
            .await
            .map(Response::new)
    }

    async fn report_en_route(
        &self,
        request: Request<dispatch::ReportEnRouteRequest>,
    ) -> Result<Response<dispatch::ReportEnRouteResponse>, Status> {
        self.report_en_route(as_caller(request)?)
            .await
            .map(Response::new)
    }

    async fn report_on_scene(
        &self,
        request: Request<dispatch::ReportOnSceneRequest>,
    ) -> Result<Response<dispatch::ReportOnSceneResponse>, Status> {
        self.report_on_scene(as_caller(request)?)
            .await
            .map(Response::new)
    }

    async fn record_evidence_viewed(
        &self,
        request: Request<dispatch::RecordEvidenceViewedRequest>,
    ) -> Result<Response<dispatch::RecordEvidenceViewedResponse>, Status> {
        self.record_evidence_viewed(as_caller(request)?)
            .await
            .map(Response::new)
    }

    async fn get_job_photo(
        &self,
        request: Request<dispatch::GetJobPhotoRequest>,
    ) -> Result<Response<dispatch::GetJobPhotoResponse>, Status> {
        self.get_job_photo(as_caller(request)?)
            .await
            .map(Response::new)
    }

    async fn relay_message_to_complainant(
        &self,
        request: Request<dispatch::RelayMessageToComplainantRequest>,
    ) -> Result<Response<dispatch::RelayMessageToComplainantResponse>, Status> {
        self.relay_message_to_complainant(as_caller(request)?)
            .await
            .map(Response::new)
    }

    async fn close_job(
        &self,
        request: Request<dispatch::CloseJobRequest>,
    ) -> Result<Response<dispatch::CloseJobResponse>, Status> {
        self.close_job(as_caller(request)?).await.map(Response::new)
    }

    async fn cancel_job(
        &self,
        request: Request<dispatch::CancelJobRequest>,
    ) -> Result<Response<dispatch::CancelJobResponse>, Status> {
        self.cancel_job(as_caller(request)?)
            .await
            .map(Response::new)
    }

    async fn reopen_job(
        &self,
        request: Request<dispatch::ReopenJobRequest>,
    ) -> Result<Response<dispatch::ReopenJobResponse>, Status> {
        self.reopen_job(as_caller(request)?)
            .await
            .map(Response::new)
    }

    async fn unlink_report(
        &self,
        request: Request<dispatch::UnlinkReportRequest>,
    ) -> Result<Response<dispatch::UnlinkReportResponse>, Status> {
        self.unlink_report(as_caller(request)?)
            .await
            .map(Response::new)
    }

    async fn approve_reroute(
        &self,
        request: Request<dispatch::ApproveRerouteRequest>,
    ) -> Result<Response<dispatch::ApproveRerouteResponse>, Status> {
        self.approve_reroute(as_caller(request)?)
            .await
            .map(Response::new)
    }

    type WatchAssignmentsStream = watch::AssignmentStream;

    async fn watch_assignments(
        &self,
        request: Request<dispatch::WatchAssignmentsRequest>,
    ) -> Result<Response<Self::WatchAssignmentsStream>, Status> {
        let caller = dispatch311_auth::caller(&request)?;
        let officer = (caller.role == AuthRole::Officer).then_some(caller.subject.as_str());
        self.watch
            .watch_assignments(request.into_inner(), officer)
            .await
            .map(Response::new)
    }
}

/// Requests that name who acts.
trait Acted {
    fn actor_mut(&mut self) -> &mut Option<dispatch::Actor>;
}

macro_rules! acted {
    ($($request:ident),* $(,)?) => {
        $(impl Acted for dispatch::$request {
            fn actor_mut(&mut self) -> &mut Option<dispatch::Actor> {
                &mut self.actor
            }
        })*
    };
}

acted!(
    RegisterUnitRequest,
    ReportUnitStatusRequest,
    SetAutoAssignRequest,
    AssignJobRequest,
    AcknowledgeJobRequest,
    ReportEnRouteRequest,
    ReportOnSceneRequest,
    RecordEvidenceViewedRequest,
    GetJobPhotoRequest,
    RelayMessageToComplainantRequest,
    CloseJobRequest,
    CancelJobRequest,
    ReopenJobRequest,
    ApproveRerouteRequest,
    UnlinkReportRequest,
);

/// The request with its actor set to the verified caller. The token decides
/// who acts: a request may still name its actor (older clients do), but
/// only as the caller; naming anyone else is PERMISSION_DENIED.
fn as_caller<T: Acted>(request: Request<T>) -> Result<T, Status> {
    let caller = dispatch311_auth::caller(&request)?;
    let role = match caller.role {
        AuthRole::Dispatcher => dispatch::Role::Dispatcher,
        AuthRole::Officer => dispatch::Role::Officer,
        AuthRole::Supervisor => dispatch::Role::Supervisor,
        other => {
            return Err(Status::permission_denied(format!(
                "the {other} role does not act in dispatch"
            )));
        }
    };
    let mut message = request.into_inner();
    let actor = message.actor_mut();
    if let Some(named) = actor.as_ref()
        && (named.id.trim() != caller.subject || named.role != role as i32)
    {
        return Err(Status::permission_denied(format!(
            "the actor must be the caller: this token is for {} {:?}",
            caller.role, caller.subject
        )));
    }
    *actor = Some(dispatch::Actor {
        id: caller.subject,
        role: role as i32,
    });
    Ok(message)
}

/// The one place a domain error of dispatch becomes a gRPC status.
impl From<JobError> for Status {
    fn from(e: JobError) -> Self {
        match e {
            JobError::NotFound { what, id } => grpc_status::not_found(what, id),
            JobError::Refused { refusal, subject } => {
                crate::jobs::metrics::refused(refusal.rule);
                grpc_status::failed_precondition(refusal.rule, subject, refusal.description)
            }
            JobError::NotAllowed(reason) => grpc_status::permission_denied(reason),
            JobError::BadArgument { field, description } => {
                grpc_status::invalid_argument(field, description)
            }
            // another change to the same job or unit won every race: the
            // caller retries (ABORTED: the conflict is at this level)
            JobError::Busy(id) => Status::aborted(format!(
                "{id} changed while this change was decided, again and again; try again"
            )),
            JobError::PhotoStore(e) => grpc_status::unavailable("photo store", &e),
            JobError::Store(e) => e.into(),
        }
    }
}

/// The one place a storage error of dispatch becomes a gRPC status.
impl From<StoreError> for Status {
    fn from(e: StoreError) -> Self {
        match e {
            // a change that lost every race to the same job: try again
            StoreError::Conflict => {
                Status::aborted("the job changed while this change was decided; try again")
            }
            e => grpc_status::storage(&e),
        }
    }
}
