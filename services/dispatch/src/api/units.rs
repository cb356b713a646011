//! The units' RPCs: each request is checked here (fields, ranges, the
//! caller's role) and handed to `units`; answers are the units as stored.

use dispatch311_grpc::{pagination, status::FieldViolations};
use dispatch311_proto::dispatch::v1::{self as dispatch, Role, UnitStatus};
use tonic::Status;

use super::DispatchApi;
use super::validate;
use crate::{
    store::units::UnitRow,
    units::{NewUnit, StatusReport},
};

const MAX_CALL_SIGN_CHARS: usize = 32;

const MAX_OFFICERS: usize = 16;

const DEFAULT_RECOMMENDATIONS: usize = 5;

const MAX_RECOMMENDATIONS: usize = 100;

impl DispatchApi {
    pub(super) async fn register_unit(
        &self,
        request: dispatch::RegisterUnitRequest,
    ) -> Result<dispatch::RegisterUnitResponse, Status> {
        let mut v = FieldViolations::new();
        let actor = validate::actor(request.actor.as_ref(), &mut v);
        let call_sign = request.call_sign.trim().to_string();
        if call_sign.is_empty() {
            v.add("call_sign", "required, e.g. \"14-ADAM-3\"");
        } else if call_sign.chars().count() > MAX_CALL_SIGN_CHARS
            || !call_sign.chars().all(|c| c.is_ascii_graphic() || c == ' ')
        {
            v.add(
                "call_sign",
                format!("must be at most {MAX_CALL_SIGN_CHARS} printable ASCII characters"),
            );
        }
        let precinct = validate::precinct(&request.precinct, "precinct", &mut v);
        let mut officer_ids: Vec<String> = Vec::new();
        for (i, id) in request.officer_ids.iter().enumerate() {
            let id = validate::text(id, &format!("officer_ids[{i}]"), 64, true, &mut v);
            if !officer_ids.contains(&id) {
                officer_ids.push(id);
            }
        }
        if officer_ids.is_empty() {
            v.add("officer_ids", "at least one officer works a unit");
        } else if officer_ids.len() > MAX_OFFICERS {
            v.add("officer_ids", format!("at most {MAX_OFFICERS} officers"));
        }
        let position = validate::position(request.position.as_ref(), "position", &mut v);
        v.into_result()?;
        validate::role(
            &actor,
            &[Role::Dispatcher, Role::Supervisor, Role::System],
            "only dispatchers and supervisors register units",
        )?;

        let unit = self
            .units
            .register(NewUnit {
                call_sign,
                precinct,
                officer_ids,
                position,
            })
            .await?;
        Ok(dispatch::RegisterUnitResponse {
            unit: Some(unit.to_proto()),
        })
    }

    pub(super) async fn report_unit_status(
        &self,
        request: dispatch::ReportUnitStatusRequest,
    ) -> Result<dispatch::ReportUnitStatusResponse, Status> {
        let mut v = FieldViolations::new();
        let actor = validate::actor(request.actor.as_ref(), &mut v);
        let unit_id = validate::uuid(&request.unit_id, "unit_id", &mut v);
        let status = match UnitStatus::try_from(request.status) {
            Ok(
                s @ (UnitStatus::Unspecified
                | UnitStatus::Available
                | UnitStatus::BusyEmergency
                | UnitStatus::OutOfService),
            ) => s,
            Ok(UnitStatus::Assigned | UnitStatus::EnRoute | UnitStatus::OnScene) => {
                v.add(
                    "status",
                    "ASSIGNED, EN_ROUTE and ON_SCENE follow the unit's job: report them on the job",
                );
                UnitStatus::Unspecified
            }
            Err(_) => {
                v.add("status", "not a unit status");
                UnitStatus::Unspecified
            }
        };
        let position = validate::position(request.position.as_ref(), "position", &mut v);
        if request.status == UnitStatus::Unspecified as i32 && request.position.is_none() {
            v.add("status", "give a status, a position or both");
        }
        v.into_result()?;
        validate::role(
            &actor,
            &[
                Role::Officer,
                Role::Dispatcher,
                Role::Supervisor,
                Role::System,
            ],
            "only the unit's officers, dispatchers and supervisors report a unit's status",
        )?;

        let report = StatusReport {
            actor,
            unit_id,
            status,
            position,
        };
        let unit = self.units.report_status(report).await?;
        Ok(dispatch::ReportUnitStatusResponse {
            unit: Some(unit.to_proto()),
        })
    }

    pub(super) async fn list_units(
        &self,
        request: dispatch::ListUnitsRequest,
    ) -> Result<dispatch::ListUnitsResponse, Status> {
        let mut v = FieldViolations::new();
        let precinct = validate::precinct(&request.precinct, "precinct", &mut v);
        let limit = pagination::page_size(request.page_size, "page_size", &mut v);
        let after = pagination::decode_token(&request.page_token, "page_token", &mut v);
        v.into_result()?;

        // call signs are unique: the last one of a page is the cursor
        let mut units = self
            .units
            .list(&precinct, after.as_deref(), limit + 1)
            .await?;
        let next_page_token = if units.len() > limit {
            units.truncate(limit);
            units
                .last()
                .map(|u| pagination::encode_token(&u.call_sign))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(dispatch::ListUnitsResponse {
            units: units.iter().map(UnitRow::to_proto).collect(),
            next_page_token,
        })
    }

    pub(super) async fn recommend_units(
        &self,
        request: dispatch::RecommendUnitsRequest,
    ) -> Result<dispatch::RecommendUnitsResponse, Status> {
        let mut v = FieldViolations::new();
        let job_id = validate::uuid(&request.job_id, "job_id", &mut v);
        let max_units = match usize::try_from(request.max_units) {
            Ok(0) => DEFAULT_RECOMMENDATIONS,
            Ok(n) => n.min(MAX_RECOMMENDATIONS),
            Err(_) => {
                v.add("max_units", "must not be negative");
                DEFAULT_RECOMMENDATIONS
            }
        };
        v.into_result()?;

        let ranked = self.units.recommend(job_id, max_units).await?;
        Ok(dispatch::RecommendUnitsResponse {
            recommendations: ranked
                .into_iter()
                .map(|(unit, distance_meters)| dispatch::UnitRecommendation {
                    unit: Some(unit.to_proto()),
                    distance_meters,
                })
                .collect(),
        })
    }

    pub(super) async fn set_auto_assign(
        &self,
        request: dispatch::SetAutoAssignRequest,
    ) -> Result<dispatch::SetAutoAssignResponse, Status> {
        let mut v = FieldViolations::new();
        let actor = validate::actor(request.actor.as_ref(), &mut v);
        let precinct = validate::precinct(&request.precinct, "precinct", &mut v);
        v.into_result()?;
        validate::role(
            &actor,
            &[Role::Supervisor],
            "only a supervisor turns auto-assignment on or off",
        )?;
        self.units
            .set_auto_assign(&precinct, request.enabled, &actor.id)
            .await?;
        Ok(dispatch::SetAutoAssignResponse {
            precinct,
            enabled: request.enabled,
        })
    }
}
