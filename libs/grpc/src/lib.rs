//! What every dispatch311 gRPC server and client shares, written once so the
//! four services behave alike: serving with health, reflection, tracing and
//! graceful shutdown ([`GrpcServer`], [`serve`]); background workers that stop
//! with the server ([`Workers`]); clear errors with machine-readable details
//! ([`status`]); pagination ([`pagination`]); traced client channels
//! ([`client`]); optional mutual TLS for both ([`tls`]); and how a service
//! starts and stops ([`startup`]).

pub mod client;
pub mod metrics;
pub mod pagination;
pub mod probe;
mod server;
pub mod startup;
pub mod status;
pub mod tls;
mod workers;

pub use server::{DEFAULT_DRAIN_TIMEOUT, GrpcServer, serve, shutdown_signal};
pub use workers::{WorkerResult, Workers};
