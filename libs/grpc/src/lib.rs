//! What every dispatch311 gRPC server and client shares, written once so the
//! four services behave alike: serving with health, reflection, tracing and
//! graceful shutdown ([`GrpcServer`], [`serve`]); background workers that stop
//! with the server ([`Workers`]); clear errors with machine-readable details
//! ([`status`]); pagination ([`pagination`]); and traced client channels
//! ([`client`]).

pub mod client;
pub mod pagination;
mod server;
pub mod status;
mod workers;

pub use server::{DEFAULT_DRAIN_TIMEOUT, GrpcServer, serve, shutdown_signal};
pub use workers::{WorkerResult, Workers, serve_with_workers};
