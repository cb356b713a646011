//! The per-unit feed that units' devices watch (`WatchAssignments`): every
//! change to a unit's assignment, in order. Writers hold the unit's row lock
//! (`SELECT … FROM units … FOR UPDATE`) while pushing, so a unit's entries
//! commit in sequence order and a reader resuming after sequence N misses
//! nothing. A NOTIFY on channel `unit_feed` (payload: the unit id) wakes
//! watchers as soon as the change commits.

use chrono::{DateTime, Utc};
use dispatch311_proto::dispatch::v1::{self as dispatch, AssignmentChange};
use sqlx::{PgConnection, PgPool, Row};
use tracing::Instrument;
use uuid::Uuid;

use super::{JOB_COLUMNS, job_from_row};

pub const CHANNEL: &str = "unit_feed";

pub fn change_name(change: AssignmentChange) -> &'static str {
    change
        .as_str_name()
        .trim_start_matches("ASSIGNMENT_CHANGE_")
}

/// Appends a change to the unit's feed; the caller holds the unit's row lock.
pub async fn push(
    conn: &mut PgConnection,
    unit_id: Uuid,
    job_id: Uuid,
    change: AssignmentChange,
    at: DateTime<Utc>,
) -> Result<i64, sqlx::Error> {
    let sequence = sqlx::query_scalar(
        "INSERT INTO unit_feed (unit_id, job_id, change, occurred_at) VALUES ($1, $2, $3, $4) RETURNING sequence",
    )
    .bind(unit_id)
    .bind(job_id)
    .bind(change_name(change))
    .bind(at)
    .fetch_one(&mut *conn)
    .instrument(dispatch311_db::statement_span("INSERT", "unit_feed"))
    .await?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(unit_id.to_string())
        .execute(&mut *conn)
        .instrument(dispatch311_db::statement_span("NOTIFY", "unit_feed"))
        .await?;
    Ok(sequence)
}

/// The sequence to resume after for a stream that starts with the unit's
/// current assignment: just before its latest ASSIGNED entry for the job it
/// holds, or after its latest entry when it holds none. One statement, so
/// the job and the feed are read from one snapshot.
pub async fn start_of_current_assignment(pool: &PgPool, unit_id: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT coalesce( \
            (SELECT max(f.sequence) - 1 FROM unit_feed f JOIN units u ON u.unit_id = f.unit_id \
             WHERE f.unit_id = $1 AND f.job_id = u.current_job_id AND f.change = $2), \
            (SELECT max(sequence) FROM unit_feed WHERE unit_id = $1), \
            0)",
    )
    .bind(unit_id)
    .bind(change_name(AssignmentChange::Assigned))
    .fetch_one(pool)
    .instrument(dispatch311_db::statement_span("SELECT", "unit_feed"))
    .await
}

/// One entry of a unit's feed.
pub struct FeedEntry {
    pub sequence: i64,
    pub job_id: Uuid,
    pub change: AssignmentChange,
    pub occurred_at: DateTime<Utc>,
    /// The job as it was when the change committed (migration 0004); `None`
    /// for entries older than that snapshot.
    pub job: Option<dispatch::Job>,
}

/// Up to `limit` entries of the unit's feed after sequence `after`, oldest first.
pub async fn read_feed(
    pool: &PgPool,
    unit_id: Uuid,
    after: i64,
    limit: i64,
) -> Result<Vec<FeedEntry>, sqlx::Error> {
    // the snapshot is turned back into a row of the jobs table, named `jobs`
    // so the usual job columns and row mapping apply to it
    let sql = format!(
        "SELECT f.sequence AS feed_sequence, f.job_id AS feed_job_id, f.change AS feed_change, \
            f.occurred_at AS feed_occurred_at, f.job_snapshot IS NOT NULL AS has_snapshot, {JOB_COLUMNS} \
         FROM unit_feed f, jsonb_populate_record(NULL::jobs, f.job_snapshot) AS jobs \
         WHERE f.unit_id = $1 AND f.sequence > $2 ORDER BY f.sequence LIMIT $3"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(unit_id)
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .instrument(dispatch311_db::statement_span("SELECT", "unit_feed"))
        .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let change: String = row.get("feed_change");
            FeedEntry {
                sequence: row.get("feed_sequence"),
                job_id: row.get("feed_job_id"),
                change: AssignmentChange::from_str_name(&format!("ASSIGNMENT_CHANGE_{change}"))
                    .unwrap_or_default(),
                occurred_at: row.get("feed_occurred_at"),
                job: row
                    .get::<bool, _>("has_snapshot")
                    .then(|| job_from_row(row)),
            }
        })
        .collect())
}
