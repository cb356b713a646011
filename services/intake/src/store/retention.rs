//! Deleting personal data once it is kept long enough, by scheduled sweeps.

use super::*;
use tracing::Instrument;

/// How long personal data is kept, and how often the sweep runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Contacts and original descriptions: this long after the request
    /// finished (closed, cancelled, referred, duplicate).
    pub personal_data_after: chrono::Duration,
    /// Voice recording references: this long after filing.
    pub voice_recordings_after: chrono::Duration,
    /// Photos uploaded but never filed with a request: this long after upload.
    pub unfiled_photos_after: chrono::Duration,
    /// Time between sweeps.
    pub every: chrono::Duration,
    /// Most requests (and most recordings) one sweep handles.
    pub batch: i64,
}

/// What one retention sweep deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepReport {
    /// Photos uploaded and never filed, whose rows are gone: their files are
    /// deleted after the commit.
    pub unfiled_photos: Vec<Uuid>,
    /// Requests whose personal data was deleted.
    pub requests: u64,
    pub contacts: u64,
    pub descriptions: u64,
    pub voice_recordings: u64,
    /// When the next sweep is due, if this one scheduled it.
    pub next_due_at: Option<DateTime<Utc>>,
}

/// The job that runs a sweep, delivered at `due`.
pub(super) fn retention_sweep_envelope(
    due: DateTime<Utc>,
) -> Result<dispatch311_proto::jobs::v1::JobEnvelope, dispatch311_queue::QueueError> {
    let sweep = dispatch311_proto::jobs::v1::RetentionSweep {
        due_at: Some(to_timestamp(due)),
    };
    // not about one request: the sweep's id stands in for the request id
    let (mut envelope, _span) = dispatch311_queue::new_traced_envelope(
        queues::RETENTION,
        kinds::RETENTION_SWEEP,
        "retention",
        &sweep,
    )?;
    let at: std::time::SystemTime = due.into();
    envelope.deliver_at = Some(dispatch311_proto::Timestamp::from(at));
    Ok(envelope)
}

impl Store {
    /// One retention sweep, in one transaction: deletes the contacts and
    /// original descriptions of requests finished before
    /// `now - policy.personal_data_after`, and the voice recording
    /// references filed before `now - policy.voice_recordings_after`, at
    /// most `policy.batch` of each; records every deletion; and, if this
    /// sweep is the one that was due, schedules the next through the outbox
    /// (at once when a batch was full).
    pub async fn sweep_retention(
        &self,
        policy: &RetentionPolicy,
        now: DateTime<Utc>,
    ) -> StoreResult<SweepReport> {
        let mut tx = self.pool.begin().await?;
        // the schedule row is the lock: sweeps never overlap
        sqlx::query("SELECT next_due_at FROM retention_schedule FOR UPDATE")
            .fetch_one(&mut *tx)
            .instrument(dispatch311_db::statement_span(
                "SELECT",
                "retention_schedule",
            ))
            .await?;
        let finished_before = now - policy.personal_data_after;
        let personal = sqlx::query(
            "WITH due AS ( \
                SELECT sr_id, sr_number FROM service_requests \
                WHERE personal_data_deleted_at IS NULL \
                  AND status IN ('CLOSED', 'SURVEYED', 'CANCELLED', 'REFERRED', 'DUPLICATE') \
                  AND updated_at < $1 \
                ORDER BY updated_at LIMIT $2 FOR UPDATE), \
             marked AS ( \
                UPDATE service_requests s SET personal_data_deleted_at = $3 FROM due \
                WHERE s.sr_id = due.sr_id RETURNING s.sr_id), \
             contacts AS ( \
                DELETE FROM complainant_contacts c USING due WHERE c.sr_id = due.sr_id RETURNING c.sr_id), \
             descriptions AS ( \
                DELETE FROM sealed_descriptions d USING due WHERE d.sr_id = due.sr_id RETURNING d.sr_id), \
             logged AS ( \
                INSERT INTO retention_deletions (sr_id, sr_number, what, deleted_at) \
                SELECT due.sr_id, due.sr_number, 'contact', $3 FROM due JOIN contacts USING (sr_id) \
                UNION ALL \
                SELECT due.sr_id, due.sr_number, 'description', $3 FROM due JOIN descriptions USING (sr_id)) \
             SELECT (SELECT count(*) FROM marked) AS requests, (SELECT count(*) FROM contacts) AS contacts, \
                    (SELECT count(*) FROM descriptions) AS descriptions",
        )
        .bind(finished_before)
        .bind(policy.batch)
        .bind(now)
        .fetch_one(&mut *tx)
        .instrument(dispatch311_db::statement_span("UPDATE", "service_requests"))
        .await?;
        let filed_before = now - policy.voice_recordings_after;
        let voice_recordings: i64 = sqlx::query_scalar(
            "WITH due AS ( \
                SELECT sr_id, sr_number FROM service_requests \
                WHERE voice_recording_uri IS NOT NULL AND created_at < $1 \
                ORDER BY created_at LIMIT $2 FOR UPDATE), \
             cleared AS ( \
                UPDATE service_requests s SET voice_recording_uri = NULL FROM due \
                WHERE s.sr_id = due.sr_id RETURNING s.sr_id, due.sr_number), \
             logged AS ( \
                INSERT INTO retention_deletions (sr_id, sr_number, what, deleted_at) \
                SELECT sr_id, sr_number, 'voice_recording', $3 FROM cleared) \
             SELECT count(*) FROM cleared",
        )
        .bind(filed_before)
        .bind(policy.batch)
        .bind(now)
        .fetch_one(&mut *tx)
        .instrument(dispatch311_db::statement_span("UPDATE", "service_requests"))
        .await?;
        let unfiled_photos: Vec<Uuid> = sqlx::query_scalar(
            "WITH deleted AS ( \
                DELETE FROM photos WHERE photo_id IN ( \
                    SELECT photo_id FROM photos WHERE sr_id IS NULL AND uploaded_at < $1 \
                    ORDER BY uploaded_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
                RETURNING photo_id), \
             logged AS ( \
                INSERT INTO retention_deletions (photo_id, what, deleted_at) \
                SELECT photo_id, 'unfiled_photo', $3 FROM deleted) \
             SELECT photo_id FROM deleted",
        )
        .bind(now - policy.unfiled_photos_after)
        .bind(policy.batch)
        .bind(now)
        .fetch_all(&mut *tx)
        .instrument(dispatch311_db::statement_span("DELETE", "photos"))
        .await?;
        let report = SweepReport {
            unfiled_photos,
            requests: personal.get::<i64, _>("requests") as u64,
            contacts: personal.get::<i64, _>("contacts") as u64,
            descriptions: personal.get::<i64, _>("descriptions") as u64,
            voice_recordings: voice_recordings as u64,
            next_due_at: None,
        };
        let more_left = report.requests >= policy.batch as u64
            || report.voice_recordings >= policy.batch as u64;
        let next = if more_left { now } else { now + policy.every };
        let moved: Option<DateTime<Utc>> = sqlx::query_scalar(
            "UPDATE retention_schedule SET next_due_at = $1 WHERE next_due_at <= $2 RETURNING next_due_at",
        )
        .bind(next)
        .bind(now)
        .fetch_optional(&mut *tx)
        .instrument(dispatch311_db::statement_span("UPDATE", "retention_schedule"))
        .await?;
        if let Some(next) = moved {
            let envelope = retention_sweep_envelope(next)?;
            outbox::enqueue_envelope(&mut tx, queues::RETENTION, &envelope).await?;
        }
        tx.commit().await?;
        Ok(SweepReport {
            next_due_at: moved,
            ..report
        })
    }

    /// Schedules a sweep at once when the next one is overdue by more than
    /// `policy.every` plus `grace` (the first ever, or one whose job was lost
    /// with Redis). Returns whether it did.
    pub async fn arm_retention(
        &self,
        policy: &RetentionPolicy,
        grace: chrono::Duration,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let armed: Option<DateTime<Utc>> = sqlx::query_scalar(
            "UPDATE retention_schedule SET next_due_at = $1 WHERE next_due_at < $2 RETURNING next_due_at",
        )
        .bind(now)
        .bind(now - policy.every - grace)
        .fetch_optional(&mut *tx)
        .instrument(dispatch311_db::statement_span("UPDATE", "retention_schedule"))
        .await?;
        if let Some(due) = armed {
            let envelope = retention_sweep_envelope(due)?;
            outbox::enqueue_envelope(&mut tx, queues::RETENTION, &envelope).await?;
        }
        tx.commit().await?;
        Ok(armed.is_some())
    }
}
