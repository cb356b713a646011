//! The jobs' domain: what a change to a job decides and writes.

pub mod change;
pub mod error;

pub use error::JobError;
