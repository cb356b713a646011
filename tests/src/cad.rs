//! Helpers for the dispatch (CAD) end-to-end tests: filing a complaint and
//! waiting for its job, registering units, driving a job through its
//! lifecycle, geometry for "near" and "far" positions, and the checks that a
//! refused call changed nothing.

use std::time::Duration;

use anyhow::Context as _;
use dispatch311_proto::jobs::v1::{ClosedEvent, JobEnvelope};
use dispatch311_proto::{
    Timestamp,
    common::v1::{GeoPoint, ResolutionCode, ServiceRequestStatus},
    dispatch::v1::{
        AcknowledgeJobRequest, Actor, AssignJobRequest, CloseJobRequest, FlagKind, GetJobRequest,
        GetJobTimelineRequest, Job, JobEvent, ListUnitsRequest, RegisterUnitRequest,
        ReportEnRouteRequest, ReportOnSceneRequest, Role, Unit, VerifyJobTimelineRequest,
        VerifyJobTimelineResponse, get_job_request,
    },
    intake::v1::{
        Complainant, CreateServiceRequestRequest, GetServiceRequestRequest, PhotoReference,
        ServiceRequest, get_service_request_request, intake_service_client::IntakeServiceClient,
    },
};
use prost::Message as _;
use tonic::{Code, Status};

use crate::suite::{AuthChannel, Suite, eventually};

pub use crate::acting::Dispatch;

/// The Empire State Building, 350 5th Avenue: Midtown South (precinct 14) on
/// both the demo and the real precinct map.
pub const EMPIRE_STATE: GeoPoint = GeoPoint {
    latitude: 40.748_44,
    longitude: -73.985_66,
};

/// A corner in Midtown North (precinct 18) on both maps.
pub const MIDTOWN_NORTH: GeoPoint = GeoPoint {
    latitude: 40.765_0,
    longitude: -73.985_0,
};

/// The complainant's contact details: they must never reach dispatch.
pub const COMPLAINANT_NAME: &str = "Dana Witness-Example";
pub const COMPLAINANT_PHONE: &str = "+1 212 555 0199";
pub const COMPLAINANT_EMAIL: &str = "dana.witness@example.org";

/// How long the pipeline gets to carry a request or an update.
pub const PIPELINE: Duration = Duration::from_secs(20);

pub fn actor(id: &str, role: Role) -> Option<Actor> {
    Some(Actor {
        id: id.to_string(),
        role: role as i32,
    })
}

pub fn dispatcher() -> Option<Actor> {
    actor("D-100", Role::Dispatcher)
}

pub fn supervisor() -> Option<Actor> {
    actor("S-900", Role::Supervisor)
}

pub fn officer(id: &str) -> Option<Actor> {
    actor(id, Role::Officer)
}

/// A complaint as the 311 app files it, with the complainant's contact
/// details and a unique request id.
pub fn complaint(
    complaint_type: &str,
    descriptor: &str,
    location: GeoPoint,
) -> CreateServiceRequestRequest {
    CreateServiceRequestRequest {
        request_id: format!("cad-{}", uuid::Uuid::new_v4().simple()),
        complaint_type: complaint_type.to_string(),
        descriptor: descriptor.to_string(),
        location: Some(location),
        description: "still there, engine running".to_string(),
        channel: dispatch311_proto::common::v1::Channel::MobileApp as i32,
        complainant: Some(Complainant {
            name: COMPLAINANT_NAME.to_string(),
            phone: COMPLAINANT_PHONE.to_string(),
            email: COMPLAINANT_EMAIL.to_string(),
            consent_to_contact: true,
        }),
        ..Default::default()
    }
}

/// One photo of the condition, as the app attaches it.
pub fn photo() -> PhotoReference {
    PhotoReference {
        uri: "https://photos.example/1.jpg".to_string(),
        content_type: "image/jpeg".to_string(),
    }
}

/// Files `request` through intake and waits for its job in the precinct queue.
pub async fn file(suite: &Suite, request: CreateServiceRequestRequest) -> anyhow::Result<Job> {
    let sr = suite
        .intake()
        .await?
        .create_service_request(request)
        .await?
        .into_inner()
        .service_request
        .expect("intake answers with the request");
    wait_for_job(&suite.dispatch().await?, &sr.sr_number).await
}

/// Files a complaint at `location` and waits until its job is queued.
pub async fn file_and_queue(
    suite: &Suite,
    complaint_type: &str,
    descriptor: &str,
    location: GeoPoint,
) -> anyhow::Result<Job> {
    file(suite, complaint(complaint_type, descriptor, location)).await
}

/// A blocked hydrant at `location` (police work, high priority).
pub async fn hydrant_at(suite: &Suite, location: GeoPoint) -> anyhow::Result<Job> {
    file_and_queue(suite, "Illegal Parking", "Blocked Hydrant", location).await
}

/// Waits until dispatch holds a job for `sr_number`.
pub async fn wait_for_job(dispatch: &Dispatch, sr_number: &str) -> anyhow::Result<Job> {
    eventually(PIPELINE, &format!("a dispatch job for {sr_number}"), || {
        let mut dispatch = dispatch.clone();
        let key = get_job_request::Key::SrNumber(sr_number.to_string());
        async move {
            match dispatch.get_job(GetJobRequest { key: Some(key) }).await {
                Ok(answer) => Ok(answer.into_inner().job),
                Err(status) if status.code() == Code::NotFound => Ok(None),
                Err(status) => Err(status.into()),
            }
        }
    })
    .await
}

/// Waits until intake shows `sr_number` with `status`.
pub async fn wait_for_sr_status(
    suite: &Suite,
    sr_number: &str,
    status: ServiceRequestStatus,
) -> anyhow::Result<ServiceRequest> {
    wait_for_public_status(&suite.intake().await?, sr_number, status).await
}

/// Waits until intake (through `intake`) shows `sr_number` with `status`.
pub async fn wait_for_public_status(
    intake: &IntakeServiceClient<AuthChannel>,
    sr_number: &str,
    status: ServiceRequestStatus,
) -> anyhow::Result<ServiceRequest> {
    eventually(
        PIPELINE,
        &format!("{sr_number} to become {status:?} in intake"),
        || {
            let mut intake = intake.clone();
            let key = get_service_request_request::Key::SrNumber(sr_number.to_string());
            async move {
                let sr = intake
                    .get_service_request(GetServiceRequestRequest { key: Some(key) })
                    .await?
                    .into_inner()
                    .service_request
                    .expect("a request");
                Ok((sr.status == status as i32).then_some(sr))
            }
        },
    )
    .await
}

pub async fn get_job(dispatch: &Dispatch, job_id: &str) -> anyhow::Result<Job> {
    Ok(dispatch
        .clone()
        .get_job(GetJobRequest {
            key: Some(get_job_request::Key::JobId(job_id.to_string())),
        })
        .await?
        .into_inner()
        .job
        .expect("GetJob answers with the job"))
}

pub async fn timeline(dispatch: &Dispatch, job_id: &str) -> anyhow::Result<Vec<JobEvent>> {
    Ok(dispatch
        .clone()
        .get_job_timeline(GetJobTimelineRequest {
            job_id: job_id.to_string(),
        })
        .await?
        .into_inner()
        .events)
}

/// VerifyJobTimeline's report on one job.
pub async fn verify(
    dispatch: &Dispatch,
    job_id: &str,
) -> anyhow::Result<VerifyJobTimelineResponse> {
    Ok(dispatch
        .clone()
        .verify_job_timeline(VerifyJobTimelineRequest {
            job_id: job_id.to_string(),
        })
        .await?
        .into_inner())
}

/// Registers a unit and checks the answer describes it.
pub async fn register_unit(
    dispatch: &Dispatch,
    call_sign: &str,
    precinct: &str,
    officer_ids: &[&str],
    position: GeoPoint,
) -> anyhow::Result<Unit> {
    let unit = dispatch
        .clone()
        .register_unit(RegisterUnitRequest {
            actor: supervisor(),
            call_sign: call_sign.to_string(),
            precinct: precinct.to_string(),
            officer_ids: officer_ids.iter().map(|id| id.to_string()).collect(),
            position: Some(position),
        })
        .await?
        .into_inner()
        .unit
        .expect("RegisterUnit answers with the unit");
    anyhow::ensure!(
        unit.call_sign == call_sign && !unit.unit_id.is_empty(),
        "registered unit {unit:?}"
    );
    Ok(unit)
}

/// One unit of the precinct by id, as ListUnits shows it.
pub async fn get_unit(dispatch: &Dispatch, precinct: &str, unit_id: &str) -> anyhow::Result<Unit> {
    let mut token = String::new();
    loop {
        let page = dispatch
            .clone()
            .list_units(ListUnitsRequest {
                precinct: precinct.to_string(),
                page_size: 1000,
                page_token: token,
            })
            .await?
            .into_inner();
        if let Some(unit) = page.units.into_iter().find(|u| u.unit_id == unit_id) {
            return Ok(unit);
        }
        if page.next_page_token.is_empty() {
            anyhow::bail!("unit {unit_id} is not listed in precinct {precinct}");
        }
        token = page.next_page_token;
    }
}

pub async fn assign(dispatch: &Dispatch, job_id: &str, unit_id: &str) -> Result<Job, Status> {
    let answer = dispatch
        .clone()
        .assign_job(AssignJobRequest {
            actor: dispatcher(),
            job_id: job_id.to_string(),
            unit_id: unit_id.to_string(),
            reason: String::new(),
        })
        .await?;
    Ok(answer
        .into_inner()
        .job
        .expect("AssignJob answers with the job"))
}

pub async fn acknowledge(
    dispatch: &Dispatch,
    job_id: &str,
    officer_id: &str,
    position: GeoPoint,
) -> Result<Job, Status> {
    let answer = dispatch
        .clone()
        .acknowledge_job(AcknowledgeJobRequest {
            actor: officer(officer_id),
            job_id: job_id.to_string(),
            position: Some(position),
        })
        .await?;
    Ok(answer
        .into_inner()
        .job
        .expect("AcknowledgeJob answers with the job"))
}

pub async fn en_route(
    dispatch: &Dispatch,
    job_id: &str,
    officer_id: &str,
    position: GeoPoint,
) -> Result<Job, Status> {
    let answer = dispatch
        .clone()
        .report_en_route(ReportEnRouteRequest {
            actor: officer(officer_id),
            job_id: job_id.to_string(),
            position: Some(position),
        })
        .await?;
    Ok(answer
        .into_inner()
        .job
        .expect("ReportEnRoute answers with the job"))
}

pub async fn on_scene(
    dispatch: &Dispatch,
    job_id: &str,
    officer_id: &str,
    position: GeoPoint,
) -> Result<Job, Status> {
    let answer = dispatch
        .clone()
        .report_on_scene(ReportOnSceneRequest {
            actor: officer(officer_id),
            job_id: job_id.to_string(),
            position: Some(position),
        })
        .await?;
    Ok(answer
        .into_inner()
        .job
        .expect("ReportOnScene answers with the job"))
}

/// Assigns `job` to `unit`, and its officer acknowledges, goes en route and
/// reports arrival at `arrival` (the unit starts 800 m south of the incident).
pub async fn drive_to_scene(
    dispatch: &Dispatch,
    job: &Job,
    unit: &Unit,
    officer_id: &str,
    arrival: GeoPoint,
) -> anyhow::Result<Job> {
    let incident = job.location.expect("dispatched jobs have a location");
    let start = offset(incident, -800.0, 0.0);
    assign(dispatch, &job.job_id, &unit.unit_id).await?;
    acknowledge(dispatch, &job.job_id, officer_id, start).await?;
    en_route(
        dispatch,
        &job.job_id,
        officer_id,
        offset(incident, -400.0, 0.0),
    )
    .await?;
    Ok(on_scene(dispatch, &job.job_id, officer_id, arrival).await?)
}

/// A close request from `officer_id` standing at `position`.
pub fn close_request(
    job_id: &str,
    officer_id: &str,
    code: ResolutionCode,
    position: GeoPoint,
) -> CloseJobRequest {
    CloseJobRequest {
        actor: officer(officer_id),
        job_id: job_id.to_string(),
        resolution_code: code as i32,
        summons_number: if code == ResolutionCode::SummonsIssued {
            "4410123456".to_string()
        } else {
            String::new()
        },
        notes: "checked the block".to_string(),
        position: Some(position),
        duplicate_of_sr_number: String::new(),
    }
}

/// The close of a replayed real request, with the department's own closing
/// text (`closing_text`) as notes: by the unit's officer, except a duplicate,
/// which the city's record does not link to the report it duplicates — so a
/// supervisor closes it, the record's text being the written reason.
pub fn close_request_as_recorded(
    job_id: &str,
    officer_id: &str,
    code: ResolutionCode,
    position: GeoPoint,
    unique_key: &str,
    closing_text: &str,
) -> CloseJobRequest {
    let mut request = close_request(job_id, officer_id, code, position);
    if code == ResolutionCode::SummonsIssued {
        request.summons_number = format!("R{unique_key}");
    }
    request.notes = closing_text.to_string();
    if code == ResolutionCode::Duplicate {
        request.actor = supervisor();
        request.notes = format!("the city's record of 311 request {unique_key}: {closing_text}");
    }
    request
}

pub async fn close(dispatch: &Dispatch, request: CloseJobRequest) -> Result<Job, Status> {
    let answer = dispatch.clone().close_job(request).await?;
    Ok(answer
        .into_inner()
        .job
        .expect("CloseJob answers with the job"))
}

/// One entry of the `closed` queue's stream: the raw envelope bytes as
/// published, the envelope, and its `ClosedEvent` payload.
#[derive(Debug, Clone)]
pub struct PublishedClosure {
    pub raw: Vec<u8>,
    pub envelope: JobEnvelope,
    pub event: ClosedEvent,
}

/// Every entry on the `closed` queue's stream (stop the survey service first
/// if the entries must stay: a consumer removes what it has handled).
pub async fn closed_stream(suite: &Suite) -> anyhow::Result<Vec<PublishedClosure>> {
    let client = redis::Client::open(suite.redis_url.as_str())?;
    let mut redis = client.get_multiplexed_async_connection().await?;
    let key = format!("{}dispatch311:{{closed}}:stream", suite.redis_prefix);
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(&key)
        .arg("-")
        .arg("+")
        .query_async(&mut redis)
        .await?;
    let mut published = Vec::new();
    for entry in reply.ids {
        let raw: Vec<u8> = entry
            .get("envelope")
            .with_context(|| format!("stream entry {} has no envelope field", entry.id))?;
        let envelope = JobEnvelope::decode(raw.as_slice())?;
        let event = ClosedEvent::decode(envelope.payload.as_slice())?;
        published.push(PublishedClosure {
            raw,
            envelope,
            event,
        });
    }
    Ok(published)
}

/// Waits for the closures of `sr_id` published on the `closed` queue to
/// number `count`.
pub async fn wait_for_closures(
    suite: &Suite,
    sr_id: &str,
    count: usize,
) -> anyhow::Result<Vec<PublishedClosure>> {
    eventually(
        PIPELINE,
        &format!("{count} closed events for {sr_id}"),
        || async move {
            let mine: Vec<PublishedClosure> = closed_stream(suite)
                .await?
                .into_iter()
                .filter(|c| c.event.sr_id == sr_id)
                .collect();
            Ok((mine.len() >= count).then_some(mine))
        },
    )
    .await
}

/// Whether `haystack` contains `needle` anywhere (for raw payload bytes).
pub fn contains_bytes(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// What a refused call must leave untouched: the job (except the SLA
/// countdown, which moves with the clock) and its whole event log.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSnapshot {
    pub job: Job,
    pub events: Vec<JobEvent>,
}

pub async fn snapshot(dispatch: &Dispatch, job_id: &str) -> anyhow::Result<JobSnapshot> {
    let mut job = get_job(dispatch, job_id).await?;
    job.sla_remaining_seconds = 0;
    Ok(JobSnapshot {
        job,
        events: timeline(dispatch, job_id).await?,
    })
}

/// Asserts `result` is a refusal with one of `codes` and a reason, and that
/// the job is exactly as it was in `before`. Returns the refusal.
pub async fn assert_refused_unchanged<T: std::fmt::Debug>(
    dispatch: &Dispatch,
    result: Result<T, Status>,
    codes: &[Code],
    before: &JobSnapshot,
    what: &str,
) -> anyhow::Result<Status> {
    let status = match result {
        Ok(answer) => anyhow::bail!("{what}: expected a refusal ({codes:?}), got {answer:?}"),
        Err(status) => status,
    };
    anyhow::ensure!(
        codes.contains(&status.code()),
        "{what}: expected one of {codes:?}, got {:?}: {}",
        status.code(),
        status.message()
    );
    anyhow::ensure!(
        !status.message().trim().is_empty(),
        "{what}: refused without a reason"
    );
    let after = snapshot(dispatch, &before.job.job_id).await?;
    anyhow::ensure!(
        after.job == before.job,
        "{what}: the refused call changed the job\nbefore: {:?}\nafter:  {:?}",
        before.job,
        after.job
    );
    anyhow::ensure!(
        after.events == before.events,
        "{what}: the refused call changed the event log ({} events before, {} after)",
        before.events.len(),
        after.events.len()
    );
    Ok(status)
}

pub fn has_flag(job: &Job, kind: FlagKind) -> bool {
    job.flags.iter().any(|f| f.kind == kind as i32)
}

pub fn flag_kinds(job: &Job) -> Vec<FlagKind> {
    job.flags
        .iter()
        .map(|f| FlagKind::try_from(f.kind).unwrap_or(FlagKind::Unspecified))
        .collect()
}

/// Seconds from `from` to `to`.
pub fn seconds_between(from: &Timestamp, to: &Timestamp) -> f64 {
    (to.seconds - from.seconds) as f64 + f64::from(to.nanos - from.nanos) / 1e9
}

pub fn timestamp_of(at: chrono::DateTime<chrono::Utc>) -> Timestamp {
    Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos() as i32,
    }
}

const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// A point `north_m` metres north and `east_m` metres east of `from`.
pub fn offset(from: GeoPoint, north_m: f64, east_m: f64) -> GeoPoint {
    let latitude = from.latitude + (north_m / EARTH_RADIUS_M).to_degrees();
    let longitude = from.longitude
        + (east_m / (EARTH_RADIUS_M * from.latitude.to_radians().cos())).to_degrees();
    GeoPoint {
        latitude,
        longitude,
    }
}

/// Great-circle distance in metres (haversine).
pub fn distance_m(a: GeoPoint, b: GeoPoint) -> f64 {
    let (lat1, lat2) = (a.latitude.to_radians(), b.latitude.to_radians());
    let d_lat = lat2 - lat1;
    let d_lon = (b.longitude - a.longitude).to_radians();
    let h = (d_lat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (d_lon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().asin()
}

/// The value a median or percentile of `sorted` may take under any usual
/// definition (nearest rank, lower/upper, linear interpolation).
pub fn percentile_bounds(sorted: &[f64], fraction: f64) -> (f64, f64) {
    assert!(!sorted.is_empty(), "a percentile of nothing");
    let n = sorted.len();
    let interpolated = fraction * (n - 1) as f64;
    let nearest_rank = ((fraction * n as f64).ceil() as usize).clamp(1, n) - 1;
    let low = (interpolated.floor() as usize).min(nearest_rank);
    let high = (interpolated.ceil() as usize).max(nearest_rank).min(n - 1);
    (sorted[low], sorted[high])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_the_distance_they_say() {
        let north = offset(EMPIRE_STATE, 1000.0, 0.0);
        assert!((distance_m(EMPIRE_STATE, north) - 1000.0).abs() < 1.0);
        let east = offset(EMPIRE_STATE, 0.0, 120.0);
        assert!((distance_m(EMPIRE_STATE, east) - 120.0).abs() < 0.5);
    }

    #[test]
    fn percentile_bounds_cover_the_usual_definitions() {
        let values = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile_bounds(&values, 0.5), (2.0, 3.0));
        assert_eq!(percentile_bounds(&[1.0, 3.0, 5.0], 0.5), (3.0, 3.0));
        assert_eq!(percentile_bounds(&values, 0.9), (3.0, 4.0));
    }
}
