//! Consumes the `status` queue: other services tell intake how a request
//! moved on (routed, referred, queued, closed…), and intake keeps the public
//! status and timeline current.
//!
//! Every request filed brings one or two updates, so they are applied in
//! batches: each delivery hands its update to one applier task, which takes
//! whatever updates are waiting at that moment (the consumer runs many
//! deliveries at once) and applies them in one statement, then answers each
//! delivery with its own result. Under light load a batch is one update and
//! nothing waits; under load the statements per request fall. A failed
//! statement fails each of its deliveries, which the queue retries (updates
//! are idempotent: each transition is appended once).

use std::collections::HashMap;

use dispatch311_proto::jobs::v1::StatusUpdate;
use dispatch311_queue::{Delivery, JobHandler, Outcome};
use prost::Message;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::store::{Store, StoreError};

/// The most updates one statement applies.
const MAX_BATCH: usize = 64;

/// One delivery's update waiting for the applier, and where its result goes.
struct Waiting {
    sr_id: Uuid,
    update: StatusUpdate,
    applied: oneshot::Sender<Result<Option<bool>, String>>,
}

pub struct StatusUpdateHandler {
    applier: mpsc::Sender<Waiting>,
}

impl StatusUpdateHandler {
    /// Starts the applier task; it ends when the handler is dropped (after
    /// the consumer has finished its deliveries). Must be called inside the
    /// Tokio runtime.
    pub fn new(store: Store) -> Self {
        let (applier, waiting) = mpsc::channel(MAX_BATCH * 4);
        tokio::spawn(apply_in_batches(store, waiting));
        Self { applier }
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
        let (applied, result) = oneshot::channel();
        let waiting = Waiting {
            sr_id,
            update,
            applied,
        };
        if self.applier.send(waiting).await.is_err() {
            return Outcome::retry("the status update applier has stopped");
        }
        match result.await {
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
            Err(_) => Outcome::retry("the status update applier stopped before answering"),
        }
    }
}

/// Applies what is waiting, batch after batch, until every handler is gone.
async fn apply_in_batches(store: Store, mut waiting: mpsc::Receiver<Waiting>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while waiting.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (updates, mut answers): (Vec<(Uuid, StatusUpdate)>, Vec<_>) = batch
            .drain(..)
            .map(|w| ((w.sr_id, w.update), Some(w.applied)))
            .unzip();
        for round in rounds_of(updates.iter().map(|(sr_id, _)| *sr_id)) {
            let statement: Vec<(Uuid, &StatusUpdate)> = round
                .iter()
                .map(|&i| (updates[i].0, &updates[i].1))
                .collect();
            let results = store
                .apply_status_updates(&statement)
                .await
                .map_err(|e| e.to_string());
            for (position, &i) in round.iter().enumerate() {
                let result = match &results {
                    Ok(applied) => Ok(applied.get(position).copied().flatten()),
                    Err(error) => Err(error.clone()),
                };
                // the delivery may have been abandoned (shutdown): nothing to tell
                if let Some(answer) = answers[i].take() {
                    let _ = answer.send(result);
                }
            }
        }
    }
}

/// Splits a batch into rounds in which each request appears at most once
/// (one statement updates a row once), keeping each request's updates in
/// the order they came. Returns indexes into the batch.
fn rounds_of(sr_ids: impl Iterator<Item = Uuid>) -> Vec<Vec<usize>> {
    let mut rounds: Vec<Vec<usize>> = Vec::new();
    let mut next_round_of: HashMap<Uuid, usize> = HashMap::new();
    for (i, sr_id) in sr_ids.enumerate() {
        let round = next_round_of.entry(sr_id).or_insert(0);
        if *round == rounds.len() {
            rounds.push(Vec::new());
        }
        rounds[*round].push(i);
        *round += 1;
    }
    rounds
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_appears_once_per_round_and_its_updates_keep_their_order() {
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let rounds = rounds_of([a, b, a, c, a, b].into_iter());
        assert_eq!(rounds, vec![vec![0, 1, 3], vec![2, 5], vec![4]]);
        assert_eq!(rounds_of([a, b, c].into_iter()), vec![vec![0, 1, 2]]);
        assert!(rounds_of(std::iter::empty()).is_empty());
    }
}
