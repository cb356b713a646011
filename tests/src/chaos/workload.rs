//! The chaos run's users: an integrator filing real 311 requests at a steady
//! rate (each retried with its own request id while the service is away, as
//! a careful integrator does), officers working queued jobs through their
//! lifecycle, and complainants answering some surveys, a few "not fixed".
//! Each records what the services acknowledged, for the check.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dispatch311_auth::Role;
use dispatch311_proto::{
    common::v1::{GeoPoint, ResolutionCode},
    dispatch::v1::{GetJobRequest, JobState, RegisterUnitRequest, get_job_request},
    intake::v1::{CreateServiceRequestRequest, intake_service_client::IntakeServiceClient},
    survey::v1::{
        Agreement, ConditionCorrected, DissatisfactionReason, ListClosedRequestsRequest,
        survey_service_client::SurveyServiceClient,
    },
};
use sqlx::PgPool;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Status, transport::Endpoint};

use crate::acting::Dispatch;
use crate::cad::{
    acknowledge, assign, close, close_request, en_route, offset, on_scene, supervisor,
};
use crate::suite::{INTEGRATOR, SURVEY_SYSTEM, Tokens};
use crate::survey::answer;

/// How long one call may take before the caller counts it as a deadline.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the services of the run answer (every replica of each) and the
/// tokens they trust.
#[derive(Clone)]
pub struct Endpoints {
    pub intake: Vec<String>,
    pub dispatch: Vec<String>,
    pub survey: Vec<String>,
    pub tokens: Tokens,
}

/// Codes a careful client retries with the same request: the service, or
/// what it needs, is away for now, or the answer did not arrive.
fn transient(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown
    )
}

/// `call`, bounded by [`CALL_TIMEOUT`] (a timeout reads as DEADLINE_EXCEEDED).
async fn bounded<T>(
    call: impl std::future::Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    tokio::time::timeout(CALL_TIMEOUT, call)
        .await
        .unwrap_or_else(|_| Err(Status::deadline_exceeded("no answer in time")))
}

/// What the integrator saw.
#[derive(Debug, Default)]
pub struct Filing {
    /// request id → SR number, for every request intake accepted.
    pub acknowledged: BTreeMap<String, String>,
    /// Refusals by code (not retried: the request was not accepted).
    pub refused: BTreeMap<String, u64>,
    /// Requests given up after retrying until the end of the run.
    pub abandoned: u64,
    /// Calls repeated after a transient failure.
    pub retries: u64,
}

/// Files `requests` at `rate` per second until `stop`; a request already
/// started is retried until accepted or `give_up_at`.
pub async fn file(
    endpoints: Endpoints,
    requests: Vec<CreateServiceRequestRequest>,
    rate: f64,
    stop: CancellationToken,
    give_up_at: Instant,
) -> anyhow::Result<Filing> {
    let bearer = endpoints.tokens.bearer(Role::Integrator, INTEGRATOR)?;
    let clients: Vec<_> = endpoints
        .intake
        .iter()
        .map(|url| {
            Ok(IntakeServiceClient::new(
                bearer
                    .clone()
                    .wrap(Endpoint::from_shared(url.clone())?.connect_lazy()),
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    let filing = Arc::new(Mutex::new(Filing::default()));
    let in_flight = Arc::new(Semaphore::new(512));
    let mut tasks = JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for (n, request) in requests.into_iter().enumerate() {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => break,
        }
        let permit = in_flight.clone().acquire_owned().await?;
        let clients = clients.clone();
        let filing = filing.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let mut attempt = 0usize;
            loop {
                // a request retried goes to the other replica first, as a
                // load balancer would send it
                let mut client = clients[(n + attempt) % clients.len()].clone();
                match bounded(client.create_service_request(request.clone())).await {
                    Ok(answer) => {
                        let sr_number = answer
                            .into_inner()
                            .service_request
                            .map(|sr| sr.sr_number)
                            .unwrap_or_default();
                        let mut filing = filing.lock().unwrap();
                        filing.retries += attempt as u64;
                        filing
                            .acknowledged
                            .insert(request.request_id.clone(), sr_number);
                        return;
                    }
                    Err(status) if transient(&status) && Instant::now() < give_up_at => {
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                    Err(status) => {
                        let mut filing = filing.lock().unwrap();
                        if transient(&status) {
                            filing.abandoned += 1;
                        } else {
                            *filing
                                .refused
                                .entry(format!("{:?}", status.code()))
                                .or_default() += 1;
                        }
                        return;
                    }
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let filing = std::mem::take(&mut *filing.lock().unwrap());
    Ok(filing)
}

/// What the officers did.
#[derive(Debug, Default)]
pub struct Working {
    /// Closes dispatch acknowledged.
    pub closes: u64,
    /// Lifecycle steps refused or failed, by code, with the first message
    /// (the job is re-read and carried on).
    pub step_errors: BTreeMap<String, (u64, String)>,
}

/// Works queued jobs to their close, `concurrency` at a time, until `stop`.
/// Each job gets a unit of its own, registered near it; every step is taken
/// from the job's state as dispatch reports it, so a step that was applied
/// though its answer was lost is not taken twice.
pub async fn work(
    endpoints: Endpoints,
    pool: PgPool,
    concurrency: usize,
    stop: CancellationToken,
) -> anyhow::Result<Working> {
    let dispatches: Vec<Dispatch> = endpoints
        .dispatch
        .iter()
        .map(|url| {
            Dispatch::new(
                Endpoint::from_shared(url.clone())?.connect_lazy(),
                endpoints.tokens.clone(),
            )
        })
        .collect::<anyhow::Result<_>>()?;
    let working = Arc::new(Mutex::new(Working::default()));
    let officers: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let mut tasks = JoinSet::new();
    let mut turn = 0usize;
    while !stop.is_cancelled() {
        // the database being restarted or cut reads as nothing queued: look again soon
        let queued: Vec<(String, String, f64, f64)> = sqlx::query_as(
            "SELECT job_id::text, precinct, latitude, longitude FROM dispatch.jobs
             WHERE state = 'QUEUED' AND latitude IS NOT NULL
             ORDER BY queued_at DESC LIMIT $1",
        )
        .bind(concurrency as i64)
        .fetch_all(&pool)
        .await
        .unwrap_or_default();
        if queued.is_empty() {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
                () = stop.cancelled() => {}
            }
            continue;
        }
        for (job_id, precinct, latitude, longitude) in queued {
            turn += 1;
            let dispatch = dispatches[turn % dispatches.len()].clone();
            let working = working.clone();
            let officers = officers.clone();
            let incident = GeoPoint {
                latitude,
                longitude,
            };
            tasks.spawn(async move {
                drive_to_close(&dispatch, &job_id, &precinct, incident, &officers, &working).await
            });
        }
        // a batch at a time: the next query sees what this one did
        while tasks.join_next().await.is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let working = std::mem::take(&mut *working.lock().unwrap());
    Ok(working)
}

async fn drive_to_close(
    dispatch: &Dispatch,
    job_id: &str,
    precinct: &str,
    incident: GeoPoint,
    officers: &Mutex<HashMap<String, String>>,
    working: &Mutex<Working>,
) {
    // the random end of the id: job ids are UUIDv7, whose start is a clock
    let short = &job_id[job_id.len() - 12..];
    let officer = format!("O-CH-{short}");
    let unit = bounded(dispatch.clone().register_unit(RegisterUnitRequest {
        actor: supervisor(),
        call_sign: format!("CH-{short}"),
        precinct: precinct.to_string(),
        officer_ids: vec![officer.clone()],
        position: Some(offset(incident, -400.0, 0.0)),
    }))
    .await;
    let Some(unit) = unit.ok().and_then(|answer| answer.into_inner().unit) else {
        return;
    };
    officers
        .lock()
        .unwrap()
        .insert(unit.unit_id.clone(), officer);
    for _ in 0..15 {
        let job = bounded(dispatch.clone().get_job(GetJobRequest {
            key: Some(get_job_request::Key::JobId(job_id.to_string())),
        }))
        .await;
        let job = match job.map(|answer| answer.into_inner().job) {
            Ok(Some(job)) => job,
            Ok(None) => return,
            Err(status) => {
                note_error(working, &status);
                tokio::time::sleep(Duration::from_millis(300)).await;
                continue;
            }
        };
        let officer_of_job = officers.lock().unwrap().get(&job.unit_id).cloned();
        let step = match (JobState::try_from(job.state), officer_of_job) {
            (Ok(JobState::Queued), _) => assign(dispatch, job_id, &unit.unit_id).await.map(drop),
            (Ok(JobState::Assigned), Some(officer)) => {
                acknowledge(dispatch, job_id, &officer, offset(incident, -400.0, 0.0))
                    .await
                    .map(drop)
            }
            (Ok(JobState::Acknowledged), Some(officer)) => {
                en_route(dispatch, job_id, &officer, offset(incident, -200.0, 0.0))
                    .await
                    .map(drop)
            }
            (Ok(JobState::EnRoute), Some(officer)) => {
                on_scene(dispatch, job_id, &officer, incident)
                    .await
                    .map(drop)
            }
            (Ok(JobState::OnScene), Some(officer)) => {
                let request =
                    close_request(job_id, &officer, ResolutionCode::ActionTaken, incident);
                match bounded(close(dispatch, request)).await {
                    Ok(_) => {
                        working.lock().unwrap().closes += 1;
                        return;
                    }
                    Err(status) => Err(status),
                }
            }
            // closed, cancelled, or held by a unit this workload does not crew
            _ => return,
        };
        if let Err(status) = step {
            note_error(working, &status);
            if transient(&status) {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    }
}

fn note_error(working: &Mutex<Working>, status: &Status) {
    let mut working = working.lock().unwrap();
    let (count, example) = working
        .step_errors
        .entry(format!("{:?}", status.code()))
        .or_insert_with(|| (0, status.message().to_string()));
    *count += 1;
    if example.is_empty() {
        *example = status.message().to_string();
    }
}

/// What the complainants answered.
#[derive(Debug, Default)]
pub struct Answering {
    /// Answers the survey service recorded.
    pub answered: u64,
    /// Of those, "not corrected, reopen".
    pub not_fixed: u64,
}

/// Follows the closed-request feed until `stop` and answers every third
/// closure that carries a survey token; one answer in four says the
/// condition was not fixed and asks to reopen.
pub async fn answer_surveys(
    endpoints: Endpoints,
    stop: CancellationToken,
) -> anyhow::Result<Answering> {
    let bearer = endpoints.tokens.bearer(Role::SurveySystem, SURVEY_SYSTEM)?;
    let clients: Vec<_> = endpoints
        .survey
        .iter()
        .map(|url| {
            Ok(SurveyServiceClient::new(
                bearer
                    .clone()
                    .wrap(Endpoint::from_shared(url.clone())?.connect_lazy()),
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    let mut answering = Answering::default();
    let mut cursor = String::new();
    let mut seen = 0u64;
    let mut turn = 0usize;
    while !stop.is_cancelled() {
        turn += 1;
        let mut survey = clients[turn % clients.len()].clone();
        let page = bounded(survey.list_closed_requests(ListClosedRequestsRequest {
            cursor: cursor.clone(),
            page_size: 200,
        }))
        .await;
        let page = match page {
            Ok(page) => page.into_inner(),
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        if page.closed_requests.is_empty() {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
                () = stop.cancelled() => {}
            }
            continue;
        }
        for closure in &page.closed_requests {
            seen += 1;
            if closure.survey_token.is_empty() || !seen.is_multiple_of(3) {
                continue;
            }
            let not_fixed = (seen / 3).is_multiple_of(4);
            let request = if not_fixed {
                answer(
                    &closure.survey_token,
                    Agreement::Disagree,
                    DissatisfactionReason::NotCorrectedReopen,
                    ConditionCorrected::No,
                    "still there",
                )
            } else {
                answer(
                    &closure.survey_token,
                    Agreement::Agree,
                    DissatisfactionReason::Unspecified,
                    ConditionCorrected::Yes,
                    "",
                )
            };
            for attempt in 0..40 {
                let mut survey = clients[(turn + attempt) % clients.len()].clone();
                match bounded(survey.submit_survey_response(request.clone())).await {
                    Ok(_) => {
                        answering.answered += 1;
                        answering.not_fixed += u64::from(not_fixed);
                        break;
                    }
                    Err(status) if transient(&status) => {
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                    // answered already (a retry whose first answer landed)
                    Err(_) => break,
                }
            }
        }
        cursor = page.next_cursor;
    }
    Ok(answering)
}
