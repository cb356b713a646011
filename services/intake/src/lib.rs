//! The intake service: files 311 service requests, owns their public record
//! and the complainant's contact details, and publishes route jobs.

pub mod api;
pub mod app;
pub mod complainant_questions;
pub mod config;
pub mod contact_crypto;
pub mod rekey;
pub mod retention;
pub mod status_updates;
pub mod store;
pub mod validate;

pub use app::Application;
pub use config::{IntakeArgs, IntakeCommand, IntakeConfig};

/// Intake's PostgreSQL schema; no other service touches it.
pub const SCHEMA: &str = "intake";
