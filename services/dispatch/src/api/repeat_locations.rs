//! `ListRepeatLocations`: the places of a precinct that keep generating
//! complaints (jobs and the reports linked to them, by street address) over
//! at most the last 30 days, most requests first.

use chrono::{TimeDelta, Utc};
use dispatch311_domain::time::to_timestamp;
use dispatch311_grpc::{pagination, status::FieldViolations};
use dispatch311_proto::dispatch::v1 as dispatch;
use tonic::Status;

use super::{slow_jobs::duration_field, supervision::Supervision, validate};
use crate::store::oversight;

/// The window when the request gives none, and the longest it may ask for.
const MAX_SINCE: TimeDelta = TimeDelta::days(30);

impl Supervision {
    pub async fn list_repeat_locations(
        &self,
        request: dispatch::ListRepeatLocationsRequest,
    ) -> Result<dispatch::ListRepeatLocationsResponse, Status> {
        let mut v = FieldViolations::new();
        let precinct = validate::precinct(&request.precinct, "precinct", &mut v);
        let since = duration_field(request.since.as_ref(), "since", MAX_SINCE, &mut v);
        if since <= TimeDelta::zero() || since > MAX_SINCE {
            v.add("since", "must be more than 0 and at most 30 days");
        }
        let limit = pagination::page_size(request.page_size, "page_size", &mut v);
        v.into_result()?;

        let locations = oversight::repeat_locations(
            self.store.pool(),
            &precinct,
            Utc::now() - since,
            limit as i64,
        )
        .await?
        .into_iter()
        .map(|place| dispatch::RepeatLocation {
            street_address: place.street_address,
            borough: place.borough,
            jobs: place.jobs,
            requests: place.requests,
            open_jobs: place.open_jobs,
            complaint_types: place.complaint_types,
            last_reported_at: Some(to_timestamp(place.last_reported_at)),
        })
        .collect();
        Ok(dispatch::ListRepeatLocationsResponse { locations })
    }
}
