//! Reports of one incident, one job: a routed request whose rule links
//! reports (routing's `DuplicateRule` for its complaint type) becomes a report
//! on the open job of its incident when there is one, instead of a job of its
//! own. The job counts its reports, may rise in priority with them, and its
//! log records DUPLICATE_LINKED; the report's complainant hears which request
//! it was linked to, and from then on hears the job's steps and closure
//! (`JobChange::tell_intake`, `Lifecycle::close_job`).
//!
//! Safe with replicas: the decision is made holding the incident's lock
//! (`store::duplicates`), so two reports of one incident arriving at two
//! dispatch replicas at once make one job and one report, never two jobs.
//! Idempotent: a request already linked, or already a job, is answered as it
//! was.

use chrono::{DateTime, Utc};
use dispatch311_domain::{
    duplicates::{Match, Report, best_match},
    jobs::{kinds, queues},
    time::to_timestamp,
};
use dispatch311_proto::{
    common::v1::{DuplicateRule, ServiceRequestStatus},
    dispatch::v1::{EventType, JobState},
    jobs::v1::{DispatchJob, StatusUpdate},
};
use dispatch311_queue::QueueError;

use prost::Message as _;
use uuid::Uuid;

use crate::{
    jobs::{JobError, accountability, change::JobChange, lifecycle::now_micros, state_machine},
    store::{
        Enqueued, JobRow, NewJob, Store, StoreError,
        duplicates::{Known, OpenJob, ReportLink},
        events::{ActorRef, NewEvent},
    },
};

/// Queues `jobs` (at most one of each incident: the batch's rounds see to
/// it), linking each report of an open job's incident to that job. Per job,
/// what was done, or `None` when its job changed while it was being linked
/// (try again).
pub async fn queue_or_link(
    store: &Store,
    jobs: &[&NewJob],
) -> Result<Vec<Option<Enqueued>>, StoreError> {
    let incidents: Vec<(&str, &str)> = jobs
        .iter()
        .filter(|job| job.job.duplicate_rule.is_some())
        .map(|job| (job.precinct.as_str(), job.job.complaint_type.as_str()))
        .collect();
    let mut locks = store.lock_incidents(&incidents).await?;
    let sr_ids: Vec<_> = jobs.iter().map(|job| job.sr_id).collect();
    let known = locks.known(&sr_ids).await?;
    let since = jobs
        .iter()
        .filter_map(|job| {
            let rule = job.job.duplicate_rule?;
            Some(job.filed_at() - chrono::Duration::minutes(i64::from(rule.window_minutes)))
        })
        .min();
    let open = match since {
        Some(since) => locks.open_jobs(&incidents, since).await?,
        None => Vec::new(),
    };

    let now = now_micros();
    let mut results: Vec<Option<Enqueued>> = jobs.iter().map(|_| None).collect();
    let mut to_insert = Vec::new();
    let mut links: Vec<ReportLink<'_>> = Vec::new();
    let mut link_at = Vec::new();
    let mut retold = Vec::new();
    for (at, new) in jobs.iter().enumerate() {
        match known.get(&new.sr_id) {
            // a redelivery of a linked report: the same answer, and its
            // complainant told again in case that message was lost
            Some(Known {
                job_id,
                report: Some(report),
            }) => {
                results[at] = Some(Enqueued::Linked {
                    job_id: *job_id,
                    new: false,
                });
                let matched = if report.match_metres == 0.0 {
                    Match::SameAddress
                } else {
                    Match::Within(report.match_metres)
                };
                retold.push(link_update(
                    &report.job,
                    new,
                    matched,
                    report.link_sequence,
                    now,
                ));
            }
            // already a job: the usual statement says so
            Some(Known { report: None, .. }) => to_insert.push(at),
            None => match new
                .job
                .duplicate_rule
                .and_then(|rule| incident_of(&rule, &open, new).map(|found| (rule, found)))
            {
                Some((rule, (job, matched))) => {
                    let change = link_change(&rule, job, new, matched, now)?;
                    link_at.push(at);
                    links.push(ReportLink {
                        change,
                        report: new,
                        match_metres: matched.metres(),
                    });
                }
                None => to_insert.push(at),
            },
        }
    }

    let inserting: Vec<&NewJob> = to_insert.iter().map(|&at| jobs[at]).collect();
    let inserted = locks.insert_jobs(&inserting).await?;
    let written = locks.link(&links).await?;
    let retold: Vec<_> = retold.into_iter().collect::<Result<_, _>>()?;
    locks.tell(&retold).await?;
    locks.commit().await?;

    for (&at, result) in to_insert.iter().zip(inserted) {
        results[at] = result;
    }
    for ((&at, link), written) in link_at.iter().zip(&links).zip(written) {
        if written {
            results[at] = Some(Enqueued::Linked {
                job_id: link.change.job_id(),
                new: true,
            });
        }
    }
    Ok(results)
}

/// The open job whose incident `new` reports, by the rule.
fn incident_of<'o>(
    rule: &DuplicateRule,
    open: &'o [OpenJob],
    new: &NewJob,
) -> Option<(&'o JobRow, Match)> {
    let report = Report {
        precinct: &new.precinct,
        agency: &new.job.agency,
        complaint_type: &new.job.complaint_type,
        descriptor: &new.job.descriptor,
        street_address: new
            .job
            .address
            .as_ref()
            .map_or("", |a| a.street_address.as_str()),
        location: new.job.location.map(|l| (l.latitude, l.longitude)),
        filed_at: new.filed_at(),
    };
    let candidates = open.iter().map(|o| {
        let first = Report {
            precinct: &o.job.precinct,
            agency: &o.job.agency,
            complaint_type: &o.job.complaint_type,
            descriptor: &o.job.descriptor,
            street_address: &o.street_address,
            location: o.job.location,
            filed_at: o.job.created_at,
        };
        (&o.job, first)
    });
    best_match(rule, candidates, &report)
}

/// The change linking `new` to `job`: one more report, a priority one step
/// higher when the count reaches the rule's mark, the DUPLICATE_LINKED event
/// and the report's complainant told.
fn link_change(
    rule: &DuplicateRule,
    job: &JobRow,
    new: &NewJob,
    matched: Match,
    now: DateTime<Utc>,
) -> Result<JobChange, QueueError> {
    let mut change = JobChange::new(job, &[], now);
    let report_count = job.report_count + 1;
    change.after.report_count = report_count;
    let raise_at = rule.raise_priority_at_reports;
    if raise_at > 0 && i64::from(report_count) == i64::from(raise_at) {
        change.after.priority = accountability::raised(job.priority);
    }
    let sequence = change.append(NewEvent {
        event_type: EventType::DuplicateLinked,
        actor: ActorRef::system(),
        occurred_at: now,
        position: None,
        unit_id: None,
        reason: format!(
            "{} linked as another report of this incident ({}); {report_count} reports",
            new.job.sr_number,
            matched.describe()
        ),
    });
    let told = link_update(job, new, matched, sequence, now)?;
    change.outbox.push(told);
    Ok(change)
}

/// What the linked report's complainant is told: which request theirs was
/// linked to, and where the job stands. Its sequence is the link's event, so
/// the job's later steps follow it on the report's timeline.
fn link_update(
    job: &JobRow,
    new: &NewJob,
    matched: Match,
    sequence: i64,
    now: DateTime<Utc>,
) -> Result<dispatch311_queue::outbox::OutboxRow, QueueError> {
    let update = StatusUpdate {
        sr_id: new.sr_id.to_string(),
        status: public_status(job.state) as i32,
        occurred_at: Some(to_timestamp(now)),
        source: "dispatch".into(),
        message: format!(
            "linked to {}, an earlier report of the same incident ({}): precinct {} works them as one job",
            job.sr_number,
            matched.describe(),
            job.precinct
        ),
        transition_key: "dispatch:linked".into(),
        dispatch_sequence: sequence,
        ..Default::default()
    };
    dispatch311_queue::outbox::prepare(queues::STATUS, kinds::STATUS_UPDATE, &update.sr_id, &update)
}

/// The public status of an open job's state.
fn public_status(state: JobState) -> ServiceRequestStatus {
    match state {
        JobState::Assigned => ServiceRequestStatus::Assigned,
        JobState::Acknowledged => ServiceRequestStatus::Acknowledged,
        JobState::EnRoute => ServiceRequestStatus::EnRoute,
        JobState::OnScene => ServiceRequestStatus::OnScene,
        _ => ServiceRequestStatus::Queued,
    }
}

/// A supervisor's unlinking of a report into a job of its own.
pub struct Unlink {
    pub actor: ActorRef,
    pub sr_number: String,
    pub reason: String,
}

/// Takes the linked report out of its incident's job into a job of its
/// own, queued in the precinct as it was routed, with the supervisor's
/// reason on both jobs' logs; the report's complainant follows the new job
/// (the request's next epoch). Only while the job is open and was never
/// closed: a closed job's reports were closed and surveyed with it. Returns
/// the new job's id and the job it left.
pub async fn unlink_report(store: &Store, command: Unlink) -> Result<(Uuid, Uuid), JobError> {
    let Unlink {
        actor,
        sr_number,
        reason,
    } = command;
    let Some(unlinking) = store.begin_unlink(&sr_number).await? else {
        return Err(JobError::not_found("linked report", &sr_number));
    };
    let job = unlinking.job.clone();
    let job_id = job.job_id;
    if unlinking.report.unlinked {
        return Err(JobError::refused(
            "REPORT_ALREADY_UNLINKED",
            job_id,
            format!("{sr_number} was already unlinked into a job of its own"),
        ));
    }
    if !state_machine::is_open(job.state) || job.closure_count > 0 {
        return Err(JobError::refused(
            "JOB_NO_LONGER_OPEN",
            job_id,
            format!(
                "{sr_number} stays with the job of {}: that job was closed, and its reports with it",
                job.sr_number
            ),
        ));
    }
    let Some(routed) = unlinking
        .report
        .dispatch_job
        .as_deref()
        .and_then(|bytes| DispatchJob::decode(bytes).ok())
    else {
        return Err(JobError::refused(
            "REPORT_NOT_KEPT",
            job_id,
            format!(
                "{sr_number} was linked before its routed job was kept: it cannot be queued alone"
            ),
        ));
    };
    let routed = DispatchJob {
        duplicate_rule: None,
        ..routed
    };
    let own_job = store
        .new_job(routed)?
        .for_unlinked(1, &job.sr_number, &reason)?;

    let now = now_micros();
    let mut change = JobChange::new(&job, &[], now);
    change.after.report_count = (job.report_count - 1).max(1);
    change.append(NewEvent {
        event_type: EventType::DuplicateUnlinked,
        actor: actor.clone(),
        occurred_at: now,
        position: None,
        unit_id: None,
        reason: format!("{sr_number} unlinked into a job of its own: {reason}"),
    });
    match unlinking
        .write(&change, &own_job, &actor.id, &reason)
        .await?
    {
        Some(Enqueued::New { job_id: own, .. }) => Ok((own, job_id)),
        _ => Err(JobError::refused(
            "REPORT_ALREADY_A_JOB",
            job_id,
            format!("{sr_number} already has a job of its own"),
        )),
    }
}
