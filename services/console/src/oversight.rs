//! The supervisor's pages: the review list of flagged jobs (live) and the
//! precinct's figures with the complainants' satisfaction beside them.

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::Response,
};
use dispatch311_auth::Role;
use dispatch311_proto::dispatch::v1::{GetPrecinctStatsRequest, ListReviewItemsRequest};
use dispatch311_proto::survey::v1::{GetSatisfactionStatsRequest, GroupBy};

use crate::live;
use crate::session::Session;
use crate::views::{FiguresPage, FiguresWindow, ReviewFragment, ReviewPage, ReviewRow, Who, share};
use crate::web::{AppState, as_person, render, render_fragment, require};
use crate::words;

const SUPERVISORS: &[Role] = &[Role::Supervisor];

pub async fn review(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let session = match require(&state, &headers, SUPERVISORS, "supervisors") {
        Ok(session) => session,
        Err(response) => return *response,
    };
    let live_html = review_fragment(state, session.clone()).await;
    render(
        StatusCode::OK,
        &ReviewPage {
            who: Who::of(&session),
            live_html,
        },
    )
}

pub async fn review_live(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match require(&state, &headers, SUPERVISORS, "supervisors") {
        Ok(session) => live::polled(state, session, review_fragment),
        Err(response) => *response,
    }
}

async fn review_fragment(state: AppState, session: Session) -> String {
    let request = as_person(
        &session,
        ListReviewItemsRequest {
            precinct: session.precinct.clone(),
            page_size: 200,
            page_token: String::new(),
        },
    );
    let mut dispatch = state.0.dispatch.clone();
    let fragment = match async { dispatch.list_review_items(request?).await }.await {
        Ok(response) => ReviewFragment {
            items: ReviewRow::group(&response.into_inner().items),
            problem: None,
        },
        Err(status) => ReviewFragment {
            items: Vec::new(),
            problem: Some(words::status(&status)),
        },
    };
    render_fragment(&fragment)
}

/// The windows the figures are given for, most recent first.
const WINDOWS: [(&str, i64); 3] = [
    ("the last 24 hours", 1),
    ("the last 7 days", 7),
    ("the last 30 days", 30),
];

pub async fn figures(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let session = match require(&state, &headers, SUPERVISORS, "supervisors") {
        Ok(session) => session,
        Err(response) => return *response,
    };
    let windows = futures::future::join_all(
        WINDOWS
            .iter()
            .map(|(label, days)| figures_of(&state, &session, label, *days)),
    )
    .await;
    render(
        StatusCode::OK,
        &FiguresPage {
            who: Who::of(&session),
            windows,
        },
    )
}

async fn figures_of(
    state: &AppState,
    session: &Session,
    label: &'static str,
    days: i64,
) -> FiguresWindow {
    let end = chrono::Utc::now();
    let start = end - chrono::Duration::days(days);
    let timestamp = |at: chrono::DateTime<chrono::Utc>| prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: 0,
    };
    let stats = as_person(
        session,
        GetPrecinctStatsRequest {
            precinct: session.precinct.clone(),
            window_start: Some(timestamp(start)),
            window_end: Some(timestamp(end)),
        },
    );
    let satisfaction = as_person(
        session,
        GetSatisfactionStatsRequest {
            group_by: GroupBy::Precinct as i32,
            precinct: session.precinct.clone(),
            closed_from: Some(timestamp(start)),
            closed_to: Some(timestamp(end)),
            ..Default::default()
        },
    );
    let mut dispatch = state.0.dispatch.clone();
    let mut survey = state.0.survey.clone();
    let (stats, satisfaction) =
        tokio::join!(async { dispatch.get_precinct_stats(stats?).await }, async {
            survey.get_satisfaction_stats(satisfaction?).await
        });
    let stats = match stats {
        Ok(stats) => stats.into_inner(),
        Err(status) => {
            return FiguresWindow {
                label,
                problem: Some(words::status(&status)),
                received: 0,
                closed: 0,
                within_5_minutes: String::new(),
                with_summons: String::new(),
                median_to_arrival: String::new(),
                sla_breaches: 0,
                flagged: 0,
                satisfaction: String::new(),
            };
        }
    };
    // satisfaction missing (survey down) leaves the dispatch figures standing
    let satisfaction = match satisfaction {
        Ok(response) => match response.into_inner().groups.first() {
            Some(group) if group.responses > 0 => format!(
                "{} of {} answers",
                share(group.share_satisfied, group.responses),
                group.responses
            ),
            _ => "no survey answers yet".into(),
        },
        Err(status) => words::status(&status),
    };
    FiguresWindow {
        label,
        problem: None,
        received: stats.jobs_received,
        closed: stats.jobs_closed,
        within_5_minutes: share(stats.share_closed_within_5_minutes, stats.jobs_closed),
        with_summons: share(stats.share_with_summons, stats.jobs_closed),
        median_to_arrival: if stats.jobs_closed == 0 && stats.median_seconds_to_arrival == 0.0 {
            "—".into()
        } else {
            words::duration(stats.median_seconds_to_arrival.round() as i64)
        },
        sla_breaches: stats.sla_breaches,
        flagged: stats.flagged_jobs,
        satisfaction,
    }
}
