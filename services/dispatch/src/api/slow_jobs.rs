//! `ListSlowJobs`, the slow-dispatch finder: which jobs took longest over a
//! chosen step, and the traces that explain them. Pages by keyset on
//! (duration, job id), slowest first; a step still waiting grows between
//! pages, so a long listing is a snapshot only roughly.

use chrono::{DateTime, TimeDelta, Utc};
use dispatch311_domain::time::to_timestamp;
use dispatch311_grpc::{pagination, status::FieldViolations};
use dispatch311_proto::dispatch::v1::{self as dispatch, LifecycleStep, SlowJob, StepTiming};
use tonic::Status;
use uuid::Uuid;

use super::{supervision::Supervision, validate};
use crate::store::slow_jobs::{self, STEPS, SlowJobRow, SlowJobsQuery, StepSpan};

/// The window when the request gives none, and the longest it may ask for.
const DEFAULT_SINCE: TimeDelta = TimeDelta::hours(1);
const MAX_SINCE: TimeDelta = TimeDelta::days(31);

impl Supervision {
    pub async fn list_slow_jobs(
        &self,
        request: dispatch::ListSlowJobsRequest,
    ) -> Result<dispatch::ListSlowJobsResponse, Status> {
        let mut v = FieldViolations::new();
        let step = STEPS
            .iter()
            .find(|span| {
                span.step as i32 == request.step && span.step != LifecycleStep::Unspecified
            })
            .copied();
        if step.is_none() {
            v.add(
                "step",
                "required: queued, assigned, acknowledged, en route, on scene or closed",
            );
        }
        let at_least = duration_field(request.over.as_ref(), "over", TimeDelta::zero(), &mut v);
        let since = duration_field(request.since.as_ref(), "since", DEFAULT_SINCE, &mut v);
        if since <= TimeDelta::zero() || since > MAX_SINCE {
            v.add("since", "must be more than 0 and at most 31 days");
        }
        let precinct = if request.precinct.trim().is_empty() {
            String::new()
        } else {
            validate::precinct(&request.precinct, "precinct", &mut v)
        };
        let limit = pagination::page_size(request.page_size, "page_size", &mut v);
        let after = pagination::decode_token(&request.page_token, "page_token", &mut v).and_then(
            |cursor| {
                let position = decode_cursor(&cursor);
                if position.is_none() {
                    v.add("page_token", "not a token from this list");
                }
                position
            },
        );
        v.into_result()?;
        let step = step.expect("checked above");

        let mut rows = slow_jobs::slow_jobs(
            self.store.pool(),
            &SlowJobsQuery {
                step,
                began_after: Utc::now() - since,
                at_least,
                precinct: &precinct,
                after,
                limit: limit as i64 + 1,
            },
        )
        .await?;
        let next_page_token = if rows.len() > limit {
            rows.truncate(limit);
            rows.last()
                .map(|last| {
                    pagination::encode_token(&format!(
                        "{}|{}",
                        last.duration_micros, last.job.job_id
                    ))
                })
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(dispatch::ListSlowJobsResponse {
            jobs: rows.iter().map(slow_job).collect(),
            next_page_token,
        })
    }
}

/// A duration field: `default` when unset, a violation when negative or invalid.
pub(super) fn duration_field(
    value: Option<&prost_types::Duration>,
    field: &str,
    default: TimeDelta,
    v: &mut FieldViolations,
) -> TimeDelta {
    let Some(value) = value else { return default };
    match TimeDelta::new(
        value.seconds,
        u32::try_from(value.nanos).unwrap_or(u32::MAX),
    ) {
        Some(delta) if delta >= TimeDelta::zero() && value.nanos >= 0 => delta,
        _ => {
            v.add(field, "must be a duration of 0 or more");
            default
        }
    }
}

fn decode_cursor(cursor: &str) -> Option<(i64, Uuid)> {
    let (micros, job_id) = cursor.split_once('|')?;
    Some((micros.parse().ok()?, Uuid::parse_str(job_id).ok()?))
}

fn slow_job(row: &SlowJobRow) -> SlowJob {
    let job = &row.job;
    SlowJob {
        job_id: job.job_id.to_string(),
        sr_number: job.sr_number.clone(),
        precinct: job.precinct.clone(),
        priority: job.priority as i32,
        state: job.state as i32,
        step_duration: Some(proto_duration(TimeDelta::microseconds(row.duration_micros))),
        waiting: row.waiting,
        steps: STEPS
            .iter()
            .filter_map(|span| step_timing(row, *span))
            .collect(),
        origin_trace_id: trace_id_of_traceparent(&job.origin_traceparent).to_owned(),
    }
}

/// The step's timing, when both its ends happened.
fn step_timing(row: &SlowJobRow, span: StepSpan) -> Option<StepTiming> {
    let job = &row.job;
    let at = |column: &str| -> Option<DateTime<Utc>> {
        match column {
            "routed_at" => row.routed_at,
            "queued_at" => Some(job.queued_at),
            "assigned_at" => job.assigned_at,
            "acknowledged_at" => job.acknowledged_at,
            "en_route_at" => job.en_route_at,
            "on_scene_at" => job.on_scene_at,
            "closed_at" => job.closed_at,
            _ => None,
        }
    };
    let (from, to) = (at(span.from)?, at(span.to)?);
    Some(StepTiming {
        step: span.step as i32,
        duration: Some(proto_duration(to - from)),
        at: Some(to_timestamp(to)),
        trace_id: row.trace_ids.get(span.event).cloned().unwrap_or_default(),
    })
}

/// The trace id inside a W3C traceparent (`00-<trace id>-<span id>-<flags>`).
fn trace_id_of_traceparent(traceparent: &str) -> &str {
    traceparent.split('-').nth(1).unwrap_or_default()
}

fn proto_duration(delta: TimeDelta) -> prost_types::Duration {
    prost_types::Duration {
        seconds: delta.num_seconds(),
        nanos: delta.subsec_nanos(),
    }
}
