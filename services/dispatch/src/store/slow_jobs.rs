//! The slow-dispatch finder's read: the jobs whose chosen lifecycle step
//! took longest, or has been waiting longest, with when each step happened
//! and the trace that made it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use dispatch311_proto::dispatch::v1::LifecycleStep;
use sqlx::{PgPool, Row};
use tracing::Instrument;
use uuid::Uuid;

use super::{JobRow, StoreResult, job_row};

/// When a step begins and ends (columns of `jobs`), and the event that ends it.
#[derive(Debug, Clone, Copy)]
pub struct StepSpan {
    pub step: LifecycleStep,
    pub from: &'static str,
    pub to: &'static str,
    pub event: &'static str,
}

/// Every step the finder times, in lifecycle order. Steps after assignment
/// are timed from the assignment, as the job metrics are.
pub const STEPS: [StepSpan; 6] = [
    StepSpan {
        step: LifecycleStep::Queued,
        from: "routed_at",
        to: "queued_at",
        event: "QUEUED",
    },
    StepSpan {
        step: LifecycleStep::Assigned,
        from: "queued_at",
        to: "assigned_at",
        event: "ASSIGNED",
    },
    StepSpan {
        step: LifecycleStep::Acknowledged,
        from: "assigned_at",
        to: "acknowledged_at",
        event: "ACKNOWLEDGED",
    },
    StepSpan {
        step: LifecycleStep::EnRoute,
        from: "assigned_at",
        to: "en_route_at",
        event: "EN_ROUTE",
    },
    StepSpan {
        step: LifecycleStep::OnScene,
        from: "assigned_at",
        to: "on_scene_at",
        event: "ON_SCENE",
    },
    StepSpan {
        step: LifecycleStep::Closed,
        from: "assigned_at",
        to: "closed_at",
        event: "CLOSED",
    },
];

/// How the finder's step is chosen and the jobs narrowed.
#[derive(Debug, Clone)]
pub struct SlowJobsQuery<'a> {
    pub step: StepSpan,
    /// Only steps that began at or after this.
    pub began_after: DateTime<Utc>,
    pub at_least: chrono::TimeDelta,
    /// Empty for every precinct.
    pub precinct: &'a str,
    /// The last job of the page before: its duration (µs) and id.
    pub after: Option<(i64, Uuid)>,
    pub limit: i64,
}

/// One job the finder lists.
#[derive(Debug, Clone)]
pub struct SlowJobRow {
    pub job: JobRow,
    pub routed_at: Option<DateTime<Utc>>,
    /// How long the step took, or has been waiting, in microseconds.
    pub duration_micros: i64,
    /// The step has not happened yet.
    pub waiting: bool,
    /// The trace id of the latest event of each type, by event type.
    pub trace_ids: HashMap<String, String>,
}

/// The jobs whose step took longest, slowest first, by (duration, job id)
/// after `query.after`. A step still waiting counts until now, but only
/// while the job can still reach it (not closed, cancelled or re-routed).
pub async fn slow_jobs(pool: &PgPool, query: &SlowJobsQuery<'_>) -> StoreResult<Vec<SlowJobRow>> {
    let StepSpan { from, to, .. } = query.step;
    let (after_micros, after_job_id) = query.after.unzip();
    // `from` and `to` come from STEPS, never from the request
    let sql = format!(
        "WITH timed AS ( \
            SELECT jobs.*, {to} IS NULL AS waiting, \
                (extract(epoch FROM coalesce({to}, now()) - {from}) * 1000000)::bigint AS duration_micros \
            FROM jobs \
            WHERE {from} >= $1 AND ($2 = '' OR precinct = $2) \
              AND ({to} IS NOT NULL OR state NOT IN ('CLOSED', 'CANCELLED', 'REROUTED'))) \
         SELECT timed.*, \
            (SELECT call_sign FROM units u WHERE u.unit_id = timed.unit_id) AS unit_call_sign, \
            (SELECT coalesce(jsonb_object_agg(event_type, trace_id), '{{}}'::jsonb) FROM ( \
                SELECT DISTINCT ON (event_type) event_type, trace_id FROM job_events e \
                WHERE e.job_id = timed.job_id ORDER BY event_type, sequence DESC) latest) AS trace_ids \
         FROM timed \
         WHERE duration_micros >= $3 \
           AND ($4::bigint IS NULL OR (duration_micros, job_id) < ($4::bigint, $5::uuid)) \
         ORDER BY duration_micros DESC, job_id DESC LIMIT $6"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(query.began_after)
        .bind(query.precinct)
        .bind(query.at_least.num_microseconds().unwrap_or(i64::MAX))
        .bind(after_micros)
        .bind(after_job_id)
        .bind(query.limit)
        .fetch_all(pool)
        .instrument(dispatch311_db::statement_span("SELECT", "jobs"))
        .await?;
    rows.iter()
        .map(|row| {
            let trace_ids: sqlx::types::Json<HashMap<String, String>> = row.try_get("trace_ids")?;
            Ok(SlowJobRow {
                job: job_row(row),
                routed_at: row.try_get("routed_at")?,
                duration_micros: row.try_get("duration_micros")?,
                waiting: row.try_get("waiting")?,
                trace_ids: trace_ids.0,
            })
        })
        .collect()
}
