//! Retention: personal data is kept no longer than needed. A sweep job on the
//! shared queue (`retention`, consumed by intake) deletes the contacts and
//! original descriptions of requests finished longer ago than the contact
//! retention (after the survey window), and voice recording references older
//! than theirs (14 days by default), and photos uploaded but never filed
//! with a request (after a day by default); every request's deletion is recorded in
//! `retention_deletions`. Each sweep schedules the next one; the reconciler
//! schedules one when none is pending (the first, or one lost with Redis).

use dispatch311_photos::PhotoStore;
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
    photos: PhotoStore,
}

impl RetentionSweepHandler {
    pub fn new(store: Store, policy: RetentionPolicy, photos: PhotoStore) -> Self {
        Self {
            store,
            policy,
            photos,
        }
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
                // the rows are gone: a file left by a failed delete is never served
                for photo_id in &report.unfiled_photos {
                    if let Err(e) = self.photos.delete(*photo_id).await {
                        tracing::warn!(%photo_id, error = %e, "could not delete an unfiled photo's file");
                    }
                }
                // counts only: what was deleted is gone, and was personal
                tracing::info!(
                    unfiled_photos = report.unfiled_photos.len(),
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
