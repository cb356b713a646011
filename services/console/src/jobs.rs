//! One job's page for dispatchers and supervisors: what it is and where it
//! stands (live), the units to send nearest first, assign / reassign with
//! the reason / cancel, and for a supervisor the photos, the timeline's
//! verification and the approval of a re-route. Also the photo page, which
//! officers open from their screen too.

use axum::{
    Form,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use base64::Engine as _;
use dispatch311_auth::Role;
use dispatch311_proto::dispatch::v1::{
    ApproveRerouteRequest, AssignJobRequest, CancelJobRequest, GetJobPhotoRequest, GetJobRequest,
    GetJobTimelineRequest, Job, RecommendUnitsRequest, VerifyJobTimelineRequest,
    get_job_request::Key,
};
use serde::Deserialize;

use crate::live;
use crate::pages::{BOARD_PEOPLE, BOARD_ROLES};
use crate::session::Session;
use crate::views::{
    JobDetail, JobLive, JobPage, PhotoPage, ProblemFragment, Recommendation, TimelineRow,
    Verification, Who,
};
use crate::web::{
    AppState, as_person, forged_form, message, render, render_fragment, require, see_other,
    status_for,
};
use crate::words;

pub async fn job_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(job_id): Path<String>,
) -> Response {
    match require(&state, &headers, BOARD_ROLES, BOARD_PEOPLE) {
        Ok(session) => job_page_with(&state, &session, &job_id, None).await,
        Err(response) => *response,
    }
}

/// The page, with a refused action's words above the forms when there is one.
async fn job_page_with(
    state: &AppState,
    session: &Session,
    job_id: &str,
    refused: Option<tonic::Status>,
) -> Response {
    let job = match get_job(state, session, job_id).await {
        Ok(job) => job,
        Err(status) => return refusal_page(session, &status),
    };
    let supervisor = session.role == Role::Supervisor;
    let now = chrono::Utc::now();
    let detail = JobDetail::of(&job, now);
    let mut dispatch = state.0.dispatch.clone();
    let (recommendations, recommendations_problem) = if detail.open {
        let request = as_person(
            session,
            RecommendUnitsRequest {
                job_id: job.job_id.clone(),
                max_units: 8,
            },
        );
        match async { dispatch.recommend_units(request?).await }.await {
            Ok(response) => (
                response
                    .into_inner()
                    .recommendations
                    .iter()
                    .filter_map(Recommendation::of)
                    .collect(),
                None,
            ),
            Err(status) => (Vec::new(), Some(words::status(&status))),
        }
    } else {
        (Vec::new(), None)
    };
    // the chain is checked when the page opens (and on "verify again"), not
    // every two seconds: it reads the whole log up to the last checkpoint
    let verification = if supervisor {
        let request = as_person(
            session,
            VerifyJobTimelineRequest {
                job_id: job.job_id.clone(),
            },
        );
        match async { dispatch.verify_job_timeline(request?).await }.await {
            Ok(result) => Some(Verification::of(&result.into_inner())),
            Err(status) => Some(Verification {
                intact: false,
                text: format!("Could not verify: {}", words::status(&status)),
            }),
        }
    } else {
        None
    };
    let live_html = job_live_fragment(state, session, job.clone()).await;
    let status = refused.as_ref().map_or(StatusCode::OK, status_for);
    render(
        status,
        &JobPage {
            who: Who::of(session),
            supervisor,
            job: detail,
            problem: refused.as_ref().map(words::status),
            recommendations,
            recommendations_problem,
            live_html,
            verification,
        },
    )
}

/// The job's state and timeline, live.
pub async fn job_live(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(job_id): Path<String>,
) -> Response {
    let session = match require(&state, &headers, BOARD_ROLES, BOARD_PEOPLE) {
        Ok(session) => session,
        Err(response) => return *response,
    };
    live::polled(state, session, move |state, session| {
        let job_id = job_id.clone();
        async move {
            match get_job(&state, &session, &job_id).await {
                Ok(job) => job_live_fragment(&state, &session, job).await,
                Err(status) => render_fragment(&ProblemFragment {
                    problem: words::status(&status),
                }),
            }
        }
    })
}

async fn job_live_fragment(state: &AppState, session: &Session, job: Job) -> String {
    let request = as_person(
        session,
        GetJobTimelineRequest {
            job_id: job.job_id.clone(),
        },
    );
    let mut dispatch = state.0.dispatch.clone();
    let (events, timeline_problem) = match async { dispatch.get_job_timeline(request?).await }.await
    {
        Ok(response) => (
            response
                .into_inner()
                .events
                .iter()
                .map(TimelineRow::of)
                .collect(),
            None,
        ),
        Err(status) => (Vec::new(), Some(words::status(&status))),
    };
    render_fragment(&JobLive {
        job: JobDetail::of(&job, chrono::Utc::now()),
        events,
        timeline_problem,
    })
}

pub async fn get_job(
    state: &AppState,
    session: &Session,
    job_id: &str,
) -> Result<Job, tonic::Status> {
    let request = as_person(
        session,
        GetJobRequest {
            key: Some(Key::JobId(job_id.to_string())),
        },
    )?;
    state
        .0
        .dispatch
        .clone()
        .get_job(request)
        .await?
        .into_inner()
        .job
        .ok_or_else(|| tonic::Status::not_found("no such job"))
}

#[derive(Deserialize)]
pub struct AssignForm {
    csrf: String,
    unit_id: String,
    #[serde(default)]
    reason: String,
}

pub async fn assign(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(job_id): Path<String>,
    Form(form): Form<AssignForm>,
) -> Response {
    let request = AssignJobRequest {
        actor: None,
        job_id: job_id.clone(),
        unit_id: form.unit_id,
        reason: form.reason.trim().to_string(),
    };
    act(
        &state,
        &headers,
        &job_id,
        &form.csrf,
        BOARD_ROLES,
        |mut dispatch, request| async move { dispatch.assign_job(request).await.map(drop) },
        request,
    )
    .await
}

#[derive(Deserialize)]
pub struct ReasonForm {
    csrf: String,
    reason: String,
}

pub async fn cancel(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(job_id): Path<String>,
    Form(form): Form<ReasonForm>,
) -> Response {
    let request = CancelJobRequest {
        actor: None,
        job_id: job_id.clone(),
        reason: form.reason.trim().to_string(),
    };
    act(
        &state,
        &headers,
        &job_id,
        &form.csrf,
        BOARD_ROLES,
        |mut dispatch, request| async move { dispatch.cancel_job(request).await.map(drop) },
        request,
    )
    .await
}

#[derive(Deserialize)]
pub struct RerouteForm {
    csrf: String,
    agency: String,
    reason: String,
}

pub async fn reroute(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(job_id): Path<String>,
    Form(form): Form<RerouteForm>,
) -> Response {
    let request = ApproveRerouteRequest {
        actor: None,
        job_id: job_id.clone(),
        agency: form.agency.trim().to_uppercase(),
        reason: form.reason.trim().to_string(),
    };
    act(
        &state,
        &headers,
        &job_id,
        &form.csrf,
        &[Role::Supervisor],
        |mut dispatch, request| async move { dispatch.approve_reroute(request).await.map(drop) },
        request,
    )
    .await
}

type DispatchClient =
    dispatch311_proto::dispatch::v1::dispatch_service_client::DispatchServiceClient<
        dispatch311_telemetry::grpc::TracedChannel,
    >;

/// One action of the job page: the person's role and the form's CSRF token
/// checked, the call made with their token; then back to the job page
/// (post/redirect/get), or the page again with the refusal in words.
async fn act<T, F, Fut>(
    state: &AppState,
    headers: &HeaderMap,
    job_id: &str,
    csrf: &str,
    roles: &[Role],
    call: F,
    message_to_send: T,
) -> Response
where
    F: FnOnce(DispatchClient, tonic::Request<T>) -> Fut,
    Fut: Future<Output = Result<(), tonic::Status>>,
{
    let session = match require(state, headers, roles, "the roles that may do this") {
        Ok(session) => session,
        Err(response) => return *response,
    };
    if !session.csrf_matches(csrf) {
        return forged_form();
    }
    let outcome = match as_person(&session, message_to_send) {
        Ok(request) => call(state.0.dispatch.clone(), request).await,
        Err(status) => Err(status),
    };
    match outcome {
        Ok(()) => see_other(&format!("/jobs/{job_id}")),
        Err(status) => job_page_with(state, &session, job_id, Some(status)).await,
    }
}

/// A page in words for a job the person cannot see or that does not exist.
pub fn refusal_page(session: &Session, status: &tonic::Status) -> Response {
    message(
        status_for(status),
        Some(session),
        "Cannot show this job",
        &words::status(status),
    )
}

/// One of the complainant's photos (metadata stripped by intake), for an
/// officer of the assigned unit or a supervisor; dispatch records the view
/// as evidence viewed, as its API does for every client.
pub async fn photo(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((job_id, index)): Path<(String, u32)>,
) -> Response {
    let session = match require(
        &state,
        &headers,
        &[Role::Officer, Role::Supervisor],
        "the assigned unit's officers and supervisors",
    ) {
        Ok(session) => session,
        Err(response) => return *response,
    };
    let request = as_person(
        &session,
        GetJobPhotoRequest {
            actor: None,
            job_id: job_id.clone(),
            photo_index: index,
        },
    );
    let mut dispatch = state.0.dispatch.clone();
    let photo = match async { dispatch.get_job_photo(request?).await }.await {
        Ok(response) => response.into_inner(),
        Err(status) => return refusal_page(&session, &status),
    };
    // only the two types intake keeps; anything else is not shown as an image
    if !matches!(photo.content_type.as_str(), "image/jpeg" | "image/png") {
        return message(
            StatusCode::BAD_GATEWAY,
            Some(&session),
            "Cannot show this photo",
            "The photo store answered with something that is not a JPEG or PNG image.",
        );
    }
    let job = photo.job.unwrap_or_default();
    let data_url = format!(
        "data:{};base64,{}",
        photo.content_type,
        base64::engine::general_purpose::STANDARD.encode(&photo.content)
    );
    render(
        StatusCode::OK,
        &PhotoPage {
            who: Who::of(&session),
            sr_number: job.sr_number,
            number: index + 1,
            count: job.photo_count,
            data_url,
            back: if session.role == Role::Officer {
                "/officer".into()
            } else {
                format!("/jobs/{job_id}")
            },
        },
    )
}
