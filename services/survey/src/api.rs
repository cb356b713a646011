//! The gRPC adapter of the survey service.

use dispatch311_proto::survey::v1::{
    ListClosedRequestsRequest, ListClosedRequestsResponse, survey_service_server::SurveyService,
};
use tonic::{Request, Response, Status};

#[derive(Default)]
pub struct SurveyApi;

#[tonic::async_trait]
impl SurveyService for SurveyApi {
    /// Closed-request polling needs closures, which dispatch does not emit
    /// yet; until then the honest answer is UNIMPLEMENTED, not an empty page
    /// that a survey system would take for "nothing closed".
    async fn list_closed_requests(
        &self,
        _request: Request<ListClosedRequestsRequest>,
    ) -> Result<Response<ListClosedRequestsResponse>, Status> {
        Err(Status::unimplemented(
            "closed-request polling is not available yet: dispatch does not close jobs yet",
        ))
    }
}
