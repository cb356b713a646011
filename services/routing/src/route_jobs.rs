//! Consumes the `route` queue: decides where each new request goes, stores
//! the decision, and hands police work to dispatch.

use std::sync::Arc;

use dispatch311_proto::{jobs::v1::RouteJob, routing::v1::RouteOutcome};
use dispatch311_queue::{
    Delivery, JobHandler, Outcome,
    batch::{Batcher, write_in_rounds},
};
use dispatch311_telemetry::attributes::{self, set_on_current};
use prost::Message;
use tokio::sync::Notify;

use crate::{
    Router,
    decision::RouteRequest,
    store::{NewDecision, Store, StoreError, StoredDecision},
};

/// The most decisions one batch takes.
const MAX_BATCH: usize = 64;

/// Per decision: whether it was new (false: the request was routed before),
/// or the error of its statement.
type Recorded = Result<bool, Arc<StoreError>>;

pub struct RouteJobHandler {
    router: Arc<Router>,
    store: Store,
    /// New decisions of the deliveries in flight are written together (see
    /// `dispatch311_queue::batch`).
    batcher: Batcher<Arc<NewDecision>, Recorded>,
    relay_wakeup: Arc<Notify>,
}

impl RouteJobHandler {
    /// Starts the batch writer (it ends with the handler). Must be called
    /// inside the Tokio runtime.
    pub fn new(router: Arc<Router>, store: Store, relay_wakeup: Arc<Notify>) -> Self {
        let writer = store.clone();
        let batcher = Batcher::spawn("route_decisions", MAX_BATCH, move |decisions| {
            let store = writer.clone();
            async move { record_batch(&store, decisions).await }
        });
        Self {
            router,
            store,
            batcher,
            relay_wakeup,
        }
    }
}
impl JobHandler for RouteJobHandler {
    async fn handle(&self, delivery: Delivery) -> Outcome {
        let job = match RouteJob::decode(delivery.envelope.payload.as_slice()) {
            Ok(job) => job,
            Err(e) => {
                return Outcome::DeadLetter {
                    reason: format!("undecodable route job: {e}"),
                };
            }
        };
        set_on_current(attributes::SR_NUMBER, job.sr_number.clone());
        let decision = self.router.decide(&RouteRequest {
            complaint_type: &job.complaint_type,
            descriptor: &job.descriptor,
            location: job.location.map(|l| (l.latitude, l.longitude)),
            has_street_address: job
                .address
                .as_ref()
                .is_some_and(|a| !a.street_address.trim().is_empty()),
        });
        let new = match NewDecision::new(job, decision) {
            Ok(new) => Arc::new(new),
            Err(StoreError::InvalidJob(reason)) => return Outcome::DeadLetter { reason },
            Err(e) => return Outcome::retry(e.to_string()),
        };
        let recorded = match self.batcher.submit(Arc::clone(&new)).await {
            Ok(Ok(true)) => {
                record_routed(&new);
                Ok(None)
            }
            // routed before: send again what the first decision said
            Ok(Ok(false)) => self
                .store
                .record_repeat(&new.job, new.stored.decision.duplicate_rule)
                .await
                .map(Some),
            Ok(Err(error)) => return Outcome::retry(format!("database: {error}")),
            Err(stopped) => return Outcome::retry(stopped.to_string()),
        };
        match recorded {
            Ok(repeat) => {
                self.relay_wakeup.notify_one();
                let stored: &StoredDecision = repeat.as_ref().unwrap_or(&new.stored);
                set_on_current(attributes::AGENCY, stored.decision.agency.clone());
                set_on_current(attributes::PRECINCT, stored.decision.precinct.clone());
                let outcome = RouteOutcome::try_from(stored.decision.outcome).unwrap_or_default();
                tracing::info!(
                    sr_number = %new.job.sr_number,
                    outcome = outcome.as_str_name(),
                    agency = %stored.decision.agency,
                    precinct = %stored.decision.precinct,
                    rule = %stored.decision.rule_id,
                    repeat = repeat.is_some(),
                    "request routed"
                );
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

/// One batch: a statement per round (a request at most once per statement),
/// a result per decision.
async fn record_batch(store: &Store, decisions: Vec<Arc<NewDecision>>) -> Vec<Recorded> {
    write_in_rounds(
        &decisions,
        |decision| decision.sr_id,
        |round| {
            let statement: Vec<&NewDecision> =
                round.into_iter().map(|decision| &**decision).collect();
            async move { store.record_new(&statement).await }
        },
    )
    .await
}

/// `dispatch311.request.step.duration` with step "routed": from the request's
/// filing to its routing decision, by agency (the rules' bounded set) and
/// priority. A repeat delivery records nothing.
fn record_routed(new: &NewDecision) {
    static ROUTED: std::sync::OnceLock<opentelemetry::metrics::Histogram<f64>> =
        std::sync::OnceLock::new();
    let histogram = ROUTED.get_or_init(|| {
        dispatch311_telemetry::metrics::meter()
            .f64_histogram("dispatch311.request.step.duration")
            .with_unit("s")
            .with_description("Time a request took to reach a step: routed (from filing)")
            .with_boundaries(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
            ])
            .build()
    });
    let Some(filed) = new
        .job
        .created_at
        .as_ref()
        .and_then(dispatch311_domain::time::from_timestamp)
    else {
        return;
    };
    let decision = &new.stored.decision;
    let seconds = (new.stored.decided_at - filed)
        .num_microseconds()
        .unwrap_or(0) as f64
        / 1e6;
    let priority = dispatch311_proto::common::v1::Priority::try_from(decision.priority)
        .unwrap_or_default()
        .as_str_name()
        .trim_start_matches("PRIORITY_")
        .to_ascii_lowercase();
    histogram.record(
        seconds.max(0.0),
        &[
            opentelemetry::KeyValue::new("step", "routed"),
            opentelemetry::KeyValue::new("agency", decision.agency.clone()),
            opentelemetry::KeyValue::new("priority", priority),
        ],
    );
}
