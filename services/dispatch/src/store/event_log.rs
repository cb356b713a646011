//! The numbered event log (`event_log`), its block roots and the record of
//! signed checkpoints: what the checkpointer reads and writes.

use futures::{StreamExt as _, TryStreamExt as _, stream::BoxStream};
use sqlx::{PgPool, Row, postgres::PgRow};
use tracing::Instrument;
use uuid::Uuid;

/// Columns of an event as its hash covers it, in log order.
const ENTRY_COLUMNS: &str = "l.log_index, e.job_id, e.sequence, e.event_type, \
    (extract(epoch FROM e.occurred_at) * 1000000)::bigint AS occurred_at_micros, e.actor, e.actor_role, \
    e.latitude, e.longitude, e.unit_id, e.reason, e.previous_hash, e.hash";

/// One event of the log as read back, with its hash recomputed here.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub log_index: i64,
    pub job_id: Uuid,
    pub sequence: i64,
    pub stored_hash: String,
    pub recomputed_hash: String,
}

impl LogEntry {
    fn from_row(row: &PgRow) -> Self {
        let job_id: Uuid = row.get("job_id");
        let sequence: i64 = row.get("sequence");
        let recomputed_hash = super::events::recomputed_hash(row, job_id);
        Self {
            log_index: row.get("log_index"),
            job_id,
            sequence,
            stored_hash: row.get("hash"),
            recomputed_hash,
        }
    }
}

/// Numbers the events committed since the last numbering, in id order, one
/// numbering at a time whatever the replica (an advisory lock): numbers are
/// final once committed, so every replica builds the same tree. Looks
/// `late_commit_window` ids back for events committed after later ones.
pub async fn number_new_events(pool: &PgPool, late_commit_window: i64) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('dispatch.event_log'))")
        .execute(&mut *tx)
        .instrument(dispatch311_db::statement_span("LOCK", "event_log"))
        .await?;
    sqlx::query(
        "INSERT INTO event_log (log_index, event_id) \
         SELECT last.next + row_number() OVER (ORDER BY e.id) - 1, e.id \
         FROM job_events e, \
              (SELECT coalesce(max(log_index) + 1, 0) AS next, coalesce(max(event_id), 0) AS top FROM event_log) last \
         WHERE e.id > last.top - $1 \
           AND NOT EXISTS (SELECT 1 FROM event_log l WHERE l.event_id = e.id) \
         ORDER BY e.id",
    )
    .bind(late_commit_window)
    .execute(&mut *tx)
    .instrument(dispatch311_db::statement_span("INSERT", "event_log"))
    .await?;
    tx.commit().await
}

/// The log's entries from `first` (inclusive) to `end` (exclusive; `None`:
/// to the end), in log order, as they are read.
pub fn entries(
    pool: &PgPool,
    first: i64,
    end: Option<i64>,
) -> BoxStream<'_, Result<LogEntry, sqlx::Error>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ENTRY_COLUMNS} FROM event_log l JOIN job_events e ON e.id = l.event_id \
         WHERE l.log_index >= $1 AND ($2::bigint IS NULL OR l.log_index < $2) ORDER BY l.log_index"
    )))
    .bind(first)
    .bind(end)
    .fetch(pool)
    .map_ok(|row| LogEntry::from_row(&row))
    .boxed()
}

/// `job_id`'s entries among the log's first `size`.
pub async fn job_entries(
    pool: &PgPool,
    job_id: Uuid,
    size: i64,
) -> Result<Vec<LogEntry>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ENTRY_COLUMNS} FROM event_log l JOIN job_events e ON e.id = l.event_id \
         WHERE e.job_id = $1 AND l.log_index < $2"
    )))
    .bind(job_id)
    .bind(size)
    .fetch_all(pool)
    .instrument(dispatch311_db::statement_span("SELECT", "event_log"))
    .await?;
    Ok(rows.iter().map(LogEntry::from_row).collect())
}

/// The stored hashes of entries `start..end`, with their log index.
pub async fn stored_hashes(
    pool: &PgPool,
    start: i64,
    end: i64,
) -> Result<Vec<(i64, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT l.log_index, e.hash FROM event_log l JOIN job_events e ON e.id = l.event_id \
         WHERE l.log_index >= $1 AND l.log_index < $2 ORDER BY l.log_index",
    )
    .bind(start)
    .bind(end)
    .fetch_all(pool)
    .instrument(dispatch311_db::statement_span("SELECT", "event_log"))
    .await
}

/// How many of the first `size` entries the log holds without a gap at its
/// end (the highest index below `size`, plus one).
pub async fn size_within(pool: &PgPool, size: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT coalesce(max(log_index) + 1, 0) FROM event_log WHERE log_index < $1")
        .bind(size)
        .fetch_one(pool)
        .instrument(dispatch311_db::statement_span("SELECT", "event_log"))
        .await
}

/// Records the roots of finished blocks (kept if already there).
pub async fn save_block_roots(pool: &PgPool, roots: &[(i64, [u8; 32])]) -> Result<(), sqlx::Error> {
    for (block_index, root) in roots {
        sqlx::query(
            "INSERT INTO event_log_blocks (block_index, root_hash) VALUES ($1, $2) \
             ON CONFLICT (block_index) DO NOTHING",
        )
        .bind(block_index)
        .bind(root.as_slice())
        .execute(pool)
        .instrument(dispatch311_db::statement_span("INSERT", "event_log_blocks"))
        .await?;
    }
    Ok(())
}

/// The stored roots of the blocks below `below`, in order.
pub async fn block_roots(pool: &PgPool, below: i64) -> Result<Vec<(i64, Vec<u8>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT block_index, root_hash FROM event_log_blocks WHERE block_index < $1 ORDER BY block_index",
    )
    .bind(below)
    .fetch_all(pool)
    .instrument(dispatch311_db::statement_span("SELECT", "event_log_blocks"))
    .await
}

/// Records a signed and exported checkpoint (kept if already there).
pub async fn record_checkpoint(
    pool: &PgPool,
    size: i64,
    root_hex: &str,
    note: &str,
    signed_at: chrono::DateTime<chrono::Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO checkpoints (tree_size, root_hash, note, signed_at, exported) \
         VALUES ($1, $2, $3, $4, true) ON CONFLICT (tree_size) DO NOTHING",
    )
    .bind(size)
    .bind(root_hex)
    .bind(note)
    .bind(signed_at)
    .execute(pool)
    .instrument(dispatch311_db::statement_span("INSERT", "checkpoints"))
    .await?;
    Ok(())
}
