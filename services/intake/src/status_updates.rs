//! Consumes the `status` queue: other services tell intake how a request
//! moved on (routed, referred, queued, closed…), and intake keeps the public
//! status and timeline current.
//!
//! Every request filed brings one or two updates, so they are applied in
//! batches ([`dispatch311_queue::batch`]): the deliveries in flight hand their
//! updates to one applier, which applies what is waiting in one statement per
//! round (a request at most once per statement) and answers each delivery.

use std::sync::Arc;

use dispatch311_proto::jobs::v1::StatusUpdate;
use dispatch311_queue::{
    Delivery, JobHandler, Outcome,
    batch::{Batcher, write_in_rounds},
};
use prost::Message;
use uuid::Uuid;

use crate::store::{Store, StoreError};
use dispatch311_telemetry::propagation::trace_id_of;

/// The most updates one batch takes.
const MAX_BATCH: usize = 64;

/// A status update, its request and the trace of its delivery (which the
/// timeline entry records).
type Received = (Uuid, StatusUpdate, String);

/// Per update: `None` if the request is not intake's, else whether it
/// moved the request on; or the error of its statement.
type Applied = Result<Option<bool>, Arc<StoreError>>;

pub struct StatusUpdateHandler {
    batcher: Batcher<Received, Applied>,
}

impl StatusUpdateHandler {
    /// Starts the applier task (it ends with the handler). Must be called
    /// inside the Tokio runtime.
    pub fn new(store: Store) -> Self {
        let batcher = Batcher::spawn("status_updates", MAX_BATCH, move |updates| {
            let store = store.clone();
            async move { apply(&store, updates).await }
        });
        Self { batcher }
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
        // a request id that is not a uuid was never ours: retrying cannot help
        let Ok(sr_id) = Uuid::parse_str(&update.sr_id) else {
            return Outcome::DeadLetter {
                reason: format!("unknown service request {}", update.sr_id),
            };
        };
        let transition = update.transition_key.clone();
        let trace_id = trace_id_of(&tracing::Span::current()).unwrap_or_default();
        match self.batcher.submit((sr_id, update, trace_id)).await {
            Ok(Ok(Some(true))) => {
                tracing::debug!(%sr_id, %transition, "status update applied");
                Outcome::Done
            }
            Ok(Ok(Some(false))) => {
                tracing::debug!(%sr_id, %transition, "status update already applied");
                Outcome::Done
            }
            Ok(Ok(None)) => Outcome::DeadLetter {
                reason: format!("unknown service request {sr_id}"),
            },
            Ok(Err(error)) => Outcome::Retry {
                error: format!("database: {error}"),
                after: None,
            },
            Err(stopped) => Outcome::retry(stopped.to_string()),
        }
    }
}

/// One batch: a statement per round, a result per update.
async fn apply(store: &Store, updates: Vec<Received>) -> Vec<Applied> {
    write_in_rounds(
        &updates,
        |(sr_id, _, _)| *sr_id,
        |round| {
            let statement: Vec<(Uuid, &StatusUpdate, &str)> = round
                .into_iter()
                .map(|(sr_id, update, trace_id)| (*sr_id, update, trace_id.as_str()))
                .collect();
            async move { store.apply_status_updates(&statement).await }
        },
    )
    .await
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
        e @ (StoreError::Batch(_) | StoreError::Shared(_)) => Outcome::retry(e),
    }
}
