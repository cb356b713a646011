//! The guarded job lifecycle: assignment, acknowledgement, en route, on
//! scene, evidence viewed, closure (with the accountability rules), cancel,
//! reopen and supervisor-approved re-route. Every transition is checked
//! against the state machine, appends an event, tells intake, and changes
//! nothing when refused.

use std::sync::Arc;

use dispatch311_proto::dispatch::v1 as dispatch;
use tokio::sync::Notify;
use tonic::Status;

use crate::{config::DispatchRules, store::Store};

pub struct Lifecycle {
    pub store: Store,
    pub rules: DispatchRules,
    /// Wakes the outbox relay after a commit.
    pub relay_wakeup: Arc<Notify>,
}

impl Lifecycle {
    pub async fn assign_job(
        &self,
        _request: dispatch::AssignJobRequest,
    ) -> Result<dispatch::AssignJobResponse, Status> {
        Err(Status::unimplemented("assign_job is not built yet"))
    }

    pub async fn acknowledge_job(
        &self,
        _request: dispatch::AcknowledgeJobRequest,
    ) -> Result<dispatch::AcknowledgeJobResponse, Status> {
        Err(Status::unimplemented("acknowledge_job is not built yet"))
    }

    pub async fn report_en_route(
        &self,
        _request: dispatch::ReportEnRouteRequest,
    ) -> Result<dispatch::ReportEnRouteResponse, Status> {
        Err(Status::unimplemented("report_en_route is not built yet"))
    }

    pub async fn report_on_scene(
        &self,
        _request: dispatch::ReportOnSceneRequest,
    ) -> Result<dispatch::ReportOnSceneResponse, Status> {
        Err(Status::unimplemented("report_on_scene is not built yet"))
    }

    pub async fn record_evidence_viewed(
        &self,
        _request: dispatch::RecordEvidenceViewedRequest,
    ) -> Result<dispatch::RecordEvidenceViewedResponse, Status> {
        Err(Status::unimplemented(
            "record_evidence_viewed is not built yet",
        ))
    }

    pub async fn close_job(
        &self,
        _request: dispatch::CloseJobRequest,
    ) -> Result<dispatch::CloseJobResponse, Status> {
        Err(Status::unimplemented("close_job is not built yet"))
    }

    pub async fn cancel_job(
        &self,
        _request: dispatch::CancelJobRequest,
    ) -> Result<dispatch::CancelJobResponse, Status> {
        Err(Status::unimplemented("cancel_job is not built yet"))
    }

    pub async fn reopen_job(
        &self,
        _request: dispatch::ReopenJobRequest,
    ) -> Result<dispatch::ReopenJobResponse, Status> {
        Err(Status::unimplemented("reopen_job is not built yet"))
    }

    pub async fn approve_reroute(
        &self,
        _request: dispatch::ApproveRerouteRequest,
    ) -> Result<dispatch::ApproveRerouteResponse, Status> {
        Err(Status::unimplemented("approve_reroute is not built yet"))
    }
}
