//! Consumes the `dispatch` queue: routed police requests become jobs in their
//! precinct's queue, and go straight to the nearest available unit when the
//! precinct turned auto-assignment on.

use std::sync::Arc;

use dispatch311_proto::jobs::v1::DispatchJob;
use dispatch311_queue::{
    Delivery, JobHandler, Outcome,
    batch::{Batcher, write_in_rounds},
};
use dispatch311_telemetry::attributes::{self, set_on_current};
use prost::Message;

use crate::{
    jobs::{duplicates::queue_or_link, lifecycle::Lifecycle},
    store::{Enqueued, NewJob, Store, StoreError},
};

/// The most jobs one batch queues.
const MAX_BATCH: usize = 64;

/// Per job: what queueing it did (`None`: another delivery of the same
/// request is queueing it right now), or the error of its statement.
type Queued = Result<Option<Enqueued>, Arc<StoreError>>;

pub struct DispatchJobHandler {
    store: Store,
    /// The jobs of the deliveries in flight are queued together (see
    /// `dispatch311_queue::batch`).
    batcher: Batcher<Arc<NewJob>, Queued>,
    relay_wakeup: std::sync::Arc<tokio::sync::Notify>,
    lifecycle: Lifecycle,
}

impl DispatchJobHandler {
    /// Starts the batch writer (it ends with the handler). Must be called
    /// inside the Tokio runtime.
    pub fn new(store: Store, lifecycle: Lifecycle) -> Self {
        let writer = store.clone();
        let batcher = Batcher::spawn("dispatch_jobs", MAX_BATCH, move |jobs| {
            let store = writer.clone();
            async move { enqueue_batch(&store, jobs).await }
        });
        Self {
            store,
            batcher,
            relay_wakeup: lifecycle.relay_wakeup.clone(),
            lifecycle,
        }
    }

    /// Offers the queued job to auto-assignment. A repeat delivery tries
    /// again, so a crash between queueing and assigning loses nothing; a
    /// database that cannot be reached makes the delivery retry.
    async fn auto_assign(&self, job_id: uuid::Uuid, offer: bool) -> Outcome {
        if !offer {
            // most precincts assign by hand
            return Outcome::Done;
        }
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
        let mut job = match DispatchJob::decode(delivery.envelope.payload.as_slice()) {
            Ok(job) => job,
            Err(e) => {
                return Outcome::DeadLetter {
                    reason: format!("undecodable dispatch job: {e}"),
                };
            }
        };
        set_on_current(attributes::SR_NUMBER, job.sr_number.clone());
        set_on_current(attributes::PRECINCT, job.precinct.clone());
        if !self.lifecycle.rules.link_duplicates {
            job.duplicate_rule = None;
        }
        let new = match self.store.new_job(job) {
            Ok(new) => Arc::new(new),
            Err(StoreError::InvalidJob(reason)) => return Outcome::DeadLetter { reason },
            Err(e) => return Outcome::retry(e.to_string()),
        };
        let sr_number = &new.job.sr_number;
        match self.batcher.submit(Arc::clone(&new)).await {
            Ok(Ok(Some(Enqueued::New {
                job_id,
                offer_to_auto_assign,
            }))) => {
                self.relay_wakeup.notify_one();
                crate::jobs::metrics::job_queued(&new);
                tracing::info!(%sr_number, precinct = %new.precinct, %job_id, "job queued");
                self.auto_assign(job_id, offer_to_auto_assign).await
            }
            Ok(Ok(Some(Enqueued::AlreadyQueued {
                job_id,
                offer_to_auto_assign,
            }))) => {
                self.relay_wakeup.notify_one();
                tracing::info!(%sr_number, %job_id, "request already has a job; nothing queued");
                self.auto_assign(job_id, offer_to_auto_assign).await
            }
            Ok(Ok(Some(Enqueued::Linked {
                job_id,
                new: linked_now,
            }))) => {
                self.relay_wakeup.notify_one();
                if linked_now {
                    crate::jobs::metrics::report_linked(&new);
                }
                tracing::info!(%sr_number, %job_id, new = linked_now, "request linked to the open job of its incident");
                Outcome::Done
            }
            Ok(Ok(None)) => Outcome::retry(
                "another delivery of this request, or a change to its incident's job, is under way",
            ),
            Ok(Err(error)) => Outcome::retry(format!("database: {error}")),
            Err(stopped) => Outcome::retry(stopped.to_string()),
        }
    }
}

/// What a round holds at most once: a request, and a request whose reports
/// are linked holds its incident (two reports of one incident are never
/// decided in one round, so the second sees the first's job).
#[derive(PartialEq, Eq, Hash)]
enum RoundKey {
    Request(uuid::Uuid),
    Incident(String, String),
}

fn round_key(job: &NewJob) -> RoundKey {
    if job.job.duplicate_rule.is_some() {
        RoundKey::Incident(job.precinct.clone(), job.job.complaint_type.to_lowercase())
    } else {
        RoundKey::Request(job.sr_id)
    }
}

/// One batch: a statement per round (a request, and an incident, at most
/// once per round), a result per job. A round with reports to link is
/// written under its incidents' locks (`jobs::duplicates`).
async fn enqueue_batch(store: &Store, jobs: Vec<Arc<NewJob>>) -> Vec<Queued> {
    write_in_rounds(
        &jobs,
        |job| round_key(job),
        |round| {
            let statement: Vec<&NewJob> = round.into_iter().map(|job| &**job).collect();
            async move {
                if statement.iter().any(|job| job.job.duplicate_rule.is_some()) {
                    queue_or_link(store, &statement).await
                } else {
                    store.enqueue(&statement).await
                }
            }
        },
    )
    .await
}
