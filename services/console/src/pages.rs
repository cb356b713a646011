//! The handlers of sign-in and out and of the board (queue and units).
//! Each call to
//! a service carries the signed-in person's own token; a role the console
//! turns away here (an officer on the board) the services would refuse too.

use std::time::Duration;

use axum::{
    Form,
    extract::{Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Response},
};
use dispatch311_auth::Role;
use dispatch311_proto::dispatch::v1::{JobFilter, ListJobsRequest, ListUnitsRequest};
use serde::Deserialize;

use crate::live;
use crate::session::Session;
use crate::views::{
    BoardFragment, BoardPage, FilterLink, JobRow, QueueFragment, SignInPage, SignedInPage, UnitRow,
    Who,
};
use crate::web::{
    AppState, as_person, forged_form, message, render, render_fragment, require, see_other,
};
use crate::words;

/// Where a signed-in person starts: the board, or the sign-in page.
pub async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match state.session(&headers) {
        Some(session) if is_board_role(session.role) => see_other("/board"),
        Some(session) if session.role == Role::Officer => see_other("/officer"),
        Some(session) => message(
            StatusCode::FORBIDDEN,
            Some(&session),
            "Nothing here for your role",
            "The console is for dispatchers, supervisors and officers.",
        ),
        None => see_other("/sign-in"),
    }
}

pub async fn sign_in_page(State(state): State<AppState>) -> Response {
    sign_in_with(&state, StatusCode::OK, None)
}

/// The sign-in page, with a fresh form token paired with the browser.
fn sign_in_with(state: &AppState, status: StatusCode, problem: Option<String>) -> Response {
    let (csrf, cookie) = state.sign_in_csrf();
    let mut response = render(
        status,
        &SignInPage {
            dev: state.0.dev_signer.is_some(),
            oidc: state.0.oidc.is_some(),
            problem,
            csrf,
        },
    );
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

#[derive(Deserialize)]
pub struct PrecinctForm {
    precinct: String,
    #[serde(default)]
    csrf: String,
}

/// Starts a sign-in at the city's identity provider: the flow (state and
/// PKCE verifier) sealed into a cookie, the browser sent to the provider.
pub async fn sign_in_oidc(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<PrecinctForm>,
) -> Response {
    if !state.sign_in_csrf_matches(&headers, &form.csrf) {
        return forged_form();
    }
    let Some(oidc) = &state.0.oidc else {
        return sign_in_with(
            &state,
            StatusCode::NOT_FOUND,
            Some("This console has no identity provider configured.".into()),
        );
    };
    let Some(precinct) = valid_precinct(&form.precinct) else {
        return sign_in_with(
            &state,
            StatusCode::BAD_REQUEST,
            Some("A precinct is its number, e.g. 14.".into()),
        );
    };
    match oidc.start(precinct).await {
        Ok((flow, location)) => {
            let mut response = see_other(&location);
            response
                .headers_mut()
                .insert(header::SET_COOKIE, state.flow_cookie(&flow));
            response
        }
        Err(error) => {
            tracing::warn!(error = %error, cause = ?std::error::Error::source(&error), "cannot start a sign-in");
            sign_in_with(
                &state,
                StatusCode::SERVICE_UNAVAILABLE,
                Some(error.to_string()),
            )
        }
    }
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The identity provider sends the browser back here: the state must be
/// the flow's, the code is exchanged, the token checked as the services
/// check it; then the session.
pub async fn sign_in_callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let Some(oidc) = &state.0.oidc else {
        return see_other("/sign-in");
    };
    let refused = |status, problem: String| {
        let mut response = sign_in_with(&state, status, Some(problem));
        response
            .headers_mut()
            .insert(header::SET_COOKIE, state.cleared_flow_cookie());
        response
    };
    let Some(flow) = state.sign_in_flow(&headers) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "This sign-in was not started here or took longer than ten minutes; start again."
                .into(),
        );
    };
    let state_matches = query
        .state
        .as_deref()
        .is_some_and(|sent| crate::session::same_secret(&flow.state, sent));
    if !state_matches {
        return refused(
            StatusCode::BAD_REQUEST,
            "This answer does not belong to your sign-in; start again.".into(),
        );
    }
    if let Some(error) = query.error {
        let words = query.error_description.unwrap_or(error);
        return refused(
            StatusCode::FORBIDDEN,
            format!("The identity provider refused the sign-in: {words}"),
        );
    }
    let Some(code) = query.code.filter(|code| !code.is_empty()) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "The identity provider sent no code back; start again.".into(),
        );
    };
    let signed_in = match oidc.finish(&flow, &code).await {
        Ok(signed_in) => signed_in,
        Err(error) => {
            tracing::warn!(error = %error, "a sign-in at the identity provider did not complete");
            let status = match error {
                crate::oidc::SignInError::Unreachable(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::FORBIDDEN,
            };
            return refused(status, error.to_string());
        }
    };
    let longest = chrono::Utc::now().timestamp() + state.0.session_hours as i64 * 3_600;
    let session = Session::new(
        signed_in.token,
        signed_in.role,
        signed_in.subject,
        flow.precinct,
        signed_in.expires_at.min(longest),
    );
    tracing::info!(role = ?session.role, "signed in (identity provider)");
    let mut response = render(
        StatusCode::OK,
        &SignedInPage {
            next: if is_board_role(session.role) {
                "/board"
            } else {
                "/officer"
            },
        },
    );
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, state.session_cookie(&session));
    headers.append(header::SET_COOKIE, state.cleared_flow_cookie());
    response
}

/// A precinct number as people type it: 1 to 4 digits.
fn valid_precinct(text: &str) -> Option<&str> {
    let precinct = text.trim();
    ((1..=4).contains(&precinct.len()) && precinct.bytes().all(|b| b.is_ascii_digit()))
        .then_some(precinct)
}

#[derive(Deserialize)]
pub struct SignInForm {
    role: String,
    subject: String,
    precinct: String,
    #[serde(default)]
    csrf: String,
}

/// The development sign-in: a token for the chosen role, signed with the
/// development key, sealed into the session cookie.
pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    if !state.sign_in_csrf_matches(&headers, &form.csrf) {
        return forged_form();
    }
    let Some(signer) = &state.0.dev_signer else {
        return message(
            StatusCode::NOT_FOUND,
            None,
            "No development sign-in",
            "This console signs in through the city's identity provider only.",
        );
    };
    let role = match form.role.as_str() {
        "supervisor" => Role::Supervisor,
        "dispatcher" => Role::Dispatcher,
        "officer" => Role::Officer,
        _ => return sign_in_refused(&state, "Choose one of the roles offered."),
    };
    let subject = form.subject.trim();
    let valid_subject = (1..=64).contains(&subject.len())
        && subject
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !valid_subject {
        return sign_in_refused(
            &state,
            "A badge or staff number is 1 to 64 letters, digits, '-', '_' or '.'.",
        );
    }
    let Some(precinct) = valid_precinct(&form.precinct) else {
        return sign_in_refused(&state, "A precinct is its number, e.g. 14.");
    };
    let lifetime = Duration::from_secs(state.0.session_hours * 3_600);
    let token = match signer.mint(subject, role, lifetime) {
        Ok(token) => token,
        Err(error) => {
            tracing::error!(%error, "cannot sign a development token");
            return message(
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                "Sign-in failed",
                "The development key could not sign a token; see the console's log.",
            );
        }
    };
    let expires_at = chrono::Utc::now().timestamp() + lifetime.as_secs() as i64;
    let session = Session::new(token, role, subject.into(), precinct.into(), expires_at);
    tracing::info!(role = ?role, "signed in (development sign-in)");
    let mut response = see_other(if is_board_role(role) {
        "/board"
    } else {
        "/officer"
    });
    response
        .headers_mut()
        .insert(header::SET_COOKIE, state.session_cookie(&session));
    response
}

fn sign_in_refused(state: &AppState, problem: &str) -> Response {
    sign_in_with(state, StatusCode::BAD_REQUEST, Some(problem.into()))
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(session) = state.session(&headers)
        && !session.csrf_matches(&form.csrf)
    {
        return forged_form();
    }
    let mut response = see_other("/sign-in");
    response
        .headers_mut()
        .insert(header::SET_COOKIE, state.cleared_cookie());
    response
}

#[derive(Deserialize, Default)]
pub struct BoardQuery {
    #[serde(default)]
    show: String,
}

/// What the board can list, as `?show=` names it: every open job (the
/// first, and the default), or one slice of them.
const BOARD_FILTERS: [(&str, JobFilter, &str); 4] = [
    ("open", JobFilter::Open, "Open jobs"),
    ("overdue", JobFilter::Overdue, "Overdue"),
    ("flagged", JobFilter::Flagged, "Flagged"),
    ("assigned", JobFilter::Assigned, "Assigned"),
];

/// The filter `show` names (`open` for anything else): its name, as it goes
/// back into a URL, the filter and its label.
fn board_filter(show: &str) -> (&'static str, JobFilter, &'static str) {
    BOARD_FILTERS
        .into_iter()
        .find(|(name, _, _)| *name == show)
        .unwrap_or(BOARD_FILTERS[0])
}

/// Dispatchers and supervisors: the board, the job pages.
pub const BOARD_ROLES: &[Role] = &[Role::Dispatcher, Role::Supervisor];
pub const BOARD_PEOPLE: &str = "dispatchers and supervisors";

fn is_board_role(role: Role) -> bool {
    BOARD_ROLES.contains(&role)
}

pub async fn board(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<BoardQuery>,
) -> Response {
    let session = match require(&state, &headers, BOARD_ROLES, BOARD_PEOPLE) {
        Ok(session) => session,
        Err(response) => return *response,
    };
    let (current, _, _) = board_filter(&query.show);
    let filters = BOARD_FILTERS
        .into_iter()
        .map(|(show, _, label)| FilterLink {
            label,
            href: format!("/board?show={show}"),
            current: show == current,
        })
        .collect();
    let live_html = board_fragment(state, session.clone(), current).await;
    render(
        StatusCode::OK,
        &BoardPage {
            who: Who::of(&session),
            filters,
            live_url: format!("/board/live?show={current}"),
            live_html,
        },
    )
}

/// The board's live part alone (the queue and the units), e.g. for a
/// script that reloads one part.
pub async fn board_part(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<BoardQuery>,
) -> Response {
    match require(&state, &headers, BOARD_ROLES, BOARD_PEOPLE) {
        Ok(session) => {
            let (show, _, _) = board_filter(&query.show);
            Html(board_fragment(state, session, show).await).into_response()
        }
        Err(response) => *response,
    }
}

/// The board's queue and units, live: sent whenever they changed, asked of
/// dispatch every two seconds with the person's token.
pub async fn board_live(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<BoardQuery>,
) -> Response {
    let session = match require(&state, &headers, BOARD_ROLES, BOARD_PEOPLE) {
        Ok(session) => session,
        Err(response) => return *response,
    };
    let (show, _, _) = board_filter(&query.show);
    live::polled(state, session, move |state, session| {
        board_fragment(state, session, show)
    })
}

/// The queue and the units of the person's precinct, rendered; a refusal
/// or an outage is shown in words in their place.
async fn board_fragment(state: AppState, session: Session, show: &'static str) -> String {
    let (_, filter, filter_label) = board_filter(show);
    let dispatch = state.0.dispatch.clone();
    let jobs = as_person(
        &session,
        ListJobsRequest {
            precinct: session.precinct.clone(),
            filter: filter as i32,
            page_size: 500,
            ..Default::default()
        },
    );
    let units = as_person(
        &session,
        ListUnitsRequest {
            precinct: session.precinct.clone(),
            page_size: 500,
            ..Default::default()
        },
    );
    let (jobs, units) = tokio::join!(
        async {
            let mut dispatch = dispatch.clone();
            dispatch.list_jobs(jobs?).await
        },
        async {
            let mut dispatch = dispatch.clone();
            dispatch.list_units(units?).await
        }
    );
    let now = chrono::Utc::now();
    let jobs = jobs.map(|response| response.into_inner().jobs);
    let queue = match &jobs {
        Ok(jobs) => QueueFragment {
            rows: jobs.iter().map(|job| JobRow::of(job, now)).collect(),
            problem: None,
            filter_label,
        },
        Err(status) => QueueFragment {
            rows: Vec::new(),
            problem: Some(words::status(status)),
            filter_label,
        },
    };
    let known_jobs = jobs.as_deref().unwrap_or_default();
    let (units, units_problem) = match units {
        Ok(response) => (
            response
                .into_inner()
                .units
                .iter()
                .map(|unit| UnitRow::of(unit, known_jobs, now))
                .collect(),
            None,
        ),
        Err(status) => (Vec::new(), Some(words::status(&status))),
    };
    render_fragment(&BoardFragment {
        queue,
        units,
        units_problem,
    })
}

pub async fn stylesheet() -> Response {
    static_file(
        "text/css; charset=utf-8",
        include_str!("../static/console.css"),
    )
}

pub async fn script() -> Response {
    static_file(
        "text/javascript; charset=utf-8",
        include_str!("../static/console.js"),
    )
}

fn static_file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}
