//! dispatch311's console: the dispatcher's and supervisor's live board, job
//! pages, review list and figures, and the officer's screen, in the browser.
//! A web server that renders HTML
//! on the server and calls the services over gRPC with the signed-in
//! person's own bearer token, so every rule, role check and audit record
//! stays in the services; it holds no data of its own (sessions are sealed
//! cookies) and never a complainant's contact.
//!
//! Layout: `config` (settings), `session` (sealed cookies, CSRF), `web`
//! (shared state, per-request trace and security headers, role checks),
//! `live` (server-sent events), `oidc` (the identity provider's sign-in); the handlers: `pages` (sign-in, board),
//! `jobs` (a job's page and actions, photos), `oversight` (review, figures),
//! `officer` (the officer's screen); the routes are at the end of this file;
//! `views` (the HTML templates' data), `words` (gRPC statuses and codes in
//! plain words).

mod config;
mod jobs;
mod live;
mod officer;
mod oidc;
mod oversight;
mod pages;
pub mod session;
mod views;
mod web;
mod words;

use std::net::SocketAddr;

use axum::{
    Router, middleware,
    routing::{get, post},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::{ConsoleArgs, ConsoleConfig};

/// A console bound to its port, ready to serve.
pub struct Application {
    listener: TcpListener,
    metrics: Option<TcpListener>,
    state: web::AppState,
    /// Cancelled at shutdown: the server drains, live pages end.
    closing: CancellationToken,
}

impl Application {
    pub async fn build(config: ConsoleConfig) -> anyhow::Result<Self> {
        let (listener, metrics) = dispatch311_web::bind(
            "DISPATCH311_CONSOLE_ADDR",
            config.listen_addr,
            config.metrics_addr,
        )
        .await?;
        let closing = CancellationToken::new();
        let state = web::AppState::new(&config, closing.clone())?;
        Ok(Self {
            listener,
            metrics,
            state,
            closing,
        })
    }

    /// Where the console listens (useful with port 0).
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// Serves until `shutdown` resolves (or a background worker fails),
    /// then lets requests in flight finish; live pages end their streams and
    /// browsers reconnect to another replica.
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        dispatch311_web::serve(
            "console",
            self.listener,
            self.metrics,
            router(self.state),
            shutdown,
            self.closing,
        )
        .await
    }
}

/// Every page, behind the per-request trace and metrics and the security headers.
fn router(state: web::AppState) -> Router {
    Router::new()
        .route("/", get(pages::home))
        .route("/sign-in", get(pages::sign_in_page).post(pages::sign_in))
        .route("/sign-in/oidc", post(pages::sign_in_oidc))
        .route("/sign-in/callback", get(pages::sign_in_callback))
        .route("/sign-out", post(pages::sign_out))
        .route("/board", get(pages::board))
        .route("/board/part", get(pages::board_part))
        .route("/board/live", get(pages::board_live))
        .route("/jobs/{job_id}", get(jobs::job_page))
        .route("/jobs/{job_id}/live", get(jobs::job_live))
        .route("/jobs/{job_id}/assign", post(jobs::assign))
        .route("/jobs/{job_id}/cancel", post(jobs::cancel))
        .route("/jobs/{job_id}/reroute", post(jobs::reroute))
        .route("/jobs/{job_id}/photos/{index}", get(jobs::photo))
        .route("/review", get(oversight::review))
        .route("/review/live", get(oversight::review_live))
        .route("/figures", get(oversight::figures))
        .route("/officer", get(officer::officer_page))
        .route("/officer/live", get(officer::officer_live))
        .route("/officer/jobs/{job_id}/{step}", post(officer::step))
        .route("/healthz", get(|| async { "ok" }))
        .route("/static/console.css", get(pages::stylesheet))
        .route("/static/console.js", get(pages::script))
        .route_layer(middleware::from_fn(dispatch311_web::measured))
        .layer(middleware::from_fn(web::guarded))
        .layer(middleware::from_fn(dispatch311_web::traced))
        .with_state(state)
}
