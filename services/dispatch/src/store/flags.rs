//! Accountability flags: raised by the rules, never removed, each recorded as
//! a FLAGGED event too. A flag has a dedup key so a rule raises it once per
//! occasion (per closure, per assignment, per SLA).

use chrono::{DateTime, Utc};
use dispatch311_domain::time::to_timestamp;
use dispatch311_proto::dispatch::v1::{EventType, Flag, FlagKind};
use sqlx::{PgConnection, PgPool, Row};
use tracing::Instrument;
use uuid::Uuid;

use crate::store::events::{self, ActorRef, NewEvent};

pub fn kind_name(kind: FlagKind) -> &'static str {
    kind.as_str_name().trim_start_matches("FLAG_KIND_")
}

/// Raises a flag unless one with this dedup key exists; returns whether it
/// was raised. The caller holds the job's row lock.
pub async fn raise(
    conn: &mut PgConnection,
    job_id: Uuid,
    kind: FlagKind,
    detail: &str,
    dedup_key: &str,
    at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let raised = sqlx::query(
        "INSERT INTO job_flags (job_id, kind, detail, raised_at, dedup_key) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (job_id, dedup_key) DO NOTHING",
    )
    .bind(job_id)
    .bind(kind_name(kind))
    .bind(detail)
    .bind(at)
    .bind(dedup_key)
    .execute(&mut *conn)
    .instrument(dispatch311_db::statement_span("INSERT", "job_flags"))
    .await?
    .rows_affected()
        == 1;
    if raised {
        let event = NewEvent {
            event_type: EventType::Flagged,
            actor: ActorRef::system(),
            occurred_at: at,
            position: None,
            unit_id: None,
            reason: format!("{}: {detail}", kind_name(kind)),
        };
        events::append(conn, job_id, &event).await?;
    }
    Ok(raised)
}

/// The flags of a job, oldest first.
pub async fn of_job(pool: &PgPool, job_id: Uuid) -> Result<Vec<Flag>, sqlx::Error> {
    let rows =
        sqlx::query("SELECT kind, detail, raised_at FROM job_flags WHERE job_id = $1 ORDER BY id")
            .bind(job_id)
            .fetch_all(pool)
            .instrument(dispatch311_db::statement_span("SELECT", "job_flags"))
            .await?;
    Ok(rows
        .iter()
        .map(|r| flag(r.get("kind"), r.get("detail"), r.get("raised_at")))
        .collect())
}

/// A flag as stored: its kind's name, detail and time.
pub fn flag(kind: String, detail: String, raised_at: DateTime<Utc>) -> Flag {
    Flag {
        kind: FlagKind::from_str_name(&format!("FLAG_KIND_{kind}")).unwrap_or_default() as i32,
        detail,
        raised_at: Some(to_timestamp(raised_at)),
    }
}
