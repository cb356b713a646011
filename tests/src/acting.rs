//! The dispatch client the end-to-end tests use. Each officer, dispatcher
//! and supervisor has a device with their own token, so a request that names
//! an actor goes out with a token for exactly that actor; a request that
//! names nobody goes out with no token at all (nobody said who acts). Reads
//! carry the suite's supervisor token.

use dispatch311_auth::{Role as AuthRole, client::with_token};
use dispatch311_proto::dispatch::v1::{
    self as dispatch, Actor, Role, dispatch_service_client::DispatchServiceClient,
};
use tonic::{Request, Response, Status, Streaming, transport::Channel};

use crate::suite::{AuthChannel, Replica, SUPERVISOR, Service, Suite, Tokens};

impl Suite {
    /// Dispatch as its users' devices: see [`Dispatch`].
    pub async fn dispatch(&self) -> anyhow::Result<Dispatch> {
        Dispatch::new(
            self.channel(Service::Dispatch).await?,
            self.tokens().clone(),
        )
    }
}

impl Replica {
    /// Dispatch as its users' devices, on this replica.
    pub async fn dispatch(&self) -> anyhow::Result<Dispatch> {
        Dispatch::new(self.connect().await?, self.tokens().clone())
    }
}

#[derive(Clone)]
pub struct Dispatch {
    /// Reads, with the supervisor token.
    reader: DispatchServiceClient<AuthChannel>,
    /// Changes, with the token of the request's actor (or none).
    device: DispatchServiceClient<Channel>,
    tokens: Tokens,
}

impl Dispatch {
    pub fn new(channel: Channel, tokens: Tokens) -> anyhow::Result<Self> {
        let supervisor = tokens.bearer(AuthRole::Supervisor, SUPERVISOR)?;
        Ok(Self {
            reader: DispatchServiceClient::new(supervisor.wrap(channel.clone())),
            device: DispatchServiceClient::new(channel),
            tokens,
        })
    }

    /// The request as `actor`'s device sends it.
    fn sent_by_device_of<T>(&self, actor: Option<&Actor>, message: T) -> Request<T> {
        let role = actor.and_then(|a| match Role::try_from(a.role) {
            Ok(Role::Dispatcher) => Some(AuthRole::Dispatcher),
            Ok(Role::Officer) => Some(AuthRole::Officer),
            Ok(Role::Supervisor) => Some(AuthRole::Supervisor),
            _ => None,
        });
        match (actor, role) {
            (Some(actor), Some(role)) if !actor.id.trim().is_empty() => {
                with_token(message, &self.tokens.mint(role, actor.id.trim()))
                    .expect("a minted token is a valid header")
            }
            _ => Request::new(message),
        }
    }

    pub async fn watch_assignments(
        &mut self,
        request: dispatch::WatchAssignmentsRequest,
    ) -> Result<Response<Streaming<dispatch::WatchAssignmentsResponse>>, Status> {
        self.reader.watch_assignments(request).await
    }
}

macro_rules! acting {
    ($($method:ident($request:ident) -> $response:ident;)*) => {
        impl Dispatch {
            $(pub async fn $method(
                &mut self,
                request: dispatch::$request,
            ) -> Result<Response<dispatch::$response>, Status> {
                let actor = request.actor.clone();
                let request = self.sent_by_device_of(actor.as_ref(), request);
                self.device.$method(request).await
            })*
        }
    };
}

macro_rules! reading {
    ($($method:ident($request:ident) -> $response:ident;)*) => {
        impl Dispatch {
            $(pub async fn $method(
                &mut self,
                request: dispatch::$request,
            ) -> Result<Response<dispatch::$response>, Status> {
                self.reader.$method(request).await
            })*
        }
    };
}

acting! {
    register_unit(RegisterUnitRequest) -> RegisterUnitResponse;
    report_unit_status(ReportUnitStatusRequest) -> ReportUnitStatusResponse;
    set_auto_assign(SetAutoAssignRequest) -> SetAutoAssignResponse;
    assign_job(AssignJobRequest) -> AssignJobResponse;
    acknowledge_job(AcknowledgeJobRequest) -> AcknowledgeJobResponse;
    report_en_route(ReportEnRouteRequest) -> ReportEnRouteResponse;
    report_on_scene(ReportOnSceneRequest) -> ReportOnSceneResponse;
    record_evidence_viewed(RecordEvidenceViewedRequest) -> RecordEvidenceViewedResponse;
    get_job_photo(GetJobPhotoRequest) -> GetJobPhotoResponse;
    relay_message_to_complainant(RelayMessageToComplainantRequest) -> RelayMessageToComplainantResponse;
    close_job(CloseJobRequest) -> CloseJobResponse;
    cancel_job(CancelJobRequest) -> CancelJobResponse;
    reopen_job(ReopenJobRequest) -> ReopenJobResponse;
    approve_reroute(ApproveRerouteRequest) -> ApproveRerouteResponse;
    unlink_report(UnlinkReportRequest) -> UnlinkReportResponse;
}

reading! {
    list_queue(ListQueueRequest) -> ListQueueResponse;
    get_job(GetJobRequest) -> GetJobResponse;
    list_jobs(ListJobsRequest) -> ListJobsResponse;
    get_job_timeline(GetJobTimelineRequest) -> GetJobTimelineResponse;
    verify_job_timeline(VerifyJobTimelineRequest) -> VerifyJobTimelineResponse;
    list_units(ListUnitsRequest) -> ListUnitsResponse;
    recommend_units(RecommendUnitsRequest) -> RecommendUnitsResponse;
    list_review_items(ListReviewItemsRequest) -> ListReviewItemsResponse;
    get_precinct_stats(GetPrecinctStatsRequest) -> GetPrecinctStatsResponse;
    list_repeat_locations(ListRepeatLocationsRequest) -> ListRepeatLocationsResponse;
}
