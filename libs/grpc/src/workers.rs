//! Background workers of a service (queue consumers, outbox relays,
//! reconcilers) and how they stop together with its gRPC server.
//!
//! Order at shutdown: the server stops taking RPCs and drains the in-flight
//! ones, then the workers are told to stop and finish the jobs they hold.
//! A worker that fails on its own stops the whole process (with an error), so
//! an orchestrator restarts it rather than leaving a server that looks
//! healthy but no longer consumes its queue.

use std::{fmt::Display, future::Future};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

#[derive(Default)]
pub struct Workers {
    stop: CancellationToken,
    failed: CancellationToken,
    tasks: JoinSet<()>,
}

impl Workers {
    pub fn new() -> Self {
        Self::default()
    }

    /// The token workers watch: cancelled when they should finish up.
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Runs `work` until it returns; an error is logged and stops the service.
    pub fn spawn<R: WorkerResult>(
        &mut self,
        name: &'static str,
        work: impl Future<Output = R> + Send + 'static,
    ) {
        let failed = self.failed.clone();
        let stopping = self.stop.clone();
        self.tasks.spawn(async move {
            match work.await.into_result() {
                Ok(()) if stopping.is_cancelled() => tracing::debug!(worker = name, "worker stopped"),
                Ok(()) => {
                    tracing::error!(worker = name, "worker ended on its own; stopping the service");
                    failed.cancel();
                }
                Err(e) => {
                    tracing::error!(worker = name, error = %e, "worker failed; stopping the service");
                    failed.cancel();
                }
            }
        });
    }

    /// Resolves when a worker failed.
    pub fn failure(&self) -> CancellationToken {
        self.failed.clone()
    }

    /// Tells every worker to stop and waits for them.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.stop.cancel();
        while let Some(done) = self.tasks.join_next().await {
            if let Err(e) = done {
                tracing::error!(error = %e, "worker panicked");
                self.failed.cancel();
            }
        }
        anyhow::ensure!(!self.failed.is_cancelled(), "a background worker failed");
        Ok(())
    }
}

/// What a worker returns: nothing, or a `Result` whose error stops the service.
pub trait WorkerResult: Send + 'static {
    fn into_result(self) -> Result<(), String>;
}

impl WorkerResult for () {
    fn into_result(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: Display + Send + 'static> WorkerResult for Result<(), E> {
    fn into_result(self) -> Result<(), String> {
        self.map_err(|e| e.to_string())
    }
}

/// Serves `server` on `listener` until `shutdown` resolves or a worker
/// fails, then stops the workers.
pub(crate) async fn serve_with_workers(
    listener: tokio::net::TcpListener,
    server: crate::GrpcServer,
    shutdown: impl Future<Output = ()> + Send + 'static,
    workers: Workers,
) -> anyhow::Result<()> {
    let failure = workers.failure();
    let stop_serving = async move {
        tokio::select! {
            _ = shutdown => {}
            _ = failure.cancelled() => {}
        }
    };
    let served = server.serve(listener, stop_serving).await;
    let stopped = workers.stop().await;
    served.and(stopped)
}
