//! The jobs' domain: the state machine, the accountability rules, and the
//! lifecycle that reads a job, decides a change and has it written. No
//! transport here: commands come in, jobs and `JobError`s go out.

pub mod accountability;
pub mod assignment;
mod auto_assign;
pub mod change;
pub mod commands;
pub mod duplicates;
pub mod error;
pub mod lifecycle;
mod messages;
pub mod metrics;
mod photos;
pub mod state_machine;

pub use error::JobError;
