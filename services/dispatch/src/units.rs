//! Patrol units: registration, status and position reports, and the
//! recommendation of the nearest available unit. 911 comes first: a unit busy
//! with an emergency is never recommended or assigned 311 work.

use dispatch311_proto::dispatch::v1 as dispatch;
use tonic::Status;

use crate::store::Store;

pub struct Units {
    pub store: Store,
}

impl Units {
    pub async fn register_unit(
        &self,
        _request: dispatch::RegisterUnitRequest,
    ) -> Result<dispatch::RegisterUnitResponse, Status> {
        Err(Status::unimplemented("register_unit is not built yet"))
    }

    pub async fn report_unit_status(
        &self,
        _request: dispatch::ReportUnitStatusRequest,
    ) -> Result<dispatch::ReportUnitStatusResponse, Status> {
        Err(Status::unimplemented("report_unit_status is not built yet"))
    }

    pub async fn list_units(
        &self,
        _request: dispatch::ListUnitsRequest,
    ) -> Result<dispatch::ListUnitsResponse, Status> {
        Err(Status::unimplemented("list_units is not built yet"))
    }

    pub async fn recommend_units(
        &self,
        _request: dispatch::RecommendUnitsRequest,
    ) -> Result<dispatch::RecommendUnitsResponse, Status> {
        Err(Status::unimplemented("recommend_units is not built yet"))
    }

    pub async fn set_auto_assign(
        &self,
        _request: dispatch::SetAutoAssignRequest,
    ) -> Result<dispatch::SetAutoAssignResponse, Status> {
        Err(Status::unimplemented("set_auto_assign is not built yet"))
    }
}
