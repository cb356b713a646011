//! The routing service: decides which agency, precinct, priority and SLA each
//! service request gets, stores every decision with its explanation, and
//! hands police work to dispatch.

pub mod api;
pub mod app;
pub mod config;
pub mod decision;
pub mod precincts;
pub mod route_jobs;
pub mod router;
pub mod rules;
pub mod store;

pub use app::Application;
pub use config::{RoutingArgs, RoutingConfig};
pub use router::Router;

/// Routing's PostgreSQL schema; no other service touches it.
pub const SCHEMA: &str = "routing";
