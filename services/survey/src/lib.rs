//! The survey service: closed requests for the city's satisfaction-survey
//! system. This first version serves its API with health and reflection;
//! closed-request polling arrives once dispatch closes jobs.

pub mod api;
pub mod app;
pub mod config;

pub use app::Application;
pub use config::SurveyConfig;
