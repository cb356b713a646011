//! Live sections over server-sent events. A page's section with
//! `data-live="/url"` (static/console.js) is replaced by each `update` event
//! of that stream; `signed-out` sends the browser back to the sign-in page.
//! Every stream ends at shutdown, so the server can drain; the browser
//! reconnects (to another replica) by itself.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use axum::response::{
    IntoResponse, Response,
    sse::{Event, KeepAlive, Sse},
};
use futures::{Stream, StreamExt as _};

use crate::session::Session;
use crate::web::AppState;

/// How often a polled section asks the services again.
const POLL_EVERY: Duration = Duration::from_secs(2);

/// A section re-rendered every two seconds with the person's token (a
/// service call each time: the console keeps nothing), sent whenever its
/// HTML changed.
pub fn polled<F, Fut>(state: AppState, session: Session, render: F) -> Response
where
    F: Fn(AppState, Session) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = String> + Send + 'static,
{
    let updates = futures::stream::unfold(
        (state.clone(), session, render, String::new(), true),
        |(state, session, render, last, first)| async move {
            loop {
                if !first {
                    tokio::time::sleep(POLL_EVERY).await;
                }
                if session_ended(&session) {
                    return Some((signed_out(), (state, session, render, last, false)));
                }
                let html = render(state.clone(), session.clone()).await;
                if html != last {
                    let event = Event::default().event("update").data(html.clone());
                    return Some((Ok(event), (state, session, render, html, false)));
                }
            }
        },
    );
    stream_until_closing(&state, updates)
}

/// The person's sign-in has run out: the page stops following and reloads.
pub fn session_ended(session: &Session) -> bool {
    chrono::Utc::now().timestamp() >= session.expires_at
}

pub fn signed_out() -> Result<Event, Infallible> {
    Ok(Event::default().event("signed-out").data(""))
}

/// `events` as a server-sent event stream that ends at shutdown.
pub fn stream_until_closing(
    state: &AppState,
    events: impl Stream<Item = Result<Event, Infallible>> + Send + 'static,
) -> Response {
    let closing = state.0.closing.clone();
    Sse::new(events.take_until(async move { closing.cancelled().await }))
        .keep_alive(KeepAlive::default())
        .into_response()
}
