//! The gRPC adapter of the dispatch service.

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

use crate::store::{JobKey, QueuePosition, Store, StoreError};

pub struct DispatchApi {
    store: Store,
}

impl DispatchApi {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
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
            .map_err(store_status)?;
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
        match self.store.get(&key).await.map_err(store_status)? {
            Some(job) => Ok(Response::new(GetJobResponse { job: Some(job) })),
            None => Err(grpc_status::not_found("dispatch job", &shown)),
        }
    }

    async fn list_jobs(
        &self,
        _request: Request<dispatch::ListJobsRequest>,
    ) -> Result<Response<dispatch::ListJobsResponse>, Status> {
        Err(Status::unimplemented("list_jobs is being built"))
    }

    async fn get_job_timeline(
        &self,
        _request: Request<dispatch::GetJobTimelineRequest>,
    ) -> Result<Response<dispatch::GetJobTimelineResponse>, Status> {
        Err(Status::unimplemented("get_job_timeline is being built"))
    }

    async fn verify_job_timeline(
        &self,
        _request: Request<dispatch::VerifyJobTimelineRequest>,
    ) -> Result<Response<dispatch::VerifyJobTimelineResponse>, Status> {
        Err(Status::unimplemented("verify_job_timeline is being built"))
    }

    async fn register_unit(
        &self,
        _request: Request<dispatch::RegisterUnitRequest>,
    ) -> Result<Response<dispatch::RegisterUnitResponse>, Status> {
        Err(Status::unimplemented("register_unit is being built"))
    }

    async fn report_unit_status(
        &self,
        _request: Request<dispatch::ReportUnitStatusRequest>,
    ) -> Result<Response<dispatch::ReportUnitStatusResponse>, Status> {
        Err(Status::unimplemented("report_unit_status is being built"))
    }

    async fn list_units(
        &self,
        _request: Request<dispatch::ListUnitsRequest>,
    ) -> Result<Response<dispatch::ListUnitsResponse>, Status> {
        Err(Status::unimplemented("list_units is being built"))
    }

    async fn recommend_units(
        &self,
        _request: Request<dispatch::RecommendUnitsRequest>,
    ) -> Result<Response<dispatch::RecommendUnitsResponse>, Status> {
        Err(Status::unimplemented("recommend_units is being built"))
    }

    async fn set_auto_assign(
        &self,
        _request: Request<dispatch::SetAutoAssignRequest>,
    ) -> Result<Response<dispatch::SetAutoAssignResponse>, Status> {
        Err(Status::unimplemented("set_auto_assign is being built"))
    }

    async fn assign_job(
        &self,
        _request: Request<dispatch::AssignJobRequest>,
    ) -> Result<Response<dispatch::AssignJobResponse>, Status> {
        Err(Status::unimplemented("assign_job is being built"))
    }

    async fn acknowledge_job(
        &self,
        _request: Request<dispatch::AcknowledgeJobRequest>,
    ) -> Result<Response<dispatch::AcknowledgeJobResponse>, Status> {
        Err(Status::unimplemented("acknowledge_job is being built"))
    }

    async fn report_en_route(
        &self,
        _request: Request<dispatch::ReportEnRouteRequest>,
    ) -> Result<Response<dispatch::ReportEnRouteResponse>, Status> {
        Err(Status::unimplemented("report_en_route is being built"))
    }

    async fn report_on_scene(
        &self,
        _request: Request<dispatch::ReportOnSceneRequest>,
    ) -> Result<Response<dispatch::ReportOnSceneResponse>, Status> {
        Err(Status::unimplemented("report_on_scene is being built"))
    }

    async fn record_evidence_viewed(
        &self,
        _request: Request<dispatch::RecordEvidenceViewedRequest>,
    ) -> Result<Response<dispatch::RecordEvidenceViewedResponse>, Status> {
        Err(Status::unimplemented(
            "record_evidence_viewed is being built",
        ))
    }

    async fn close_job(
        &self,
        _request: Request<dispatch::CloseJobRequest>,
    ) -> Result<Response<dispatch::CloseJobResponse>, Status> {
        Err(Status::unimplemented("close_job is being built"))
    }

    async fn cancel_job(
        &self,
        _request: Request<dispatch::CancelJobRequest>,
    ) -> Result<Response<dispatch::CancelJobResponse>, Status> {
        Err(Status::unimplemented("cancel_job is being built"))
    }

    async fn reopen_job(
        &self,
        _request: Request<dispatch::ReopenJobRequest>,
    ) -> Result<Response<dispatch::ReopenJobResponse>, Status> {
        Err(Status::unimplemented("reopen_job is being built"))
    }

    async fn approve_reroute(
        &self,
        _request: Request<dispatch::ApproveRerouteRequest>,
    ) -> Result<Response<dispatch::ApproveRerouteResponse>, Status> {
        Err(Status::unimplemented("approve_reroute is being built"))
    }

    async fn list_review_items(
        &self,
        _request: Request<dispatch::ListReviewItemsRequest>,
    ) -> Result<Response<dispatch::ListReviewItemsResponse>, Status> {
        Err(Status::unimplemented("list_review_items is being built"))
    }

    async fn get_precinct_stats(
        &self,
        _request: Request<dispatch::GetPrecinctStatsRequest>,
    ) -> Result<Response<dispatch::GetPrecinctStatsResponse>, Status> {
        Err(Status::unimplemented("get_precinct_stats is being built"))
    }

    type WatchAssignmentsStream = std::pin::Pin<
        Box<dyn futures::Stream<Item = Result<dispatch::WatchAssignmentsResponse, Status>> + Send>,
    >;

    async fn watch_assignments(
        &self,
        _request: Request<dispatch::WatchAssignmentsRequest>,
    ) -> Result<Response<Self::WatchAssignmentsStream>, Status> {
        Err(Status::unimplemented("watch_assignments is being built"))
    }
}

fn store_status(err: StoreError) -> Status {
    match err {
        StoreError::Database(e) if dispatch311_db::is_unavailable(&e) => {
            grpc_status::unavailable("postgresql", &e)
        }
        StoreError::Database(e) => grpc_status::internal(&e),
        other => grpc_status::internal(&other),
    }
}
