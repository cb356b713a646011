//! The request's photos for the crew: each view, and each photo fetched, is
//! recorded as EVIDENCE_VIEWED — the closing rules ask for it — in the same
//! write as the view, so no photo leaves unrecorded.

use dispatch311_proto::dispatch::v1::{self as dispatch, EventType};

use super::{
    JobError,
    change::JobChange,
    commands::{JobPhoto, ViewPhoto},
    lifecycle::{Lifecycle, MAX_ATTEMPTS, now_micros, open_for_crew},
};
use crate::store::{
    changes::ReadFor,
    events::{ActorRef, NewEvent},
};

impl Lifecycle {
    pub async fn record_evidence_viewed(
        &self,
        command: ViewPhoto,
    ) -> Result<dispatch::Job, JobError> {
        let ViewPhoto {
            actor,
            job_id,
            photo_index,
        } = command;
        let (job, _) = self
            .must_change(job_id, &ReadFor::default(), |s, now| {
                open_for_crew(&actor, s)?;
                let photo_count = u32::try_from(s.job.photo_count).unwrap_or(0);
                if photo_index >= photo_count {
                    return Err(JobError::bad_argument(
                        "photo_index",
                        format!("the request has {photo_count} photo(s); the index starts at 0"),
                    ));
                }
                let mut change = JobChange::new(&s.job, &s.flag_keys, now);
                record_view(&mut change, &actor, format!("photo {}", photo_index));
                Ok(change)
            })
            .await?;
        Ok(job)
    }

    /// Reads one uploaded photo of a job for its viewer and records the view
    /// with the same write: no photo leaves unrecorded, and a photo that
    /// cannot be read records nothing.
    pub async fn get_job_photo(&self, command: ViewPhoto) -> Result<JobPhoto, JobError> {
        let ViewPhoto {
            actor,
            job_id,
            photo_index,
        } = command;
        for _ in 0..MAX_ATTEMPTS {
            let s = self.read(job_id, &ReadFor::default()).await?;
            open_for_crew(&actor, &s)?;
            let Some(&photo_id) = s.photo_ids.get(photo_index as usize) else {
                return Err(JobError::bad_argument(
                    "photo_index",
                    format!(
                        "the request has {} uploaded photo(s); the index starts at 0",
                        s.photo_ids.len()
                    ),
                ));
            };
            let content = self.photos.get(photo_id).await.map_err(|e| match e {
                dispatch311_photos::PhotoStoreError::NotFound(_) => {
                    JobError::not_found("photo", format!("{} of job {job_id}", photo_index))
                }
                other => JobError::PhotoStore(other),
            })?;
            let mut change = JobChange::new(&s.job, &s.flag_keys, now_micros());
            record_view(
                &mut change,
                &actor,
                format!("photo {} fetched", photo_index),
            );
            if let Some(job) = self.write(&change, &s).await? {
                return Ok(JobPhoto {
                    content_type: sniffed_type(&content),
                    content,
                    job,
                });
            }
        }
        Err(JobError::Busy(job_id))
    }
}

/// An EVIDENCE_VIEWED event: `actor` opened the request's photos.
fn record_view(change: &mut JobChange, actor: &ActorRef, reason: String) {
    let event = NewEvent {
        event_type: EventType::EvidenceViewed,
        actor: actor.clone(),
        occurred_at: change.now,
        position: None,
        unit_id: change.before.unit_id,
        reason,
    };
    change.append(event);
}

/// The stored photo's type, from its first bytes (intake only stores JPEG and PNG).
fn sniffed_type(content: &[u8]) -> &'static str {
    if content.starts_with(b"\x89PNG") {
        "image/png"
    } else {
        "image/jpeg"
    }
}
