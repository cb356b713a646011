//! Supervisor and oversight views: jobs by filter with who is responsible and
//! the SLA remaining, timelines and their verification, the review list of
//! flagged jobs, and a precinct's figures for a time window.

use dispatch311_proto::dispatch::v1 as dispatch;
use tonic::Status;

use crate::store::Store;

pub struct Supervision {
    pub store: Store,
}

impl Supervision {
    pub async fn list_jobs(
        &self,
        _request: dispatch::ListJobsRequest,
    ) -> Result<dispatch::ListJobsResponse, Status> {
        Err(Status::unimplemented("list_jobs is not built yet"))
    }

    pub async fn get_job_timeline(
        &self,
        _request: dispatch::GetJobTimelineRequest,
    ) -> Result<dispatch::GetJobTimelineResponse, Status> {
        Err(Status::unimplemented("get_job_timeline is not built yet"))
    }

    pub async fn verify_job_timeline(
        &self,
        _request: dispatch::VerifyJobTimelineRequest,
    ) -> Result<dispatch::VerifyJobTimelineResponse, Status> {
        Err(Status::unimplemented(
            "verify_job_timeline is not built yet",
        ))
    }

    pub async fn list_review_items(
        &self,
        _request: dispatch::ListReviewItemsRequest,
    ) -> Result<dispatch::ListReviewItemsResponse, Status> {
        Err(Status::unimplemented("list_review_items is not built yet"))
    }

    pub async fn get_precinct_stats(
        &self,
        _request: dispatch::GetPrecinctStatsRequest,
    ) -> Result<dispatch::GetPrecinctStatsResponse, Status> {
        Err(Status::unimplemented("get_precinct_stats is not built yet"))
    }
}
