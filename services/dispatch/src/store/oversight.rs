//! What supervisors and auditors read: jobs by filter, the review list of
//! flagged jobs, a precinct's figures and repeat locations, and whether a job
//! exists.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use dispatch311_domain::status::resolution_name;
use dispatch311_proto::{
    common::v1::ResolutionCode,
    dispatch::v1::{Flag, Job, JobFilter, JobState},
};
use sqlx::{PgPool, Row};
use tracing::Instrument;
use uuid::Uuid;

use super::{JOB_COLUMNS, StoreResult, flags, job_from_row, state_name};

/// `share_closed_within_5_minutes`: closures this soon after assignment.
const QUICK_CLOSURE_SECS: f64 = 300.0;

/// Up to `limit` jobs of `precinct` matching `filter` (and held by `unit_id`
/// when given), by (`queued_at`, `job_id`) after `after`, with their flags.
pub async fn list_jobs(
    pool: &PgPool,
    precinct: &str,
    filter: JobFilter,
    unit_id: Option<Uuid>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> StoreResult<Vec<Job>> {
    let (after_queued_at, after_job_id) = after.unzip();
    let sql = format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE precinct = $1 AND ({}) \
           AND ($2::uuid IS NULL OR unit_id = $2) \
           AND ($3::timestamptz IS NULL OR (queued_at, job_id) > ($3::timestamptz, $4::uuid)) \
         ORDER BY queued_at, job_id LIMIT $5",
        filter_condition(filter)
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(precinct)
        .bind(unit_id)
        .bind(after_queued_at)
        .bind(after_job_id)
        .bind(limit)
        .fetch_all(pool)
        .instrument(dispatch311_db::statement_span("SELECT", "jobs"))
        .await?;
    let mut jobs: Vec<Job> = rows.iter().map(job_from_row).collect();
    with_flags(pool, &mut jobs).await?;
    Ok(jobs)
}

/// A flag of the review list with its job.
pub struct ReviewItem {
    pub flag_id: i64,
    pub flag: Flag,
    pub job: Job,
}

/// Up to `limit` flags raised on `precinct`'s jobs, newest first, before
/// the flag `before` when given.
pub async fn review_items(
    pool: &PgPool,
    precinct: &str,
    before: Option<i64>,
    limit: i64,
) -> StoreResult<Vec<ReviewItem>> {
    let sql = format!(
        "SELECT f.id AS flag_id, f.kind AS flag_kind, f.detail AS flag_detail, \
            f.raised_at AS flag_raised_at, {JOB_COLUMNS} \
         FROM job_flags f JOIN jobs ON jobs.job_id = f.job_id \
         WHERE jobs.precinct = $1 AND ($2::bigint IS NULL OR f.id < $2) \
         ORDER BY f.id DESC LIMIT $3"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(precinct)
        .bind(before)
        .bind(limit)
        .fetch_all(pool)
        .instrument(dispatch311_db::statement_span("SELECT", "job_flags"))
        .await?;
    let mut jobs: Vec<Job> = rows.iter().map(job_from_row).collect();
    with_flags(pool, &mut jobs).await?;
    Ok(rows
        .iter()
        .zip(jobs)
        .map(|(row, job)| ReviewItem {
            flag_id: row.get("flag_id"),
            flag: flags::flag(
                row.get("flag_kind"),
                row.get("flag_detail"),
                row.get("flag_raised_at"),
            ),
            job,
        })
        .collect())
}

/// A precinct's figures for the jobs first queued in a window.
#[derive(Debug, Clone, PartialEq)]
pub struct PrecinctFigures {
    pub jobs_received: i64,
    pub jobs_closed: i64,
    /// Seconds from assignment; `None` when no job got that far.
    pub median_to_arrival: Option<f64>,
    pub p90_to_arrival: Option<f64>,
    pub median_to_close: Option<f64>,
    pub p90_to_close: Option<f64>,
    /// Closed within five minutes of assignment.
    pub closed_quickly: i64,
    pub closed_with_summons: i64,
    pub sla_breaches: i64,
    pub flagged_jobs: i64,
    /// Each job's own request and the reports linked to it.
    pub requests_received: i64,
    pub requests_closed: i64,
}

/// `precinct`'s figures for the jobs first queued in `[start, end)`: the
/// first event of a job's log (`queued_at` moves when a job is reopened).
pub async fn precinct_figures(
    pool: &PgPool,
    precinct: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> StoreResult<PrecinctFigures> {
    let row = sqlx::query(
        "WITH received AS ( \
            SELECT j.state, j.sla_breached, j.resolution_code, j.report_count, \
                extract(epoch FROM (j.on_scene_at - j.assigned_at))::float8 AS to_arrival, \
                CASE WHEN j.state = $4 THEN extract(epoch FROM (j.closed_at - j.assigned_at))::float8 END AS to_close, \
                EXISTS (SELECT 1 FROM job_flags f WHERE f.job_id = j.job_id) AS flagged \
            FROM jobs j JOIN job_events e ON e.job_id = j.job_id AND e.sequence = 1 \
            WHERE j.precinct = $1 AND e.occurred_at >= $2 AND e.occurred_at < $3) \
         SELECT count(*) AS jobs_received, \
            count(*) FILTER (WHERE state = $4) AS jobs_closed, \
            percentile_cont(0.5) WITHIN GROUP (ORDER BY to_arrival) AS median_to_arrival, \
            percentile_cont(0.9) WITHIN GROUP (ORDER BY to_arrival) AS p90_to_arrival, \
            percentile_cont(0.5) WITHIN GROUP (ORDER BY to_close) AS median_to_close, \
            percentile_cont(0.9) WITHIN GROUP (ORDER BY to_close) AS p90_to_close, \
            count(*) FILTER (WHERE to_close <= $5) AS closed_quickly, \
            count(*) FILTER (WHERE state = $4 AND resolution_code = $6) AS closed_with_summons, \
            count(*) FILTER (WHERE sla_breached) AS sla_breaches, \
            count(*) FILTER (WHERE flagged) AS flagged_jobs, \
            coalesce(sum(report_count), 0)::int8 AS requests_received, \
            coalesce(sum(report_count) FILTER (WHERE state = $4), 0)::int8 AS requests_closed \
         FROM received",
    )
    .bind(precinct)
    .bind(start)
    .bind(end)
    .bind(state_name(JobState::Closed))
    .bind(QUICK_CLOSURE_SECS)
    .bind(resolution_name(ResolutionCode::SummonsIssued))
    .fetch_one(pool)
    .instrument(dispatch311_db::statement_span("SELECT", "jobs"))
    .await?;
    Ok(PrecinctFigures {
        jobs_received: row.try_get("jobs_received")?,
        jobs_closed: row.try_get("jobs_closed")?,
        median_to_arrival: row.try_get("median_to_arrival")?,
        p90_to_arrival: row.try_get("p90_to_arrival")?,
        median_to_close: row.try_get("median_to_close")?,
        p90_to_close: row.try_get("p90_to_close")?,
        closed_quickly: row.try_get("closed_quickly")?,
        closed_with_summons: row.try_get("closed_with_summons")?,
        sla_breaches: row.try_get("sla_breaches")?,
        flagged_jobs: row.try_get("flagged_jobs")?,
        requests_received: row.try_get("requests_received")?,
        requests_closed: row.try_get("requests_closed")?,
    })
}

/// A place of a precinct and what was reported there.
#[derive(Debug, Clone, PartialEq)]
pub struct RepeatLocation {
    pub street_address: String,
    pub borough: String,
    pub jobs: i64,
    pub requests: i64,
    pub open_jobs: i64,
    pub complaint_types: Vec<String>,
    pub last_reported_at: DateTime<Utc>,
}

/// `precinct`'s places with more than one request among the jobs first
/// reported since `since`, grouped by street address (case, spacing and
/// punctuation aside), most requests first.
pub async fn repeat_locations(
    pool: &PgPool,
    precinct: &str,
    since: DateTime<Utc>,
    limit: i64,
) -> StoreResult<Vec<RepeatLocation>> {
    let rows = sqlx::query(
        "WITH located AS ( \
            SELECT upper(btrim(regexp_replace(j.street_address, '[[:space:].,]+', ' ', 'g'))) AS address, \
                j.borough, j.complaint_type, j.report_count, j.state, \
                greatest(j.created_at, (SELECT max(r.created_at) FROM job_reports r WHERE r.job_id = j.job_id AND r.unlinked_at IS NULL)) \
                    AS last_reported_at \
            FROM jobs j WHERE j.precinct = $1 AND j.created_at >= $2) \
         SELECT address, min(borough) AS borough, count(*) AS jobs, sum(report_count)::int8 AS requests, \
            count(*) FILTER (WHERE state IN ('QUEUED', 'ASSIGNED', 'ACKNOWLEDGED', 'EN_ROUTE', 'ON_SCENE')) \
                AS open_jobs, \
            array_agg(DISTINCT complaint_type ORDER BY complaint_type) AS complaint_types, \
            max(last_reported_at) AS last_reported_at \
         FROM located WHERE address <> '' \
         GROUP BY address HAVING sum(report_count) > 1 \
         ORDER BY requests DESC, jobs DESC, last_reported_at DESC, address \
         LIMIT $3",
    )
    .bind(precinct)
    .bind(since)
    .bind(limit)
    .fetch_all(pool)
    .instrument(dispatch311_db::statement_span("SELECT", "jobs"))
    .await?;
    let locations = rows
        .iter()
        .map(|row| {
            Ok(RepeatLocation {
                street_address: row.try_get("address")?,
                borough: row.try_get("borough")?,
                jobs: row.try_get("jobs")?,
                requests: row.try_get("requests")?,
                open_jobs: row.try_get("open_jobs")?,
                complaint_types: row.try_get("complaint_types")?,
                last_reported_at: row.try_get("last_reported_at")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(locations)
}

/// Whether there is a job `job_id`.
pub async fn job_exists(pool: &PgPool, job_id: Uuid) -> StoreResult<bool> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM jobs WHERE job_id = $1)")
            .bind(job_id)
            .fetch_one(pool)
            .instrument(dispatch311_db::statement_span("SELECT", "jobs"))
            .await?,
    )
}

/// The SQL condition on `jobs` of a `ListJobs` filter.
fn filter_condition(filter: JobFilter) -> &'static str {
    match filter {
        JobFilter::Unspecified => "true",
        JobFilter::Open => "jobs.state NOT IN ('CLOSED', 'CANCELLED', 'REROUTED')",
        JobFilter::Assigned => "jobs.state IN ('ASSIGNED', 'ACKNOWLEDGED', 'EN_ROUTE', 'ON_SCENE')",
        JobFilter::Overdue => {
            "jobs.state NOT IN ('CLOSED', 'CANCELLED', 'REROUTED') AND jobs.sla_due_at < now()"
        }
        JobFilter::Flagged => "EXISTS (SELECT 1 FROM job_flags f WHERE f.job_id = jobs.job_id)",
    }
}

/// Fills in the flags of `jobs` with one query.
async fn with_flags(pool: &PgPool, jobs: &mut [Job]) -> StoreResult<()> {
    let ids: Vec<Uuid> = jobs
        .iter()
        .filter_map(|job| Uuid::parse_str(&job.job_id).ok())
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let rows = sqlx::query(
        "SELECT job_id, kind, detail, raised_at FROM job_flags WHERE job_id = ANY($1) ORDER BY id",
    )
    .bind(&ids)
    .fetch_all(pool)
    .instrument(dispatch311_db::statement_span("SELECT", "job_flags"))
    .await?;
    let mut by_job: HashMap<String, Vec<Flag>> = HashMap::new();
    for row in &rows {
        let job_id: Uuid = row.get("job_id");
        by_job
            .entry(job_id.to_string())
            .or_default()
            .push(flags::flag(
                row.get("kind"),
                row.get("detail"),
                row.get("raised_at"),
            ));
    }
    for job in jobs {
        job.flags = by_job.get(&job.job_id).cloned().unwrap_or_default();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_STATES: [JobState; 8] = [
        JobState::Queued,
        JobState::Assigned,
        JobState::Acknowledged,
        JobState::EnRoute,
        JobState::OnScene,
        JobState::Closed,
        JobState::Cancelled,
        JobState::Rerouted,
    ];

    /// The states a condition names, as stored.
    fn named_states(condition: &str) -> Vec<JobState> {
        ALL_STATES
            .into_iter()
            .filter(|s| condition.contains(&format!("'{}'", state_name(*s))))
            .collect()
    }

    #[test]
    fn open_and_overdue_exclude_exactly_the_finished_states() {
        let finished = vec![JobState::Closed, JobState::Cancelled, JobState::Rerouted];
        let open = filter_condition(JobFilter::Open);
        assert!(open.contains("NOT IN"));
        assert_eq!(named_states(open), finished);
        let overdue = filter_condition(JobFilter::Overdue);
        assert!(overdue.contains("NOT IN") && overdue.contains("sla_due_at < now()"));
        assert_eq!(named_states(overdue), finished);
    }

    #[test]
    fn assigned_means_a_unit_is_working_the_job() {
        let assigned = filter_condition(JobFilter::Assigned);
        assert!(!assigned.contains("NOT IN"));
        assert_eq!(
            named_states(assigned),
            vec![
                JobState::Assigned,
                JobState::Acknowledged,
                JobState::EnRoute,
                JobState::OnScene
            ]
        );
    }

    #[test]
    fn unspecified_lists_everything_and_flagged_needs_a_flag() {
        assert_eq!(filter_condition(JobFilter::Unspecified), "true");
        assert!(filter_condition(JobFilter::Flagged).contains("job_flags"));
    }
}
