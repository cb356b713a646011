//! Supervisor and oversight views: jobs by filter with who is responsible and
//! the SLA remaining, timelines and their verification, the review list of
//! flagged jobs, and a precinct's figures for a time window.
//!
//! Lists page by keyset, not offset: `ListJobs` by (`queued_at`, `job_id`),
//! oldest first (the longest-waiting jobs are the ones a supervisor looks
//! at), `ListReviewItems` by flag, newest first.

use chrono::{DateTime, Utc};
use dispatch311_domain::time::from_timestamp;
use dispatch311_grpc::{
    pagination,
    status::{self as grpc_status, FieldViolations},
};
use dispatch311_proto::dispatch::v1::{self as dispatch, Job, JobFilter};
use prost_types::Timestamp;
use tonic::Status;
use uuid::Uuid;

use super::validate;
use crate::{
    checkpoints::{self, Checkpointer},
    store::{Store, events, oversight},
};

/// The default `GetPrecinctStats` window: the last day.
const DEFAULT_STATS_WINDOW: chrono::TimeDelta = chrono::TimeDelta::hours(24);

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

        let mut jobs = oversight::list_jobs(
            self.store.pool(),
            &precinct,
            filter,
            unit_id,
            after.map(|c| (c.queued_at, c.job_id)),
            limit as i64 + 1,
        )
        .await?;
        let next_page_token = if jobs.len() > limit {
            jobs.truncate(limit);
            jobs.last()
                .and_then(JobCursor::of)
                .map(|c| pagination::encode_token(&c.encode()))
                .unwrap_or_default()
        } else {
            String::new()
        };
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

        let mut items =
            oversight::review_items(self.store.pool(), &precinct, after_flag, limit as i64 + 1)
                .await?;
        let next_page_token = if items.len() > limit {
            items.truncate(limit);
            pagination::encode_token(&items[limit - 1].flag_id.to_string())
        } else {
            String::new()
        };
        let items = items
            .into_iter()
            .map(|item| dispatch::ReviewItem {
                flag: Some(item.flag),
                job: Some(item.job),
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

        let figures = oversight::precinct_figures(self.store.pool(), &precinct, start, end).await?;
        let seconds = |value: Option<f64>| value.unwrap_or(0.0);
        Ok(dispatch::GetPrecinctStatsResponse {
            precinct,
            jobs_received: figures.jobs_received,
            jobs_closed: figures.jobs_closed,
            median_seconds_to_arrival: seconds(figures.median_to_arrival),
            p90_seconds_to_arrival: seconds(figures.p90_to_arrival),
            median_seconds_to_close: seconds(figures.median_to_close),
            p90_seconds_to_close: seconds(figures.p90_to_close),
            share_closed_within_5_minutes: share(figures.closed_quickly, figures.jobs_closed),
            share_with_summons: share(figures.closed_with_summons, figures.jobs_closed),
            sla_breaches: figures.sla_breaches,
            flagged_jobs: figures.flagged_jobs,
            requests_received: figures.requests_received,
            requests_closed: figures.requests_closed,
            reports_per_job: share(figures.requests_received, figures.jobs_received),
        })
    }

    /// The job id of a request, checked: INVALID_ARGUMENT if it is not a
    /// UUID, NOT_FOUND if there is no such job.
    async fn existing_job(&self, job_id: &str) -> Result<Uuid, Status> {
        let mut v = FieldViolations::new();
        let parsed = validate::uuid(job_id, "job_id", &mut v);
        v.into_result()?;
        if !oversight::job_exists(self.store.pool(), parsed).await? {
            return Err(grpc_status::not_found("dispatch job", job_id.trim()));
        }
        Ok(parsed)
    }
}

/// UNAVAILABLE when PostgreSQL cannot be reached, INTERNAL otherwise.
pub(crate) fn database_status(err: sqlx::Error) -> Status {
    grpc_status::storage(&err)
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
    use dispatch311_domain::time::to_timestamp;

    use super::*;

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
