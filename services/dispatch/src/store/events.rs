//! The append-only, hash-chained event log of each job.
//!
//! Every state change appends one event with who, in what role, when, where
//! and why. Each event stores the SHA-256 of its predecessor's hash and its
//! own content (`job_event_hash` in migration 0002 computes it on append;
//! `dispatch311_domain::event_log::event_hash` is the same formula, which
//! `verify` uses so it never trusts a function the database's owner can
//! replace), so a row changed behind the service's back breaks the chain at
//! that event. A trigger refuses UPDATE and DELETE. Against someone who
//! rewrites a whole chain consistently, the signed checkpoints of the whole
//! log hold (`checkpoints`).
//!
//! Callers append while holding the job's row lock (`SELECT … FOR UPDATE` on
//! `jobs`), which orders the events of one job.

use chrono::{DateTime, Utc};
use dispatch311_domain::event_log::EventContent;
use dispatch311_domain::time::to_timestamp;
use dispatch311_proto::{
    common::v1::GeoPoint,
    dispatch::v1::{Actor, EventLogEntry, EventType, JobEvent, Role, VerifyJobTimelineResponse},
};
use sqlx::{PgConnection, PgPool, Row};
use tracing::Instrument;
use uuid::Uuid;

/// Who did something, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorRef {
    pub id: String,
    pub role: Role,
}

impl ActorRef {
    /// The service itself (timers, auto-assignment).
    pub fn system() -> Self {
        Self {
            id: "dispatch".into(),
            role: Role::System,
        }
    }
}

/// An event to append.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_type: EventType,
    pub actor: ActorRef,
    pub occurred_at: DateTime<Utc>,
    pub position: Option<(f64, f64)>,
    pub unit_id: Option<Uuid>,
    pub reason: String,
}

pub fn event_type_name(t: EventType) -> &'static str {
    t.as_str_name().trim_start_matches("EVENT_TYPE_")
}

pub fn role_name(role: Role) -> &'static str {
    role.as_str_name().trim_start_matches("ROLE_")
}

/// Appends `event` to the job's log and returns its sequence. The caller
/// holds the job's row lock.
pub async fn append(
    conn: &mut PgConnection,
    job_id: Uuid,
    event: &NewEvent,
) -> Result<i64, sqlx::Error> {
    let (latitude, longitude) = event.position.unzip();
    sqlx::query_scalar(
        "WITH last AS ( \
            SELECT coalesce(max(sequence), 0) AS sequence, \
                   coalesce((SELECT hash FROM job_events WHERE job_id = $1 ORDER BY sequence DESC LIMIT 1), '') AS hash \
            FROM job_events WHERE job_id = $1), \
         appended AS ( \
            INSERT INTO job_events (job_id, sequence, event_type, occurred_at, actor, actor_role, latitude, \
                longitude, unit_id, reason, previous_hash, hash, trace_id) \
            SELECT $1, last.sequence + 1, $2, $3, $4, $5, $6, $7, $8, $9, last.hash, \
                job_event_hash(last.hash, $1, last.sequence + 1, $2, $3, $4, $5, $6, $7, $8, $9), $10 \
            FROM last RETURNING sequence, hash) \
         UPDATE jobs SET last_event_sequence = appended.sequence, last_event_hash = appended.hash \
         FROM appended WHERE jobs.job_id = $1 RETURNING appended.sequence",
    )
    .bind(job_id)
    .bind(event_type_name(event.event_type))
    .bind(event.occurred_at)
    .bind(&event.actor.id)
    .bind(role_name(event.actor.role))
    .bind(latitude)
    .bind(longitude)
    .bind(event.unit_id)
    .bind(&event.reason)
    .bind(dispatch311_telemetry::propagation::trace_id_of(&tracing::Span::current()).unwrap_or_default())
    .fetch_one(conn)
    .instrument(dispatch311_db::statement_span("INSERT", "job_events"))
    .await
}

/// The columns `event_from_row` reads.
const EVENT_COLUMNS: &str = "sequence, event_type, occurred_at, actor, actor_role, latitude, longitude, \
    unit_id, reason, previous_hash, hash, trace_id";

/// The job's events, oldest first.
pub async fn timeline(pool: &PgPool, job_id: Uuid) -> Result<Vec<JobEvent>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {EVENT_COLUMNS} FROM job_events WHERE job_id = $1 ORDER BY sequence"
    )))
    .bind(job_id)
    .fetch_all(pool)
    .instrument(dispatch311_db::statement_span("SELECT", "job_events"))
    .await?;
    Ok(rows.iter().map(event_from_row).collect())
}

/// Up to `limit` entries of the whole log after position `after`, in log order.
pub async fn log_page(
    pool: &PgPool,
    after: i64,
    limit: i64,
) -> Result<Vec<EventLogEntry>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT l.log_index, e.job_id, {} FROM event_log l JOIN job_events e ON e.id = l.event_id \
         WHERE l.log_index > $1 ORDER BY l.log_index LIMIT $2",
        EVENT_COLUMNS
            .split(", ")
            .map(|c| format!("e.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    )))
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .instrument(dispatch311_db::statement_span("SELECT", "event_log"))
    .await?;
    Ok(rows
        .iter()
        .map(|row| EventLogEntry {
            log_index: row.get("log_index"),
            job_id: row.get::<Uuid, _>("job_id").to_string(),
            event: Some(event_from_row(row)),
        })
        .collect())
}

fn event_from_row(r: &sqlx::postgres::PgRow) -> JobEvent {
    let latitude: Option<f64> = r.get("latitude");
    let longitude: Option<f64> = r.get("longitude");
    let unit_id: Option<Uuid> = r.get("unit_id");
    let event_type: String = r.get("event_type");
    let role: String = r.get("actor_role");
    JobEvent {
        sequence: r.get("sequence"),
        r#type: EventType::from_str_name(&format!("EVENT_TYPE_{event_type}")).unwrap_or_default()
            as i32,
        occurred_at: Some(to_timestamp(r.get("occurred_at"))),
        actor: Some(Actor {
            id: r.get("actor"),
            role: Role::from_str_name(&format!("ROLE_{role}")).unwrap_or_default() as i32,
        }),
        position: latitude
            .zip(longitude)
            .map(|(latitude, longitude)| GeoPoint {
                latitude,
                longitude,
            }),
        unit_id: unit_id.map(|u| u.to_string()).unwrap_or_default(),
        reason: r.get("reason"),
        hash: r.get("hash"),
        previous_hash: r.get("previous_hash"),
        trace_id: r.get("trace_id"),
    }
}

/// An event's hash recomputed from the content of its row (columns
/// `previous_hash`, `sequence`, `event_type`, `occurred_at_micros` — the time
/// in microseconds —, `actor`, `actor_role`, `latitude`, `longitude`,
/// `unit_id`, `reason`), with the one formula of `dispatch311_domain::event_log`.
pub fn recomputed_hash(row: &sqlx::postgres::PgRow, job_id: Uuid) -> String {
    let previous_hash: String = row.get("previous_hash");
    let event_type: String = row.get("event_type");
    let actor: String = row.get("actor");
    let actor_role: String = row.get("actor_role");
    let reason: String = row.get("reason");
    dispatch311_domain::event_log::event_hash(&EventContent {
        previous_hash: &previous_hash,
        job_id,
        sequence: row.get("sequence"),
        event_type: &event_type,
        occurred_at_micros: row.get("occurred_at_micros"),
        actor: &actor,
        actor_role: &actor_role,
        latitude: row.get("latitude"),
        longitude: row.get("longitude"),
        unit_id: row.get("unit_id"),
        reason: &reason,
    })
}

/// Recomputes every event's hash from its content and its predecessor's
/// stored hash — here, in Rust, never with the database's own function, which
/// whoever owns the database can replace — and reports the first event where
/// either does not match.
pub async fn verify(pool: &PgPool, job_id: Uuid) -> Result<VerifyJobTimelineResponse, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT sequence, hash, previous_hash, event_type, \
            (extract(epoch FROM occurred_at) * 1000000)::bigint AS occurred_at_micros, actor, actor_role, \
            latitude, longitude, unit_id, reason \
         FROM job_events WHERE job_id = $1 ORDER BY sequence",
    )
    .bind(job_id)
    .fetch_all(pool)
    .instrument(dispatch311_db::statement_span("SELECT", "job_events"))
    .await?;
    let mut checked = 0;
    let mut predecessor: Option<(i64, String)> = None;
    for row in &rows {
        checked += 1;
        let sequence: i64 = row.get("sequence");
        let hash: String = row.get("hash");
        let previous_hash: String = row.get("previous_hash");
        let recomputed = recomputed_hash(row, job_id);
        let (predecessor_sequence, predecessor_hash) = predecessor.clone().unzip();
        let broken = if predecessor_sequence.map_or(sequence != 1, |p| p + 1 != sequence) {
            Some(format!(
                "event {sequence} does not follow event {}",
                predecessor_sequence.unwrap_or(0)
            ))
        } else if previous_hash != predecessor_hash.unwrap_or_default() {
            Some(format!(
                "event {sequence} does not chain to the event before it"
            ))
        } else if hash != recomputed {
            Some(format!(
                "event {sequence} was changed after it was recorded"
            ))
        } else {
            None
        };
        if let Some(detail) = broken {
            return Ok(VerifyJobTimelineResponse {
                intact: false,
                events_checked: checked,
                first_broken_sequence: sequence,
                detail,
                ..Default::default()
            });
        }
        predecessor = Some((sequence, hash));
    }
    // the job row remembers where its log ends: a log cut short at the end
    // chains perfectly and only this catches it
    let (anchor_sequence, anchor_hash): (i64, String) =
        sqlx::query_as("SELECT last_event_sequence, last_event_hash FROM jobs WHERE job_id = $1")
            .bind(job_id)
            .fetch_optional(pool)
            .instrument(dispatch311_db::statement_span("SELECT", "jobs"))
            .await?
            .unwrap_or_default();
    let last = predecessor;
    if last != Some((anchor_sequence, anchor_hash)) && anchor_sequence > 0 {
        let ends_at = last.map_or(0, |(sequence, _)| sequence);
        return Ok(VerifyJobTimelineResponse {
            intact: false,
            events_checked: checked,
            first_broken_sequence: ends_at + 1,
            detail: format!(
                "the log ends at event {ends_at} but the job recorded event {anchor_sequence} as its last"
            ),
            ..Default::default()
        });
    }
    Ok(VerifyJobTimelineResponse {
        intact: true,
        events_checked: checked,
        first_broken_sequence: 0,
        detail: String::new(),
        ..Default::default()
    })
}
