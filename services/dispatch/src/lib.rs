//! The dispatch service: police 311 jobs in per-precinct queues. It never
//! holds complainant contact details.

pub mod api;
pub mod app;
pub mod checkpoints;
pub mod complainant_answers;
pub mod config;
pub mod dispatch_jobs;
pub mod jobs;
pub mod outputs;
pub mod reopen_requests;
pub mod store;
pub mod timers;
pub mod units;

pub use app::Application;
pub use config::{DispatchArgs, DispatchConfig};

/// Dispatch's PostgreSQL schema; no other service touches it.
pub const SCHEMA: &str = "dispatch";
