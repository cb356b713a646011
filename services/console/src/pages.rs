//! The handlers: sign-in and out, the board and its live queue. Each call to
//! a service carries the signed-in person's own token; a role the console
//! turns away here (an officer on the board) the services would refuse too.

use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use axum::{
    Form,
    extract::{Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{
        Html, IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use dispatch311_auth::{Role, client::with_token};
use dispatch311_proto::dispatch::v1::{JobFilter, ListJobsRequest};
use futures::Stream;
use serde::Deserialize;

use crate::session::Session;
use crate::views::{BoardPage, FilterLink, JobRow, MessagePage, QueueFragment, SignInPage, Who};
use crate::web::{AppState, see_other};
use crate::words;

/// How often a live board asks dispatch for its queue.
const LIVE_EVERY: Duration = Duration::from_secs(2);

/// Where a signed-in person starts: the board, or the sign-in page.
pub async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match state.session(&headers) {
        Some(session) if is_board_role(session.role) => see_other("/board"),
        Some(session) => message(
            StatusCode::FORBIDDEN,
            Some(&session),
            "Nothing here yet",
            "The officer's screen is not ready yet; the board is for dispatchers and supervisors.",
        ),
        None => see_other("/sign-in"),
    }
}

pub async fn sign_in_page(State(state): State<AppState>) -> Response {
    render(
        StatusCode::OK,
        &SignInPage {
            dev: state.0.dev_signer.is_some(),
            problem: None,
        },
    )
}

#[derive(Deserialize)]
pub struct SignInForm {
    role: String,
    subject: String,
    precinct: String,
}

/// The development sign-in: a token for the chosen role, signed with the
/// development key, sealed into the session cookie.
pub async fn sign_in(State(state): State<AppState>, Form(form): Form<SignInForm>) -> Response {
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
        _ => return sign_in_refused("Choose one of the roles offered."),
    };
    let subject = form.subject.trim();
    let valid_subject = (1..=64).contains(&subject.len())
        && subject
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !valid_subject {
        return sign_in_refused(
            "A badge or staff number is 1 to 64 letters, digits, '-', '_' or '.'.",
        );
    }
    let precinct = form.precinct.trim();
    if !(1..=4).contains(&precinct.len()) || !precinct.bytes().all(|b| b.is_ascii_digit()) {
        return sign_in_refused("A precinct is its number, e.g. 14.");
    }
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
    let mut response = see_other(if is_board_role(role) { "/board" } else { "/" });
    response
        .headers_mut()
        .insert(header::SET_COOKIE, state.session_cookie(&session));
    response
}

fn sign_in_refused(problem: &str) -> Response {
    render(
        StatusCode::BAD_REQUEST,
        &SignInPage {
            dev: true,
            problem: Some(problem.into()),
        },
    )
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

pub async fn board(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<BoardQuery>,
) -> Response {
    let session = match board_session(&state, &headers) {
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
    let queue = queue_fragment(&state, &session, &query.show).await;
    render(
        StatusCode::OK,
        &BoardPage {
            who: Who::of(&session),
            filters,
            live_url: format!("/board/live?show={current}"),
            queue_html: queue,
        },
    )
}

/// The queue table alone (what the live stream sends, for a reload of one part).
pub async fn board_queue(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<BoardQuery>,
) -> Response {
    match board_session(&state, &headers) {
        Ok(session) => Html(queue_fragment(&state, &session, &query.show).await).into_response(),
        Err(response) => *response,
    }
}

/// The board's queue, live: a server-sent event with the table whenever it
/// changed, asked of dispatch every two seconds with the person's token.
pub async fn board_live(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<BoardQuery>,
) -> Response {
    let session = match board_session(&state, &headers) {
        Ok(session) => session,
        Err(response) => return *response,
    };
    Sse::new(queue_updates(state, session, query.show))
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn queue_updates(
    state: AppState,
    session: Session,
    show: String,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let closing = state.0.closing.clone();
    let updates = futures::stream::unfold(
        (state, session, show, String::new(), true),
        |(state, session, show, last, first)| async move {
            loop {
                if !first {
                    tokio::time::sleep(LIVE_EVERY).await;
                }
                if chrono::Utc::now().timestamp() >= session.expires_at {
                    let event = Event::default().event("signed-out").data("");
                    return Some((Ok(event), (state, session, show, last, false)));
                }
                let html = queue_fragment(&state, &session, &show).await;
                if html != last {
                    let event = Event::default().event("update").data(html.clone());
                    return Some((Ok(event), (state, session, show, html, false)));
                }
            }
        },
    );
    // ends at shutdown, so the server can drain; the browser reconnects
    futures::StreamExt::take_until(updates, async move { closing.cancelled().await })
}

/// The queue of the person's precinct, rendered; a refusal or an outage is
/// shown in words in its place.
async fn queue_fragment(state: &AppState, session: &Session, show: &str) -> String {
    let (_, filter, filter_label) = board_filter(show);
    let listed = async {
        let request = with_token(
            ListJobsRequest {
                precinct: session.precinct.clone(),
                filter: filter as i32,
                page_size: 500,
                ..Default::default()
            },
            &session.token,
        )
        .map_err(|error| tonic::Status::internal(error.to_string()))?;
        state.0.dispatch.clone().list_jobs(request).await
    }
    .await;
    let now = chrono::Utc::now();
    let fragment = match listed {
        Ok(response) => QueueFragment {
            rows: response
                .into_inner()
                .jobs
                .iter()
                .map(|job| JobRow::of(job, now))
                .collect(),
            problem: None,
            filter_label,
        },
        Err(status) => QueueFragment {
            rows: Vec::new(),
            problem: Some(words::status(&status)),
            filter_label,
        },
    };
    fragment.render().unwrap_or_else(|error| {
        tracing::error!(%error, "cannot render the queue");
        String::new()
    })
}

fn is_board_role(role: Role) -> bool {
    matches!(role, Role::Dispatcher | Role::Supervisor)
}

/// The session of a dispatcher or supervisor, or the answer that turns
/// anyone else away (the sign-in page for nobody, 403 for other roles).
fn board_session(state: &AppState, headers: &HeaderMap) -> Result<Session, Box<Response>> {
    match state.session(headers) {
        Some(session) if is_board_role(session.role) => Ok(session),
        Some(session) => Err(Box::new(message(
            StatusCode::FORBIDDEN,
            Some(&session),
            "Not for your role",
            "The board is for dispatchers and supervisors.",
        ))),
        None => Err(Box::new(see_other("/sign-in"))),
    }
}

fn forged_form() -> Response {
    message(
        StatusCode::FORBIDDEN,
        None,
        "Form refused",
        "This form did not come from your console page; reload the page and try again.",
    )
}

fn message(status: StatusCode, session: Option<&Session>, title: &str, text: &str) -> Response {
    render(
        status,
        &MessagePage {
            who: session.map(Who::of),
            title: title.into(),
            message: text.into(),
        },
    )
}

fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error) => {
            tracing::error!(%error, "cannot render a page");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
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
