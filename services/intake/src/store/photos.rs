//! Photos uploaded before a request is filed.

use super::*;
use tracing::Instrument;

impl Store {
    /// Records a photo `uploaded_by` put in the photo store.
    pub async fn record_photo(
        &self,
        photo_id: Uuid,
        uploaded_by: &str,
        content_type: &str,
        size_bytes: usize,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO photos (photo_id, uploaded_by, content_type, size_bytes, uploaded_at) \
             VALUES ($1, $2, $3, $4, now())",
        )
        .bind(photo_id)
        .bind(uploaded_by)
        .bind(content_type)
        .bind(i32::try_from(size_bytes).unwrap_or(i32::MAX))
        .execute(&self.pool)
        .instrument(dispatch311_db::statement_span("INSERT", "photos"))
        .await?;
        Ok(())
    }
}
