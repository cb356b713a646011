//! The per-unit feed that units' devices watch (`WatchAssignments`): every
//! change to a unit's assignment, in order. Writers hold the unit's row lock
//! (`SELECT … FROM units … FOR UPDATE`) while pushing, so a unit's entries
//! commit in sequence order and a reader resuming after sequence N misses
//! nothing. A NOTIFY on channel `unit_feed` (payload: the unit id) wakes
//! watchers as soon as the change commits.

use chrono::{DateTime, Utc};
use dispatch311_proto::dispatch::v1::AssignmentChange;
use sqlx::PgConnection;
use uuid::Uuid;

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
    .await?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(unit_id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(sequence)
}
