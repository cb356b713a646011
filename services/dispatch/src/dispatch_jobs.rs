//! Consumes the `dispatch` queue: routed police requests become jobs in their
//! precinct's queue, and go straight to the nearest available unit when the
//! precinct turned auto-assignment on.

use dispatch311_proto::jobs::v1::DispatchJob;
use dispatch311_queue::{Delivery, JobHandler, Outcome};
use dispatch311_telemetry::attributes::{self, set_on_current};
use prost::Message;

use crate::{
    lifecycle::Lifecycle,
    store::{Enqueued, Store, StoreError},
};

pub struct DispatchJobHandler {
    store: Store,
    relay_wakeup: std::sync::Arc<tokio::sync::Notify>,
    lifecycle: Lifecycle,
}

impl DispatchJobHandler {
    pub fn new(store: Store, lifecycle: Lifecycle) -> Self {
        Self {
            store,
            relay_wakeup: lifecycle.relay_wakeup.clone(),
            lifecycle,
        }
    }

    /// Offers the queued job to auto-assignment. A repeat delivery tries
    /// again, so a crash between queueing and assigning loses nothing; a
    /// database that cannot be reached makes the delivery retry.
    async fn auto_assign(&self, job_id: uuid::Uuid) -> Outcome {
        match self.lifecycle.auto_assign_job(job_id).await {
            Ok(_) => Outcome::Done,
            Err(e) if e.is_unavailable() => Outcome::Retry {
                error: e.to_string(),
                after: None,
            },
            Err(e) => {
                tracing::warn!(%job_id, error = %e, "auto-assignment failed; the job waits in the queue");
                Outcome::Done
            }
        }
    }
}

impl JobHandler for DispatchJobHandler {
    async fn handle(&self, delivery: Delivery) -> Outcome {
        let job = match DispatchJob::decode(delivery.envelope.payload.as_slice()) {
            Ok(job) => job,
            Err(e) => {
                return Outcome::DeadLetter {
                    reason: format!("undecodable dispatch job: {e}"),
                };
            }
        };
        set_on_current(attributes::SR_NUMBER, job.sr_number.clone());
        set_on_current(attributes::PRECINCT, job.precinct.clone());
        match self.store.enqueue(&job).await {
            Ok(Enqueued::New { job_id }) => {
                self.relay_wakeup.notify_one();
                tracing::info!(sr_number = %job.sr_number, precinct = %job.precinct, %job_id, "job queued");
                self.auto_assign(job_id).await
            }
            Ok(Enqueued::AlreadyQueued { job_id }) => {
                self.relay_wakeup.notify_one();
                tracing::info!(sr_number = %job.sr_number, %job_id, "request already has a job; nothing queued");
                self.auto_assign(job_id).await
            }
            Err(StoreError::InvalidJob(reason)) => Outcome::DeadLetter { reason },
            Err(e) => Outcome::Retry {
                error: e.to_string(),
                after: None,
            },
        }
    }
}
