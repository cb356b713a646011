//! The survey service: every closure of a police 311 job, polled by the
//! city's satisfaction-survey system through a cursor that never skips; a
//! token per consenting complainant through which intake releases the
//! contact; the complainants' answers, which can reopen a job; and the
//! satisfaction figures next to the closure-quality figures of the same
//! requests. It never stores complainant contact details.

pub mod answers;
pub mod api;
pub mod app;
pub mod closed_events;
pub mod config;
pub mod contact;
pub mod feed;
pub mod store;
pub mod tokens;

pub use app::Application;
pub use config::{SurveyArgs, SurveyConfig};

/// Survey's PostgreSQL schema; no other service touches it.
pub const SCHEMA: &str = "survey";
