//! Consumes the `status` queue: other services tell intake how a request
//! moved on (routed, referred, queued, closed…), and intake keeps the public
//! status and timeline current.

use dispatch311_proto::jobs::v1::StatusUpdate;
use dispatch311_queue::{Delivery, JobHandler, Outcome};
use prost::Message;

use crate::store::{Store, StoreError};

pub struct StatusUpdateHandler {
    store: Store,
}

impl StatusUpdateHandler {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

impl JobHandler for StatusUpdateHandler {
    async fn handle(&self, delivery: Delivery) -> Outcome {
        let update = match StatusUpdate::decode(delivery.envelope.payload.as_slice()) {
            Ok(update) => update,
            Err(e) => {
                return Outcome::DeadLetter {
                    reason: format!("undecodable status update: {e}"),
                };
            }
        };
        match self.store.apply_status_update(&update).await {
            Ok(Some(true)) => {
                tracing::debug!(sr_id = %update.sr_id, transition = %update.transition_key, "status update applied");
                Outcome::Done
            }
            Ok(Some(false)) => {
                tracing::debug!(sr_id = %update.sr_id, transition = %update.transition_key, "status update already applied");
                Outcome::Done
            }
            // never ours, or a request id that is not a uuid: retrying cannot help
            Ok(None) => Outcome::DeadLetter {
                reason: format!("unknown service request {}", update.sr_id),
            },
            Err(e) => outcome_of_failure(e),
        }
    }
}

/// What a consumer of intake does with a job its store could not handle:
/// retry what may pass (database, queue), dead-letter what will not (a
/// sealed value that does not open will not open on the next try either).
pub(crate) fn outcome_of_failure(error: StoreError) -> Outcome {
    match error {
        StoreError::Database(e) => Outcome::Retry {
            error: format!("database: {e}"),
            after: None,
        },
        StoreError::Queue(e) => Outcome::Retry {
            error: format!("queue: {e}"),
            after: None,
        },
        e @ (StoreError::Seal(_) | StoreError::Open { .. }) => Outcome::DeadLetter {
            reason: e.to_string(),
        },
    }
}
