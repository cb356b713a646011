//! The gRPC adapter of the survey service.

use dispatch311_proto::survey::v1 as survey;
use tonic::{Request, Response, Status};

#[derive(Default)]
pub struct SurveyApi;

#[tonic::async_trait]
impl survey::survey_service_server::SurveyService for SurveyApi {
    async fn list_closed_requests(
        &self,
        _request: Request<survey::ListClosedRequestsRequest>,
    ) -> Result<Response<survey::ListClosedRequestsResponse>, Status> {
        Err(Status::unimplemented(
            "closed-request polling is being built",
        ))
    }

    async fn get_survey_contact(
        &self,
        _request: Request<survey::GetSurveyContactRequest>,
    ) -> Result<Response<survey::GetSurveyContactResponse>, Status> {
        Err(Status::unimplemented("surveys are being built"))
    }

    async fn submit_survey_response(
        &self,
        _request: Request<survey::SubmitSurveyResponseRequest>,
    ) -> Result<Response<survey::SubmitSurveyResponseResponse>, Status> {
        Err(Status::unimplemented("surveys are being built"))
    }

    async fn get_satisfaction_stats(
        &self,
        _request: Request<survey::GetSatisfactionStatsRequest>,
    ) -> Result<Response<survey::GetSatisfactionStatsResponse>, Status> {
        Err(Status::unimplemented("surveys are being built"))
    }

    type ExportSurveyResultsStream = std::pin::Pin<
        Box<dyn futures::Stream<Item = Result<survey::ExportSurveyResultsResponse, Status>> + Send>,
    >;

    async fn export_survey_results(
        &self,
        _request: Request<survey::ExportSurveyResultsRequest>,
    ) -> Result<Response<Self::ExportSurveyResultsStream>, Status> {
        Err(Status::unimplemented("surveys are being built"))
    }
}
