//! The audit listings: contact releases and retention deletions.

use super::*;
use tracing::Instrument;

/// A row of an audit record (a release, a retention deletion) with its
/// keyset position: newest first by (`recorded_at`, `id`).
pub struct AuditRow<T> {
    pub id: i64,
    pub recorded_at: DateTime<Utc>,
    pub record: T,
}

/// `retention_deletions.what` ('contact', 'description', 'voice_recording',
/// 'unfiled_photo') as the API names it.
pub(super) fn deleted_data_from_name(name: &str) -> DeletedData {
    DeletedData::from_str_name(&format!("DELETED_DATA_{}", name.to_uppercase())).unwrap_or_default()
}

impl Store {
    /// Recorded releases, newest first, after the query's keyset position;
    /// at most `limit`.
    pub async fn list_releases(
        &self,
        query: &AuditListQuery,
        limit: usize,
    ) -> StoreResult<Vec<AuditRow<ContactRelease>>> {
        let (after_at, after_id) = query.after.unzip();
        let rows = sqlx::query(
            "SELECT id, sr_number, purpose, requester, released_at FROM contact_releases \
             WHERE ($1::text IS NULL OR sr_number = $1) \
               AND ($2::timestamptz IS NULL OR (released_at, id) < ($2, $3)) \
             ORDER BY released_at DESC, id DESC LIMIT $4",
        )
        .bind(query.sr_number.as_deref())
        .bind(after_at)
        .bind(after_id)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .instrument(dispatch311_db::statement_span("SELECT", "contact_releases"))
        .await?;
        Ok(rows
            .iter()
            .map(|row| {
                let released_at: DateTime<Utc> = row.get("released_at");
                AuditRow {
                    id: row.get("id"),
                    recorded_at: released_at,
                    record: ContactRelease {
                        sr_number: row.get("sr_number"),
                        purpose: purpose_from_name(row.get("purpose")) as i32,
                        requester: row.get("requester"),
                        released_at: Some(to_timestamp(released_at)),
                    },
                }
            })
            .collect())
    }

    /// What the retention sweep deleted, newest first.
    pub async fn list_retention_deletions(
        &self,
        query: &AuditListQuery,
        limit: usize,
    ) -> StoreResult<Vec<AuditRow<RetentionDeletion>>> {
        let (after_at, after_id) = query.after.unzip();
        let rows = sqlx::query(
            "SELECT id, sr_number, what, deleted_at, photo_id FROM retention_deletions \
             WHERE ($1::text IS NULL OR sr_number = $1) \
               AND ($2::timestamptz IS NULL OR (deleted_at, id) < ($2, $3)) \
             ORDER BY deleted_at DESC, id DESC LIMIT $4",
        )
        .bind(query.sr_number.as_deref())
        .bind(after_at)
        .bind(after_id)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .instrument(dispatch311_db::statement_span(
            "SELECT",
            "retention_deletions",
        ))
        .await?;
        Ok(rows
            .iter()
            .map(|row| {
                let deleted_at: DateTime<Utc> = row.get("deleted_at");
                let what: &str = row.get("what");
                AuditRow {
                    id: row.get("id"),
                    recorded_at: deleted_at,
                    record: RetentionDeletion {
                        sr_number: row
                            .get::<Option<String>, _>("sr_number")
                            .unwrap_or_default(),
                        deleted: deleted_data_from_name(what) as i32,
                        deleted_at: Some(to_timestamp(deleted_at)),
                        photo_id: row
                            .get::<Option<Uuid>, _>("photo_id")
                            .map(|id| id.to_string())
                            .unwrap_or_default(),
                    },
                }
            })
            .collect())
    }
}
