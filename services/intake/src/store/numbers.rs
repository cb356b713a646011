//! SR numbers drawn in blocks: the sequence advances by `BLOCK` per call, and
//! this process hands out the numbers of its block one by one. Unique across
//! replicas (each holds its own block), dense within a block, with a gap
//! when a process stops before using its block up.

use sqlx::PgPool;
use tokio::sync::Mutex;
use tracing::Instrument;

/// Must equal the sequence's INCREMENT BY (migration 0002).
pub const BLOCK: i64 = 100;

#[derive(Default)]
pub struct SrSequence {
    /// The next number to hand out and the end of the block (exclusive).
    block: Mutex<(i64, i64)>,
}

impl SrSequence {
    pub async fn next(&self, pool: &PgPool) -> Result<i64, sqlx::Error> {
        let mut block = self.block.lock().await;
        if block.0 >= block.1 {
            let start: i64 = sqlx::query_scalar("SELECT nextval('sr_number_seq')")
                .fetch_one(pool)
                .instrument(dispatch311_db::statement_span("SELECT", "sr_number_seq"))
                .await?;
            *block = (start, start + BLOCK);
        }
        let number = block.0;
        block.0 += 1;
        Ok(number)
    }
}
