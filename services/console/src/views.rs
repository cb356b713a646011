//! What the pages show, as the templates (templates/*.html, compiled and
//! escaped by askama) read it: the services' messages turned into rows of
//! words and times.

use askama::Template;
use chrono::{DateTime, Utc};
use dispatch311_auth::Role;
use dispatch311_proto::dispatch::v1::Job;

use crate::session::Session;
use crate::words;

/// Who is signed in, for the page header (and the sign-out form's token).
pub struct Who {
    pub subject: String,
    pub role: &'static str,
    pub precinct: String,
    pub csrf: String,
}

impl Who {
    pub fn of(session: &Session) -> Self {
        Self {
            subject: session.subject.clone(),
            role: role_name(session.role),
            precinct: session.precinct.clone(),
            csrf: session.csrf.clone(),
        }
    }
}

pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Dispatcher => "Dispatcher",
        Role::Officer => "Officer",
        Role::Supervisor => "Supervisor",
        Role::Auditor => "Auditor",
        Role::Admin => "Administrator",
        Role::Integrator => "Integrator",
        Role::Public => "Public",
        Role::SurveySystem => "Survey system",
    }
}

#[derive(Template)]
#[template(path = "sign_in.html")]
pub struct SignInPage {
    /// The development sign-in is offered (never in production).
    pub dev: bool,
    pub problem: Option<String>,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub who: Option<Who>,
    pub title: String,
    pub message: String,
}

#[derive(Template)]
#[template(path = "board.html")]
pub struct BoardPage {
    pub who: Who,
    pub filters: Vec<FilterLink>,
    /// The live fragment's address (with the chosen filter).
    pub live_url: String,
    /// The queue, rendered (`QueueFragment`).
    pub queue_html: String,
}

pub struct FilterLink {
    pub label: &'static str,
    pub href: String,
    pub current: bool,
}

/// The queue table: sent whole in the page, then again on every change.
#[derive(Template)]
#[template(path = "queue.html")]
pub struct QueueFragment {
    pub rows: Vec<JobRow>,
    pub problem: Option<String>,
    pub filter_label: &'static str,
}

pub struct JobRow {
    pub job_id: String,
    pub priority: &'static str,
    pub urgent: bool,
    pub state: &'static str,
    pub sr_number: String,
    pub complaint: String,
    pub place: String,
    pub waiting: String,
    /// RFC 3339 (for the countdown), empty without an SLA.
    pub sla_due: String,
    pub sla_text: String,
    pub overdue: bool,
    pub holder: String,
    pub flags: Vec<&'static str>,
}

impl JobRow {
    pub fn of(job: &Job, now: DateTime<Utc>) -> Self {
        let timestamp = |ts: &Option<prost_types::Timestamp>| {
            ts.as_ref()
                .and_then(|ts| DateTime::from_timestamp(ts.seconds, ts.nanos.max(0) as u32))
        };
        let waiting_since = timestamp(&job.queued_at).or(timestamp(&job.created_at));
        let sla_due = timestamp(&job.sla_due_at);
        let overdue = job.sla_breached || sla_due.is_some_and(|due| due < now);
        let sla_text = match sla_due {
            None => "no SLA".to_string(),
            Some(due) if due < now => {
                format!("overdue by {}", words::duration((now - due).num_seconds()))
            }
            Some(due) => format!("{} left", words::duration((due - now).num_seconds())),
        };
        let address = job.address.clone().unwrap_or_default();
        let place = [address.street_address, address.cross_street]
            .into_iter()
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join(" & ");
        let complaint = if job.descriptor.is_empty() {
            job.complaint_type.clone()
        } else {
            format!("{} — {}", job.complaint_type, job.descriptor)
        };
        Self {
            job_id: job.job_id.clone(),
            priority: words::priority(job.priority),
            urgent: job.priority >= dispatch311_proto::common::v1::Priority::High as i32,
            state: words::state(job.state),
            sr_number: job.sr_number.clone(),
            complaint,
            place: if place.is_empty() {
                "no address given".into()
            } else {
                place
            },
            waiting: waiting_since
                .map(|since| words::duration((now - since).num_seconds()))
                .unwrap_or_default(),
            sla_due: sla_due.map(|due| due.to_rfc3339()).unwrap_or_default(),
            sla_text,
            overdue,
            holder: job.unit_call_sign.clone(),
            flags: job
                .flags
                .iter()
                .map(|flag| words::flag(flag.kind))
                .collect(),
        }
    }
}
