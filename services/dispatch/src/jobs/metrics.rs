//! What dispatch tells SREs through metrics, from the timestamps its jobs
//! already keep: how long each step of a job took
//! (`dispatch311.job.step.duration`: routed → queued, queued → assigned,
//! then assigned → acknowledged, en route, on scene and closed), by borough
//! and priority;
//! flags raised by kind, refusals by rule, reopenings, SLA breaches and
//! acknowledgement timeouts. Labels are bounded sets: never a precinct's
//! job, an SR number or an officer.

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use dispatch311_proto::{
    common::v1::Priority,
    dispatch::v1::{EventType, FlagKind},
};
use opentelemetry::{
    KeyValue,
    metrics::{Counter, Histogram},
};

use super::change::JobChange;
use crate::store::{JobRow, NewJob, flags::kind_name};

/// Seconds, from a quick acknowledgement to a job open a day.
const STEP_BUCKETS: [f64; 15] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1_200.0, 1_800.0, 3_600.0, 7_200.0, 14_400.0,
    28_800.0, 86_400.0,
];

struct JobMetrics {
    step: Histogram<f64>,
    flags: Counter<u64>,
    refusals: Counter<u64>,
    reopened: Counter<u64>,
    sla_breaches: Counter<u64>,
    ack_timeouts: Counter<u64>,
    reports_linked: Counter<u64>,
}

/// Made on first use, after telemetry was set up.
fn metrics() -> &'static JobMetrics {
    static METRICS: OnceLock<JobMetrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let meter = dispatch311_telemetry::metrics::meter();
        JobMetrics {
            step: meter
                .f64_histogram("dispatch311.job.step.duration")
                .with_unit("s")
                .with_description(
                    "Time a job took to reach a step: queued (from the routing decision), \
                     assigned (from queued), acknowledged, en_route, on_scene and closed \
                     (from assigned)",
                )
                .with_boundaries(STEP_BUCKETS.to_vec())
                .build(),
            flags: meter
                .u64_counter("dispatch311.job.flags")
                .with_unit("{flag}")
                .with_description("Accountability flags raised, by kind")
                .build(),
            refusals: meter
                .u64_counter("dispatch311.job.refusals")
                .with_unit("{refusal}")
                .with_description("Changes the rules refused, by rule")
                .build(),
            reopened: meter
                .u64_counter("dispatch311.job.reopened")
                .with_unit("{job}")
                .with_description("Closed jobs put back in the queue")
                .build(),
            sla_breaches: meter
                .u64_counter("dispatch311.job.sla_breaches")
                .with_unit("{job}")
                .with_description("Jobs still open when their SLA came due")
                .build(),
            ack_timeouts: meter
                .u64_counter("dispatch311.job.ack_timeouts")
                .with_unit("{job}")
                .with_description("Assignments not acknowledged in time, back in the queue")
                .build(),
            reports_linked: meter
                .u64_counter("dispatch311.job.reports_linked")
                .with_unit("{report}")
                .with_description(
                    "Requests linked to the open job of their incident instead of queued as jobs",
                )
                .build(),
        }
    })
}

fn seconds_between(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Option<f64> {
    let seconds = (to? - from?).num_milliseconds() as f64 / 1_000.0;
    (seconds >= 0.0).then_some(seconds)
}

/// The bounded labels of a job: borough and priority.
fn job_labels(job: &JobRow) -> [KeyValue; 2] {
    labels(&job.borough, job.priority)
}

fn labels(borough_name: &str, priority: Priority) -> [KeyValue; 2] {
    [
        KeyValue::new("borough", borough(borough_name)),
        KeyValue::new("priority", priority_label(priority)),
    ]
}

/// Records a job queued for the first time: the "queued" step, from the
/// routing decision to the precinct queue.
pub fn job_queued(new: &NewJob) {
    let borough_name = new
        .job
        .address
        .as_ref()
        .map_or("", |address| address.borough.as_str());
    if let Some(seconds) = seconds_between(new.routed_at, Some(new.queued_at)) {
        let [borough, priority] = labels(borough_name, new.priority);
        metrics().step.record(
            seconds,
            &[borough, priority, KeyValue::new("step", "queued")],
        );
    }
}

/// Records a request linked to the open job of its incident.
pub fn report_linked(new: &NewJob) {
    let borough_name = new
        .job
        .address
        .as_ref()
        .map_or("", |address| address.borough.as_str());
    metrics()
        .reports_linked
        .add(1, &labels(borough_name, new.priority));
}

/// One of the five boroughs, or "unspecified": anything else a record
/// carries never becomes a label.
fn borough(name: &str) -> &'static str {
    const BOROUGHS: [&str; 5] = ["MANHATTAN", "BROOKLYN", "QUEENS", "BRONX", "STATEN ISLAND"];
    let name = name.trim().to_ascii_uppercase();
    BOROUGHS
        .into_iter()
        .find(|b| *b == name)
        .unwrap_or("UNSPECIFIED")
}

fn priority_label(priority: Priority) -> &'static str {
    match priority {
        Priority::Urgent => "urgent",
        Priority::High => "high",
        Priority::Normal => "normal",
        Priority::Low => "low",
        Priority::Unspecified => "unspecified",
    }
}

/// Records what a written change did: the steps it reached, the flags it
/// raised, a reopening.
pub fn record_change(change: &JobChange) {
    let metrics = metrics();
    let job = &change.after;
    let [borough, priority] = job_labels(job);
    for chained in &change.events {
        let (step, seconds) = match chained.event.event_type {
            EventType::Assigned => (
                "assigned",
                seconds_between(Some(change.before.queued_at), job.assigned_at),
            ),
            EventType::Acknowledged => (
                "acknowledged",
                seconds_between(job.assigned_at, job.acknowledged_at),
            ),
            EventType::EnRoute => (
                "en_route",
                seconds_between(job.assigned_at, job.en_route_at),
            ),
            EventType::OnScene => (
                "on_scene",
                seconds_between(job.assigned_at, job.on_scene_at),
            ),
            EventType::Closed => ("closed", seconds_between(job.assigned_at, job.closed_at)),
            EventType::Reopened => {
                metrics
                    .reopened
                    .add(1, &[borough.clone(), priority.clone()]);
                continue;
            }
            _ => continue,
        };
        if let Some(seconds) = seconds {
            metrics.step.record(
                seconds,
                &[
                    borough.clone(),
                    priority.clone(),
                    KeyValue::new("step", step),
                ],
            );
        }
    }
    for flag in &change.flags {
        flag_raised(flag.kind);
    }
}

/// Counts a flag raised outside a change (the timers).
pub fn flag_raised(kind: FlagKind) {
    metrics()
        .flags
        .add(1, &[KeyValue::new("kind", kind_name(kind))]);
}

/// Counts a change a rule refused.
pub fn refused(rule: &'static str) {
    metrics().refusals.add(1, &[KeyValue::new("rule", rule)]);
}

/// Counts a job whose SLA came due while it was open.
pub fn sla_breached(job: &JobRow) {
    metrics().sla_breaches.add(1, &job_labels(job));
}

/// Counts an assignment that timed out.
pub fn ack_timed_out(job: &JobRow) {
    metrics().ack_timeouts.add(1, &job_labels(job));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_stay_within_their_sets() {
        assert_eq!(borough("Brooklyn"), "BROOKLYN");
        assert_eq!(borough(" staten island "), "STATEN ISLAND");
        assert_eq!(borough("221B Baker Street"), "UNSPECIFIED");
        assert_eq!(borough(""), "UNSPECIFIED");
        let at = |s| DateTime::from_timestamp(s, 0);
        assert_eq!(seconds_between(at(10), at(70)), Some(60.0));
        assert_eq!(seconds_between(at(70), at(10)), None);
        assert_eq!(seconds_between(None, at(10)), None);
    }
}
