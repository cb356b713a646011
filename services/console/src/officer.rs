//! The officer's screen (phone first): the unit's assignment arriving live
//! from `WatchAssignments`, one tap for each step of the lifecycle (with the
//! browser's position where it counts), the photos, the close form with the
//! city's resolution codes, and a question relayed to the complainant. A
//! rule's refusal comes back as the page with the refusal in words next to
//! the form.

use axum::{
    Form,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{Response, sse::Event},
};
use dispatch311_auth::Role;
use dispatch311_proto::common::v1::{GeoPoint, ResolutionCode};
use dispatch311_proto::dispatch::v1::{
    AcknowledgeJobRequest, AssignmentChange, CloseJobRequest, ListUnitsRequest,
    RelayMessageToComplainantRequest, ReportEnRouteRequest, ReportOnSceneRequest, Unit,
    WatchAssignmentsRequest,
};
use futures::StreamExt as _;
use serde::Deserialize;

use crate::jobs::get_job;
use crate::live;
use crate::session::Session;
use crate::views::{AssignmentFragment, OfficerPage, Who};
use crate::web::{
    AppState, as_person, forged_form, message, render, render_fragment, require, see_other,
    status_for,
};
use crate::words;

const OFFICERS: &[Role] = &[Role::Officer];

#[derive(Deserialize, Default)]
pub struct OfficerQuery {
    /// `question`: a question was just relayed.
    #[serde(default)]
    sent: String,
    /// The SR number of the job just closed.
    #[serde(default)]
    closed: String,
}

pub async fn officer_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<OfficerQuery>,
) -> Response {
    let session = match require(&state, &headers, OFFICERS, "officers") {
        Ok(session) => session,
        Err(response) => return *response,
    };
    let notice = if query.sent == "question" {
        Some(
            "Your question went to the complainant; their answer reaches the precinct on the job's timeline."
                .to_string(),
        )
    } else if is_sr_number(&query.closed) {
        Some(format!("{} is closed.", query.closed))
    } else {
        None
    };
    officer_page_with(&state, &session, notice, None).await
}

/// The screen, with a notice or a refused step's words when there is one.
async fn officer_page_with(
    state: &AppState,
    session: &Session,
    notice: Option<String>,
    refused: Option<tonic::Status>,
) -> Response {
    let unit = match my_unit(state, session).await {
        Ok(unit) => unit,
        Err(response) => return *response,
    };
    let job = if unit.current_job_id.is_empty() {
        None
    } else {
        match get_job(state, session, &unit.current_job_id).await {
            Ok(job) => Some(job),
            Err(status) => {
                return message(
                    status_for(&status),
                    Some(session),
                    "Cannot show your assignment",
                    &words::status(&status),
                );
            }
        }
    };
    let mut fragment = AssignmentFragment::new(&session.csrf, job.as_ref(), notice);
    let status = refused.as_ref().map_or(StatusCode::OK, status_for);
    fragment.problem = refused.as_ref().map(words::status);
    render(
        status,
        &OfficerPage {
            who: Who::of(session),
            call_sign: unit.call_sign.clone(),
            live_url: "/officer/live".into(),
            assignment_html: render_fragment(&fragment),
        },
    )
}

/// The unit the officer rides in: the precinct's unit whose crew lists the
/// signed-in badge number.
async fn my_unit(state: &AppState, session: &Session) -> Result<Unit, Box<Response>> {
    let request = as_person(
        session,
        ListUnitsRequest {
            precinct: session.precinct.clone(),
            page_size: 1_000,
            page_token: String::new(),
        },
    );
    let mut dispatch = state.0.dispatch.clone();
    let units = match async { dispatch.list_units(request?).await }.await {
        Ok(response) => response.into_inner().units,
        Err(status) => {
            return Err(Box::new(message(
                status_for(&status),
                Some(session),
                "Cannot find your unit",
                &words::status(&status),
            )));
        }
    };
    units
        .into_iter()
        .find(|unit| unit.officer_ids.contains(&session.subject))
        .ok_or_else(|| {
            Box::new(message(
                StatusCode::NOT_FOUND,
                Some(session),
                "No unit",
                &format!(
                    "No unit of precinct {} has badge {} in its crew: ask your dispatcher to put you on a unit, then reload.",
                    session.precinct, session.subject
                ),
            ))
        })
}

/// The unit's assignment, live: every change `WatchAssignments` sends
/// becomes the assignment part again, with its sequence as the event id, so
/// a browser that reconnects (`Last-Event-ID`) resumes without losing one.
pub async fn officer_live(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let session = match require(&state, &headers, OFFICERS, "officers") {
        Ok(session) => session,
        Err(response) => return *response,
    };
    let unit = match my_unit(&state, &session).await {
        Ok(unit) => unit,
        Err(response) => return *response,
    };
    let after_sequence = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<i64>().ok())
        .unwrap_or(0);
    let request = as_person(
        &session,
        WatchAssignmentsRequest {
            unit_id: unit.unit_id.clone(),
            after_sequence,
        },
    );
    let mut dispatch = state.0.dispatch.clone();
    let state_for_events = state.clone();
    let changes = match async { dispatch.watch_assignments(request?).await }.await {
        Ok(response) => response.into_inner(),
        Err(status) => {
            return message(
                status_for(&status),
                Some(&session),
                "Cannot follow your assignments",
                &words::status(&status),
            );
        }
    };
    // each change shows the assignment as it is now (a replay after a
    // reconnection then shows the same page, which the script leaves alone)
    let unit_id = unit.unit_id;
    // the stream stops when the sign-in runs out, and says so: the page reloads to the sign-in
    let ends_at = session.expires_at;
    let left = (ends_at - chrono::Utc::now().timestamp()).max(0) as u64;
    let changes = changes.take_until(tokio::time::sleep(std::time::Duration::from_secs(left)));
    let events = changes.then(move |change| {
        let (state, session, unit_id) =
            (state_for_events.clone(), session.clone(), unit_id.clone());
        async move {
            let change = match change {
                Ok(change) => change,
                // the stream ends here; the browser reconnects with the last id
                Err(status) => {
                    tracing::warn!(%status, "the assignment watch ended");
                    return Ok(Event::default().comment("reconnecting"));
                }
            };
            let job = change.job.unwrap_or_default();
            let now_held = match get_job(&state, &session, &job.job_id).await {
                Ok(current) if current.unit_id == unit_id && is_open(&current) => Some(current),
                _ => None,
            };
            let notice = match AssignmentChange::try_from(change.change) {
                Ok(AssignmentChange::Unassigned) => {
                    Some(format!("{} was taken from your unit.", job.sr_number))
                }
                Ok(AssignmentChange::Closed) => Some(format!("{} is closed.", job.sr_number)),
                _ => None,
            };
            let fragment = AssignmentFragment::new(&session.csrf, now_held.as_ref(), notice);
            Ok(Event::default()
                .event("update")
                .id(change.sequence.to_string())
                .data(render_fragment(&fragment)))
        }
    });
    let tail = futures::stream::once(async move { chrono::Utc::now().timestamp() >= ends_at })
        .filter_map(|over| std::future::ready(over.then(live::signed_out)));
    live::stream_until_closing(&state, events.chain(tail))
}

#[derive(Deserialize)]
pub struct StepForm {
    csrf: String,
    #[serde(default)]
    latitude: String,
    #[serde(default)]
    longitude: String,
    #[serde(default)]
    resolution: String,
    #[serde(default)]
    summons_number: String,
    #[serde(default)]
    duplicate_of: String,
    #[serde(default)]
    notes: String,
    #[serde(default)]
    message: String,
}

impl StepForm {
    /// The browser's position, when it gave one.
    fn position(&self) -> Option<GeoPoint> {
        Some(GeoPoint {
            latitude: self.latitude.trim().parse().ok()?,
            longitude: self.longitude.trim().parse().ok()?,
        })
    }
}

/// One step of the officer's: `acknowledge`, `en-route`, `on-scene`,
/// `close` or `relay`.
pub async fn step(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((job_id, step)): Path<(String, String)>,
    Form(form): Form<StepForm>,
) -> Response {
    let session = match require(&state, &headers, OFFICERS, "officers") {
        Ok(session) => session,
        Err(response) => return *response,
    };
    if !session.csrf_matches(&form.csrf) {
        return forged_form();
    }
    let mut dispatch = state.0.dispatch.clone();
    let position = form.position();
    let outcome = match step.as_str() {
        "acknowledge" => {
            let request = AcknowledgeJobRequest {
                actor: None,
                job_id,
                position,
            };
            async {
                dispatch
                    .acknowledge_job(as_person(&session, request)?)
                    .await
                    .map(drop)
            }
            .await
        }
        "en-route" => {
            let request = ReportEnRouteRequest {
                actor: None,
                job_id,
                position,
            };
            async {
                dispatch
                    .report_en_route(as_person(&session, request)?)
                    .await
                    .map(drop)
            }
            .await
        }
        "on-scene" => {
            if position.is_none() {
                Err(tonic::Status::invalid_argument(
                    "your position is needed to report on scene: allow location for this site in the browser, then tap \"On scene\" again",
                ))
            } else {
                let request = ReportOnSceneRequest {
                    actor: None,
                    job_id,
                    position,
                };
                async {
                    dispatch
                        .report_on_scene(as_person(&session, request)?)
                        .await
                        .map(drop)
                }
                .await
            }
        }
        "close" => match ResolutionCode::from_str_name(form.resolution.trim()) {
            Some(code) if code != ResolutionCode::Unspecified => {
                let request = CloseJobRequest {
                    actor: None,
                    job_id,
                    resolution_code: code as i32,
                    summons_number: form.summons_number.trim().to_string(),
                    notes: form.notes.trim().to_string(),
                    position,
                    duplicate_of_sr_number: form.duplicate_of.trim().to_string(),
                };
                let closed =
                    async { dispatch.close_job(as_person(&session, request)?).await }.await;
                match closed {
                    Ok(response) => {
                        let sr_number = response.into_inner().job.unwrap_or_default().sr_number;
                        return if is_sr_number(&sr_number) {
                            see_other(&format!("/officer?closed={sr_number}"))
                        } else {
                            see_other("/officer")
                        };
                    }
                    Err(status) => Err(status),
                }
            }
            _ => Err(tonic::Status::invalid_argument(
                "choose what you did from the list, then close again",
            )),
        },
        "relay" => {
            let request = RelayMessageToComplainantRequest {
                actor: None,
                job_id,
                message: form.message.trim().to_string(),
            };
            return match async {
                dispatch
                    .relay_message_to_complainant(as_person(&session, request)?)
                    .await
            }
            .await
            {
                Ok(_) => see_other("/officer?sent=question"),
                Err(status) => officer_page_with(&state, &session, None, Some(status)).await,
            };
        }
        _ => {
            return message(
                StatusCode::NOT_FOUND,
                Some(&session),
                "No such step",
                "Go back to your assignment and use its buttons.",
            );
        }
    };
    match outcome {
        Ok(()) => see_other("/officer"),
        Err(status) => officer_page_with(&state, &session, None, Some(status)).await,
    }
}

/// An SR number as dispatch writes them (it goes back into a URL as is).
fn is_sr_number(text: &str) -> bool {
    (1..=32).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn is_open(job: &dispatch311_proto::dispatch::v1::Job) -> bool {
    use dispatch311_proto::dispatch::v1::JobState;
    !matches!(
        JobState::try_from(job.state).unwrap_or(JobState::Unspecified),
        JobState::Closed | JobState::Cancelled | JobState::Rerouted
    )
}
