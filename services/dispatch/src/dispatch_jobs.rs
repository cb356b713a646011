//! Consumes the `dispatch` queue: routed police requests become jobs in their
//! precinct's queue.

use dispatch311_proto::jobs::v1::DispatchJob;
use dispatch311_queue::{Delivery, JobHandler, Outcome};
use dispatch311_telemetry::attributes::{self, set_on_current};
use prost::Message;

use crate::store::{Enqueued, Store, StoreError};

pub struct DispatchJobHandler {
    store: Store,
    relay_wakeup: std::sync::Arc<tokio::sync::Notify>,
}

impl DispatchJobHandler {
    pub fn new(store: Store, relay_wakeup: std::sync::Arc<tokio::sync::Notify>) -> Self {
        Self {
            store,
            relay_wakeup,
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
                Outcome::Done
            }
            Ok(Enqueued::AlreadyQueued { job_id }) => {
                self.relay_wakeup.notify_one();
                tracing::info!(sr_number = %job.sr_number, %job_id, "request already has a job; nothing queued");
                Outcome::Done
            }
            Err(StoreError::InvalidJob(reason)) => Outcome::DeadLetter { reason },
            Err(e) => Outcome::Retry {
                error: e.to_string(),
                after: None,
            },
        }
    }
}
