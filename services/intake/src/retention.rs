//! Retention: personal data is kept no longer than needed. A sweep job on the
//! shared queue (`retention`, consumed by intake) deletes the contacts and
//! original descriptions of requests finished longer ago than the contact
//! retention (after the survey window), and voice recording references older
//! than theirs (14 days by default); every deletion is recorded in
//! `retention_deletions`. Each sweep schedules the next one; the reconciler
//! schedules one when none is pending (the first, or one lost with Redis).

use dispatch311_proto::jobs::v1::RetentionSweep;
use dispatch311_queue::{Delivery, JobHandler, Outcome};
use prost::Message as _;

use crate::{
    status_updates::outcome_of_failure,
    store::{RetentionPolicy, Store},
};

pub struct RetentionSweepHandler {
    store: Store,
    policy: RetentionPolicy,
}

impl RetentionSweepHandler {
    pub fn new(store: Store, policy: RetentionPolicy) -> Self {
        Self { store, policy }
    }
}

impl JobHandler for RetentionSweepHandler {
    async fn handle(&self, delivery: Delivery) -> Outcome {
        if let Err(e) = RetentionSweep::decode(delivery.envelope.payload.as_slice()) {
            return Outcome::DeadLetter {
                reason: format!("undecodable retention sweep: {e}"),
            };
        }
        match self
            .store
            .sweep_retention(&self.policy, chrono::Utc::now())
            .await
        {
            Ok(report) => {
                // counts only: what was deleted is gone, and was personal
                tracing::info!(
                    requests = report.requests,
                    contacts = report.contacts,
                    descriptions = report.descriptions,
                    voice_recordings = report.voice_recordings,
                    next_due_at = report.next_due_at.map(|at| at.to_rfc3339()),
                    "retention sweep done"
                );
                Outcome::Done
            }
            Err(e) => outcome_of_failure(e),
        }
    }
}
