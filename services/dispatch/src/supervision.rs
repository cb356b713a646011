//! Supervisor and oversight views: jobs by filter with who is responsible and
//! the SLA remaining, timelines and their verification, the review list of
//! flagged jobs, and a precinct's figures for a time window.
//!
//! Lists page by keyset, not offset: `ListJobs` by (`queued_at`, `job_id`),
//! oldest first (the longest-waiting jobs are the ones a supervisor looks
//! at), `ListReviewItems` by flag, newest first.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use dispatch311_domain::{
    status::resolution_name,
    time::{from_timestamp, to_timestamp},
};
use dispatch311_grpc::{
    pagination,
    status::{self as grpc_status, FieldViolations},
};
use dispatch311_proto::{
    common::v1::ResolutionCode,
    dispatch::v1::{self as dispatch, Flag, FlagKind, Job, JobFilter, JobState},
};
use prost_types::Timestamp;
use sqlx::{PgPool, Row};
use tonic::Status;
use uuid::Uuid;

use crate::{
    checkpoints::{self, Checkpointer},
    store::events,
    store::{JOB_COLUMNS, Store, job_from_row, state_name},
    validate,
};

/// The default `GetPrecinctStats` window: the last day.
const DEFAULT_STATS_WINDOW: chrono::TimeDelta = chrono::TimeDelta::hours(24);
/// `share_closed_within_5_minutes`: closures this soon after assignment.
const QUICK_CLOSURE_SECS: f64 = 300.0;

pub struct Supervision {
    pub store: Store,
    /// The event log's signed checkpoints, for verification.
    pub checkpoints: std::sync::Arc<Checkpointer>,
}

impl Supervision {
    pub async fn list_jobs(
        &self,
        request: dispatch::ListJobsRequest,
    ) -> Result<dispatch::ListJobsResponse, Status> {
        let mut v = FieldViolations::new();
        let precinct = validate::precinct(&request.precinct, "precinct", &mut v);
        let filter = match JobFilter::try_from(request.filter) {
            Ok(filter) => filter,
            Err(_) => {
                v.add("filter", "not a job filter");
                JobFilter::Unspecified
            }
        };
        let unit_id = (!request.unit_id.trim().is_empty())
            .then(|| validate::uuid(&request.unit_id, "unit_id", &mut v));
        let limit = pagination::page_size(request.page_size, "page_size", &mut v);
        let after = pagination::decode_token(&request.page_token, "page_token", &mut v).and_then(
            |cursor| {
                let position = JobCursor::decode(&cursor);
                if position.is_none() {
                    v.add("page_token", "not a token from this list");
                }
                position
            },
        );
        v.into_result()?;

        let (after_queued_at, after_job_id) = after.map(|c| (c.queued_at, c.job_id)).unzip();
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE precinct = $1 AND ({}) \
               AND ($2::uuid IS NULL OR unit_id = $2) \
               AND ($3::timestamptz IS NULL OR (queued_at, job_id) > ($3::timestamptz, $4::uuid)) \
             ORDER BY queued_at, job_id LIMIT $5",
            filter_condition(filter)
        );
        let pool = self.store.pool();
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&precinct)
            .bind(unit_id)
            .bind(after_queued_at)
            .bind(after_job_id)
            .bind(limit as i64 + 1)
            .fetch_all(pool)
            .await
            .map_err(database_status)?;
        let mut jobs: Vec<Job> = rows.iter().map(job_from_row).collect();
        let next_page_token = if jobs.len() > limit {
            jobs.truncate(limit);
            jobs.last()
                .and_then(JobCursor::of)
                .map(|c| pagination::encode_token(&c.encode()))
                .unwrap_or_default()
        } else {
            String::new()
        };
        with_flags(pool, &mut jobs).await?;
        Ok(dispatch::ListJobsResponse {
            jobs,
            next_page_token,
        })
    }

    pub async fn get_job_timeline(
        &self,
        request: dispatch::GetJobTimelineRequest,
    ) -> Result<dispatch::GetJobTimelineResponse, Status> {
        let job_id = self.existing_job(&request.job_id).await?;
        let events = events::timeline(self.store.pool(), job_id)
            .await
            .map_err(database_status)?;
        Ok(dispatch::GetJobTimelineResponse { events })
    }

    pub async fn verify_job_timeline(
        &self,
        request: dispatch::VerifyJobTimelineRequest,
    ) -> Result<dispatch::VerifyJobTimelineResponse, Status> {
        let job_id = self.existing_job(&request.job_id).await?;
        let mut report = events::verify(self.store.pool(), job_id)
            .await
            .map_err(database_status)?;
        // the whole log against the last signed checkpoint: what the job's
        // own chain cannot show (a chain recomputed to match, a rollback)
        let (size, problem) = self
            .checkpoints
            .verify_job(job_id)
            .await
            .map_err(|e| match e {
                checkpoints::LogError::Database(e) => database_status(e),
                other => grpc_status::unavailable("photo store", &other),
            })?;
        report.checkpoint_size = size as i64;
        report.checkpoint_matches = size > 0 && problem.is_none();
        if let Some(problem) = problem {
            report.intact = false;
            if report.detail.is_empty() {
                report.detail = problem;
            } else {
                report.detail = format!("{}; {problem}", report.detail);
            }
        }
        Ok(report)
    }

    /// A page of the whole event log in log order (auditors verify it
    /// themselves against the exported checkpoints).
    pub async fn list_event_log(
        &self,
        request: dispatch::ListEventLogRequest,
    ) -> Result<dispatch::ListEventLogResponse, Status> {
        let mut v = FieldViolations::new();
        let limit = pagination::page_size(request.page_size, "page_size", &mut v);
        let after = match pagination::decode_token(&request.page_token, "page_token", &mut v) {
            None => -1,
            Some(token) => token.parse::<i64>().unwrap_or_else(|_| {
                v.add("page_token", "not a token from this list");
                -1
            }),
        };
        v.into_result()?;
        let entries = events::log_page(self.store.pool(), after, limit as i64 + 1)
            .await
            .map_err(database_status)?;
        let more = entries.len() > limit;
        let entries: Vec<_> = entries.into_iter().take(limit).collect();
        let next_page_token = match entries.last() {
            Some(last) if more => pagination::encode_token(&last.log_index.to_string()),
            _ => String::new(),
        };
        Ok(dispatch::ListEventLogResponse {
            entries,
            next_page_token,
        })
    }

    pub async fn list_review_items(
        &self,
        request: dispatch::ListReviewItemsRequest,
    ) -> Result<dispatch::ListReviewItemsResponse, Status> {
        let mut v = FieldViolations::new();
        let precinct = validate::precinct(&request.precinct, "precinct", &mut v);
        let limit = pagination::page_size(request.page_size, "page_size", &mut v);
        let after_flag = pagination::decode_token(&request.page_token, "page_token", &mut v)
            .and_then(|cursor| {
                let flag_id = cursor.parse::<i64>().ok();
                if flag_id.is_none() {
                    v.add("page_token", "not a token from this list");
                }
                flag_id
            });
        v.into_result()?;

        let sql = format!(
            "SELECT f.id AS flag_id, f.kind AS flag_kind, f.detail AS flag_detail, \
                f.raised_at AS flag_raised_at, {JOB_COLUMNS} \
             FROM job_flags f JOIN jobs ON jobs.job_id = f.job_id \
             WHERE jobs.precinct = $1 AND ($2::bigint IS NULL OR f.id < $2) \
             ORDER BY f.id DESC LIMIT $3"
        );
        let pool = self.store.pool();
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&precinct)
            .bind(after_flag)
            .bind(limit as i64 + 1)
            .fetch_all(pool)
            .await
            .map_err(database_status)?;
        let next_page_token = if rows.len() > limit {
            let last: i64 = rows[limit - 1].get("flag_id");
            pagination::encode_token(&last.to_string())
        } else {
            String::new()
        };
        let rows = &rows[..rows.len().min(limit)];
        let mut jobs: Vec<Job> = rows.iter().map(job_from_row).collect();
        with_flags(pool, &mut jobs).await?;
        let items = rows
            .iter()
            .zip(jobs)
            .map(|(row, job)| dispatch::ReviewItem {
                flag: Some(flag(
                    row.get("flag_kind"),
                    row.get("flag_detail"),
                    row.get("flag_raised_at"),
                )),
                job: Some(job),
            })
            .collect();
        Ok(dispatch::ListReviewItemsResponse {
            items,
            next_page_token,
        })
    }

    pub async fn get_precinct_stats(
        &self,
        request: dispatch::GetPrecinctStatsRequest,
    ) -> Result<dispatch::GetPrecinctStatsResponse, Status> {
        let mut v = FieldViolations::new();
        let precinct = validate::precinct(&request.precinct, "precinct", &mut v);
        let window = stats_window(
            request.window_start.as_ref(),
            request.window_end.as_ref(),
            Utc::now(),
            &mut v,
        );
        v.into_result()?;
        let (start, end) = window.expect("a window without violations");

        // a job counts in the window it was first queued in: the first event
        // of its log (queued_at moves when a job is reopened)
        let row = sqlx::query(
            "WITH received AS ( \
                SELECT j.state, j.sla_breached, j.resolution_code, \
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
                count(*) FILTER (WHERE flagged) AS flagged_jobs \
             FROM received",
        )
        .bind(&precinct)
        .bind(start)
        .bind(end)
        .bind(state_name(JobState::Closed))
        .bind(QUICK_CLOSURE_SECS)
        .bind(resolution_name(ResolutionCode::SummonsIssued))
        .fetch_one(self.store.pool())
        .await
        .map_err(database_status)?;

        let jobs_closed: i64 = row.get("jobs_closed");
        let seconds = |column: &str| row.get::<Option<f64>, _>(column).unwrap_or(0.0);
        Ok(dispatch::GetPrecinctStatsResponse {
            precinct,
            jobs_received: row.get("jobs_received"),
            jobs_closed,
            median_seconds_to_arrival: seconds("median_to_arrival"),
            p90_seconds_to_arrival: seconds("p90_to_arrival"),
            median_seconds_to_close: seconds("median_to_close"),
            p90_seconds_to_close: seconds("p90_to_close"),
            share_closed_within_5_minutes: share(row.get("closed_quickly"), jobs_closed),
            share_with_summons: share(row.get("closed_with_summons"), jobs_closed),
            sla_breaches: row.get("sla_breaches"),
            flagged_jobs: row.get("flagged_jobs"),
        })
    }

    /// The job id of a request, checked: INVALID_ARGUMENT if it is not a
    /// UUID, NOT_FOUND if there is no such job.
    async fn existing_job(&self, job_id: &str) -> Result<Uuid, Status> {
        let mut v = FieldViolations::new();
        let parsed = validate::uuid(job_id, "job_id", &mut v);
        v.into_result()?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM jobs WHERE job_id = $1)")
                .bind(parsed)
                .fetch_one(self.store.pool())
                .await
                .map_err(database_status)?;
        if !exists {
            return Err(grpc_status::not_found("dispatch job", job_id.trim()));
        }
        Ok(parsed)
    }
}

/// UNAVAILABLE when PostgreSQL cannot be reached, INTERNAL otherwise.
pub(crate) fn database_status(err: sqlx::Error) -> Status {
    grpc_status::storage(&err)
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

/// Where a job sits in `ListJobs`; its page token.
#[derive(Debug, Clone, PartialEq)]
struct JobCursor {
    queued_at: DateTime<Utc>,
    job_id: Uuid,
}

impl JobCursor {
    fn of(job: &Job) -> Option<Self> {
        Some(Self {
            queued_at: job.queued_at.as_ref().and_then(from_timestamp)?,
            job_id: Uuid::parse_str(&job.job_id).ok()?,
        })
    }

    fn encode(&self) -> String {
        format!("{}|{}", self.queued_at.timestamp_micros(), self.job_id)
    }

    fn decode(s: &str) -> Option<Self> {
        let (micros, job_id) = s.split_once('|')?;
        Some(Self {
            queued_at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            job_id: Uuid::parse_str(job_id).ok()?,
        })
    }
}

/// Fills in the flags of `jobs` with one query.
async fn with_flags(pool: &PgPool, jobs: &mut [Job]) -> Result<(), Status> {
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
    .await
    .map_err(database_status)?;
    let mut by_job: HashMap<String, Vec<Flag>> = HashMap::new();
    for row in &rows {
        let job_id: Uuid = row.get("job_id");
        by_job.entry(job_id.to_string()).or_default().push(flag(
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

fn flag(kind: String, detail: String, raised_at: DateTime<Utc>) -> Flag {
    Flag {
        kind: FlagKind::from_str_name(&format!("FLAG_KIND_{kind}")).unwrap_or_default() as i32,
        detail,
        raised_at: Some(to_timestamp(raised_at)),
    }
}

/// The `[start, end)` window of `GetPrecinctStats`: the day before `end`,
/// `end` defaulting to now.
fn stats_window(
    start: Option<&Timestamp>,
    end: Option<&Timestamp>,
    now: DateTime<Utc>,
    v: &mut FieldViolations,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let end = match end {
        None => Some(now),
        Some(ts) => from_timestamp(ts).or_else(|| {
            v.add("window_end", "not a valid timestamp");
            None
        }),
    }?;
    let start = match start {
        None => Some(end - DEFAULT_STATS_WINDOW),
        Some(ts) => from_timestamp(ts).or_else(|| {
            v.add("window_start", "not a valid timestamp");
            None
        }),
    }?;
    if start >= end {
        v.add("window_start", "must be before window_end");
        return None;
    }
    Some((start, end))
}

/// `part / whole`, 0 when there is nothing to share.
fn share(part: i64, whole: i64) -> f64 {
    if whole <= 0 {
        return 0.0;
    }
    part as f64 / whole as f64
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

    #[test]
    fn job_cursors_round_trip_and_reject_garbage() {
        let cursor = JobCursor {
            queued_at: DateTime::from_timestamp_micros(1_790_000_000_123_456).unwrap(),
            job_id: Uuid::now_v7(),
        };
        assert_eq!(JobCursor::decode(&cursor.encode()), Some(cursor.clone()));
        assert_eq!(JobCursor::decode("12|not-a-uuid"), None);
        assert_eq!(JobCursor::decode(&format!("x|{}", cursor.job_id)), None);
        assert_eq!(JobCursor::decode("garbage"), None);
    }

    #[test]
    fn shares_of_nothing_are_zero_not_nan() {
        assert_eq!(share(0, 0), 0.0);
        assert_eq!(share(3, 0), 0.0);
        assert_eq!(share(1, 4), 0.25);
        assert_eq!(share(4, 4), 1.0);
    }

    #[test]
    fn the_stats_window_defaults_to_the_last_day() {
        let now = Utc::now();
        let mut v = FieldViolations::new();
        assert_eq!(
            stats_window(None, None, now, &mut v),
            Some((now - chrono::TimeDelta::hours(24), now))
        );
        let end = now - chrono::TimeDelta::hours(2);
        assert_eq!(
            stats_window(None, Some(&to_timestamp(end)), now, &mut v),
            Some((end - chrono::TimeDelta::hours(24), end))
        );
        let start = now - chrono::TimeDelta::days(7);
        assert_eq!(
            stats_window(Some(&to_timestamp(start)), None, now, &mut v),
            Some((start, now))
        );
        assert!(v.is_empty());
    }

    #[test]
    fn an_empty_or_backwards_stats_window_is_refused() {
        let now = Utc::now();
        for start in [now, now + chrono::TimeDelta::seconds(1)] {
            let mut v = FieldViolations::new();
            assert_eq!(
                stats_window(
                    Some(&to_timestamp(start)),
                    Some(&to_timestamp(now)),
                    now,
                    &mut v
                ),
                None
            );
            let status = v.into_result().unwrap_err();
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
            assert!(
                status.message().contains("window_start"),
                "{}",
                status.message()
            );
        }
        let mut v = FieldViolations::new();
        let broken = Timestamp {
            seconds: 1,
            nanos: -5,
        };
        assert_eq!(stats_window(None, Some(&broken), now, &mut v), None);
        assert_eq!(v.len(), 1);
    }
}
