//! Consumes the `route` queue: decides where each new request goes, stores
//! the decision, and hands police work to dispatch.

use std::sync::Arc;

use dispatch311_proto::{jobs::v1::RouteJob, routing::v1::RouteOutcome};
use dispatch311_queue::{Delivery, JobHandler, Outcome};
use dispatch311_telemetry::attributes::{self, set_on_current};
use prost::Message;
use tokio::sync::Notify;

use crate::{
    Router,
    store::{Store, StoreError},
};

pub struct RouteJobHandler {
    router: Arc<Router>,
    store: Store,
    relay_wakeup: Arc<Notify>,
}

impl RouteJobHandler {
    pub fn new(router: Arc<Router>, store: Store, relay_wakeup: Arc<Notify>) -> Self {
        Self {
            router,
            store,
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
        let location = job.location.map(|l| (l.latitude, l.longitude));
        let decision = self
            .router
            .decide(&job.complaint_type, &job.descriptor, location);

        match self.store.record(&job, decision).await {
            Ok(stored) => {
                self.relay_wakeup.notify_one();
                set_on_current(attributes::AGENCY, stored.decision.agency.clone());
                set_on_current(attributes::PRECINCT, stored.decision.precinct.clone());
                let outcome = RouteOutcome::try_from(stored.decision.outcome).unwrap_or_default();
                tracing::info!(
                    sr_number = %job.sr_number,
                    outcome = outcome.as_str_name(),
                    agency = %stored.decision.agency,
                    precinct = %stored.decision.precinct,
                    rule = %stored.decision.rule_id,
                    repeat = !stored.new,
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
