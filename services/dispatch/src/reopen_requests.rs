//! Consumes the `reopen` queue: the survey service asks to reopen a request
//! whose complainant says the problem was not fixed. The job goes back to
//! its precinct queue one step more urgent, through the same lifecycle code
//! as a supervisor's reopening (REOPENED event by the survey, intake told),
//! and on the review list when the survey asks for it.
//!
//! A request answers one closure: it reopens the job only while that closure
//! is the job's latest and the job is still closed, checked under the job's
//! row lock. A redelivery, or an answer about a closure that was reopened
//! (and maybe closed again) since, changes nothing.

use dispatch311_proto::{
    dispatch::v1::{JobState, Role},
    jobs::v1::ReopenRequest,
};
use dispatch311_queue::{Delivery, JobHandler, Outcome};
use dispatch311_telemetry::attributes::{self, set_on_current};
use uuid::Uuid;

use crate::{
    jobs::lifecycle::{GuardedReopen, Lifecycle, Reopening},
    store::events::ActorRef,
    store::{JobRow, state_name},
};

/// Who reopens, in the job's event log.
pub const SURVEY_ACTOR: &str = "survey";
/// The event's reason when the survey gives none.
const DEFAULT_REASON: &str = "the complainant says the problem was not fixed";
/// The longest reason an event keeps (as for a supervisor's reopening).
const MAX_REASON_CHARS: usize = 1000;

pub struct ReopenRequestHandler {
    lifecycle: Lifecycle,
}

impl ReopenRequestHandler {
    pub fn new(lifecycle: Lifecycle) -> Self {
        Self { lifecycle }
    }
}

/// Whether a reopen request about closure `closure_number` still applies to
/// the job as locked; otherwise why not.
pub fn still_applies(job: &JobRow, closure_number: u32) -> Result<(), &'static str> {
    if job.state != JobState::Closed {
        return Err("the job is not closed");
    }
    if i64::from(job.closure_count) != i64::from(closure_number) {
        return Err("the answer is about an earlier closure");
    }
    Ok(())
}

/// The reason recorded with the reopening: the survey's, within the limit
/// of an event's reason, or a plain one when it gave none.
pub fn event_reason(reason: &str) -> String {
    let reason: String = reason
        .trim()
        .chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .take(MAX_REASON_CHARS)
        .collect();
    if reason.trim().is_empty() {
        return DEFAULT_REASON.to_string();
    }
    reason
}

impl JobHandler for ReopenRequestHandler {
    async fn handle(&self, delivery: Delivery) -> Outcome {
        let request: ReopenRequest = match delivery.payload() {
            Ok(request) => request,
            Err(e) => return Outcome::dead_letter(format!("undecodable reopen request: {e}")),
        };
        set_on_current(attributes::SR_NUMBER, request.sr_number.clone());
        let Ok(sr_id) = Uuid::parse_str(&request.sr_id) else {
            return Outcome::dead_letter(format!(
                "reopen request for an sr id that is not a UUID: {}",
                request.sr_id
            ));
        };
        if request.closure_number == 0 {
            return Outcome::dead_letter("reopen request without a closure number");
        }
        let closure_number = request.closure_number;
        let reopening = Reopening {
            actor: ActorRef {
                id: SURVEY_ACTOR.into(),
                role: Role::System,
            },
            reason: event_reason(&request.reason),
            raise_priority: true,
            for_review: request.review,
        };
        // the reason is the complainant's answer: it goes to the event log, never to a log line
        let result = self
            .lifecycle
            .reopen_if(sr_id, reopening, |job| still_applies(job, closure_number))
            .await;
        match result {
            Ok(Some(GuardedReopen::Reopened(job))) => {
                tracing::info!(
                    sr_number = %request.sr_number,
                    job_id = %job.job_id,
                    closure_number,
                    review = request.review,
                    "job reopened at the complainant's request"
                );
                Outcome::Done
            }
            Ok(Some(GuardedReopen::Unchanged {
                job_id,
                state,
                closure_count,
                why,
            })) => {
                tracing::info!(
                    sr_number = %request.sr_number,
                    %job_id,
                    closure_number,
                    closure_count,
                    state = state_name(state),
                    why,
                    "reopen request changes nothing"
                );
                Outcome::Done
            }
            Ok(None) => Outcome::dead_letter(format!(
                "reopen request for {} ({sr_id}), which has no dispatch job",
                request.sr_number
            )),
            Err(e) if e.is_final() => Outcome::dead_letter(format!(
                "reopen request for {} refused: {e}",
                request.sr_number
            )),
            Err(e) => Outcome::retry(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;

    fn job(state: JobState, closure_count: i32) -> JobRow {
        let queued_at = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        JobRow {
            sr_number: "SR-2026-0000042".into(),
            location: None,
            state,
            assignment_number: 1,
            created_at: queued_at,
            queued_at,
            reopen_count: closure_count.saturating_sub(1),
            closure_count,
            complainant_consented: true,
            ..JobRow::sample()
        }
    }

    #[test]
    fn reopens_only_the_latest_closure_of_a_closed_job() {
        assert_eq!(still_applies(&job(JobState::Closed, 1), 1), Ok(()));
        assert_eq!(still_applies(&job(JobState::Closed, 2), 2), Ok(()));
        assert_eq!(
            still_applies(&job(JobState::Closed, 2), 1),
            Err("the answer is about an earlier closure")
        );
    }

    #[test]
    fn a_job_reopened_since_is_left_alone() {
        for state in [
            JobState::Queued,
            JobState::Assigned,
            JobState::OnScene,
            JobState::Cancelled,
        ] {
            assert_eq!(
                still_applies(&job(state, 1), 1),
                Err("the job is not closed"),
                "{state:?}"
            );
        }
    }

    #[test]
    fn the_event_keeps_the_survey_reason_within_limits() {
        assert_eq!(
            event_reason("  car still blocking the hydrant "),
            "car still blocking the hydrant"
        );
        assert_eq!(event_reason(""), DEFAULT_REASON);
        assert_eq!(event_reason(" \u{7} "), DEFAULT_REASON);
        assert_eq!(
            event_reason(&"x".repeat(MAX_REASON_CHARS + 50))
                .chars()
                .count(),
            MAX_REASON_CHARS
        );
    }
}
