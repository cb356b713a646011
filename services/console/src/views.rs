//! What the pages show, as the templates (templates/*.html, compiled and
//! escaped by askama) read it: the services' messages turned into rows of
//! words and times.

use askama::Template;
use chrono::{DateTime, Utc};
use dispatch311_auth::Role;
use dispatch311_proto::dispatch::v1::{
    Job, JobEvent, JobState, ReviewItem, Unit, UnitRecommendation, UnitStatus,
    VerifyJobTimelineResponse,
};

use crate::session::Session;
use crate::words;

/// Who is signed in, for the page header (and the sign-out form's token).
pub struct Who {
    pub subject: String,
    pub role: &'static str,
    pub precinct: String,
    pub csrf: String,
    /// Which pages the header links to.
    pub board: bool,
    pub supervisor: bool,
    pub officer: bool,
}

impl Who {
    pub fn of(session: &Session) -> Self {
        Self {
            subject: session.subject.clone(),
            role: role_name(session.role),
            precinct: session.precinct.clone(),
            csrf: session.csrf.clone(),
            board: matches!(session.role, Role::Dispatcher | Role::Supervisor),
            supervisor: session.role == Role::Supervisor,
            officer: session.role == Role::Officer,
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
    /// The city's identity provider signs people in.
    pub oidc: bool,
    pub problem: Option<String>,
    /// The forms' token (paired with the browser by a cookie).
    pub csrf: String,
}

/// After the identity provider's redirect back: a page that moves on to
/// the console by itself. (A redirect there would still belong to the
/// provider's cross-site navigation, and the SameSite=Strict session
/// cookie would not be sent with it.)
#[derive(Template)]
#[template(path = "signed_in.html")]
pub struct SignedInPage {
    pub next: &'static str,
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
    /// The queue and the units, rendered (`BoardFragment`).
    pub live_html: String,
}

pub struct FilterLink {
    pub label: &'static str,
    pub href: String,
    pub current: bool,
}

/// The queue table (templates/queue.html, within the board's live part).
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
        let ended = timestamp(&job.closed_at).filter(|_| {
            matches!(
                JobState::try_from(job.state).unwrap_or(JobState::Unspecified),
                JobState::Closed | JobState::Cancelled | JobState::Rerouted
            )
        });
        let overdue = job.sla_breached || sla_due.is_some_and(|due| due < ended.unwrap_or(now));
        // a finished job's clock stops: met or missed, and by how much
        let (sla_due, sla_text) = match (sla_due, ended) {
            (Some(due), Some(ended)) if ended <= due => (None, "met".to_string()),
            (Some(due), Some(ended)) => (
                None,
                format!("missed by {}", words::duration((ended - due).num_seconds())),
            ),
            (due, _) => (due, String::new()),
        };
        let sla_text = match sla_due {
            None if !sla_text.is_empty() => sla_text,
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

/// The board's live section: the queue and the precinct's units.
#[derive(Template)]
#[template(path = "board_live.html")]
pub struct BoardFragment {
    pub queue: QueueFragment,
    pub units: Vec<UnitRow>,
    pub units_problem: Option<String>,
}

pub struct UnitRow {
    pub call_sign: String,
    pub status: &'static str,
    /// Told in words and a sign, not only in colour.
    pub on_emergency: bool,
    pub position_age: String,
    pub job_id: String,
    /// The SR number of its job when the queue shows it, else empty.
    pub job_sr_number: String,
}

impl UnitRow {
    pub fn of(unit: &Unit, jobs: &[Job], now: DateTime<Utc>) -> Self {
        let reported = unit
            .position_reported_at
            .as_ref()
            .and_then(|ts| DateTime::from_timestamp(ts.seconds, ts.nanos.max(0) as u32));
        Self {
            call_sign: unit.call_sign.clone(),
            status: words::unit_status(unit.status),
            on_emergency: unit.status == UnitStatus::BusyEmergency as i32,
            position_age: match reported {
                Some(at) => format!("{} ago", words::duration((now - at).num_seconds())),
                None => "no position yet".into(),
            },
            job_id: unit.current_job_id.clone(),
            job_sr_number: jobs
                .iter()
                .find(|job| job.job_id == unit.current_job_id)
                .map(|job| job.sr_number.clone())
                .unwrap_or_default(),
        }
    }
}

/// One job, for dispatchers and supervisors: what it is, who holds it, the
/// units to send, the timeline and its verification, and the actions.
#[derive(Template)]
#[template(path = "job.html")]
pub struct JobPage {
    pub who: Who,
    pub supervisor: bool,
    pub job: JobDetail,
    /// Refused action, in words, shown above the forms.
    pub problem: Option<String>,
    pub recommendations: Vec<Recommendation>,
    pub recommendations_problem: Option<String>,
    /// The live part: the job's state and timeline.
    pub live_html: String,
    /// The hash chain's verification (supervisors), in words.
    pub verification: Option<Verification>,
}

pub struct JobDetail {
    pub row: JobRow,
    pub state: i32,
    pub open: bool,
    pub assigned: bool,
    pub description: String,
    pub photo_indexes: Vec<u32>,
    pub maps_url: String,
    pub linked_sr_numbers: Vec<String>,
    pub resolution: String,
}

impl JobDetail {
    pub fn of(job: &Job, now: DateTime<Utc>) -> Self {
        let state = JobState::try_from(job.state).unwrap_or(JobState::Unspecified);
        let resolution = if job.resolution_code != 0 {
            let mut words = words::resolution(job.resolution_code).to_string();
            if !job.summons_number.is_empty() {
                words.push_str(&format!(" (summons {})", job.summons_number));
            }
            words
        } else {
            String::new()
        };
        Self {
            row: JobRow::of(job, now),
            state: job.state,
            open: !matches!(
                state,
                JobState::Closed | JobState::Cancelled | JobState::Rerouted
            ),
            assigned: !job.unit_id.is_empty(),
            description: job.description.clone(),
            photo_indexes: (0..job.photo_count).collect(),
            maps_url: job
                .location
                .as_ref()
                .map(|at| format!("geo:{:.6},{:.6}", at.latitude, at.longitude))
                .unwrap_or_default(),
            linked_sr_numbers: job.linked_sr_numbers.clone(),
            resolution,
        }
    }
}

pub struct Recommendation {
    pub unit_id: String,
    pub call_sign: String,
    pub distance: String,
}

impl Recommendation {
    pub fn of(recommendation: &UnitRecommendation) -> Option<Self> {
        let unit = recommendation.unit.as_ref()?;
        let meters = recommendation.distance_meters;
        Some(Self {
            unit_id: unit.unit_id.clone(),
            call_sign: unit.call_sign.clone(),
            distance: if meters >= 1_000.0 {
                format!("{:.1} km", meters / 1_000.0)
            } else {
                format!("{meters:.0} m")
            },
        })
    }
}

/// The job's live part: state and timeline, re-sent when either changes.
#[derive(Template)]
#[template(path = "job_live.html")]
pub struct JobLive {
    pub job: JobDetail,
    pub events: Vec<TimelineRow>,
    pub timeline_problem: Option<String>,
}

pub struct TimelineRow {
    pub sequence: i64,
    pub what: &'static str,
    pub at: String,
    pub who: String,
    pub reason: String,
}

impl TimelineRow {
    pub fn of(event: &JobEvent) -> Self {
        let actor = event.actor.clone().unwrap_or_default();
        Self {
            sequence: event.sequence,
            what: words::event(event.r#type),
            at: event
                .occurred_at
                .as_ref()
                .and_then(|ts| DateTime::from_timestamp(ts.seconds, ts.nanos.max(0) as u32))
                .map(|at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_default(),
            who: actor.id,
            reason: event.reason.clone(),
        }
    }
}

pub struct Verification {
    pub intact: bool,
    pub text: String,
}

impl Verification {
    pub fn of(result: &VerifyJobTimelineResponse) -> Self {
        let checkpoint = if result.checkpoint_size == 0 {
            "no signed checkpoint exported yet".to_string()
        } else if result.checkpoint_matches {
            format!(
                "the whole log matches the last signed checkpoint ({} events)",
                result.checkpoint_size
            )
        } else {
            format!(
                "the log no longer matches the signed checkpoint of {} events",
                result.checkpoint_size
            )
        };
        if result.intact {
            Self {
                intact: true,
                text: format!(
                    "Verified: the chain of {} events holds; {checkpoint}.",
                    result.events_checked
                ),
            }
        } else {
            Self {
                intact: false,
                text: format!(
                    "NOT verified: the chain breaks at event {} ({}); {checkpoint}.",
                    result.first_broken_sequence, result.detail
                ),
            }
        }
    }
}

/// One photo the complainant attached (its view recorded by dispatch).
#[derive(Template)]
#[template(path = "photo.html")]
pub struct PhotoPage {
    pub who: Who,
    pub sr_number: String,
    pub number: u32,
    pub count: u32,
    pub data_url: String,
    pub back: String,
}

/// The supervisor's review list: flagged jobs.
#[derive(Template)]
#[template(path = "review.html")]
pub struct ReviewPage {
    pub who: Who,
    pub live_html: String,
}

#[derive(Template)]
#[template(path = "review_live.html")]
pub struct ReviewFragment {
    pub items: Vec<ReviewRow>,
    pub problem: Option<String>,
}

/// One flagged job with every flag it carries.
pub struct ReviewRow {
    pub job_id: String,
    pub sr_number: String,
    pub complaint: String,
    /// Each flag in words, with why it was raised.
    pub flags: Vec<(&'static str, String)>,
    pub state: &'static str,
    pub holder: String,
}

impl ReviewRow {
    /// The items grouped by job, in the order the list gives them.
    pub fn group(items: &[ReviewItem]) -> Vec<Self> {
        let now = Utc::now();
        let mut rows: Vec<Self> = Vec::new();
        for item in items {
            let job = item.job.clone().unwrap_or_default();
            let flag = item.flag.clone().unwrap_or_default();
            let flag = (words::flag(flag.kind), flag.detail);
            if let Some(row) = rows.iter_mut().find(|row| row.job_id == job.job_id) {
                row.flags.push(flag);
                continue;
            }
            let row = JobRow::of(&job, now);
            rows.push(Self {
                job_id: job.job_id,
                sr_number: job.sr_number,
                complaint: row.complaint,
                flags: vec![flag],
                state: row.state,
                holder: row.holder,
            });
        }
        rows
    }
}

/// The precinct's figures, with satisfaction beside them.
#[derive(Template)]
#[template(path = "figures.html")]
pub struct FiguresPage {
    pub who: Who,
    pub windows: Vec<FiguresWindow>,
}

pub struct FiguresWindow {
    pub label: &'static str,
    pub problem: Option<String>,
    pub received: i64,
    pub closed: i64,
    pub within_5_minutes: String,
    pub with_summons: String,
    pub median_to_arrival: String,
    pub sla_breaches: i64,
    pub flagged: i64,
    pub satisfaction: String,
}

/// "37 %" (or a dash without closures).
pub fn share(value: f64, of: i64) -> String {
    if of == 0 {
        "—".into()
    } else {
        format!("{:.0} %", value * 100.0)
    }
}

/// The officer's screen: the unit's assignment, live.
#[derive(Template)]
#[template(path = "officer.html")]
pub struct OfficerPage {
    pub who: Who,
    pub call_sign: String,
    pub live_url: String,
    pub assignment_html: String,
}

/// The assignment part of the officer's screen, sent again on every change.
#[derive(Template)]
#[template(path = "assignment.html")]
pub struct AssignmentFragment {
    pub csrf: String,
    pub job: Option<JobDetail>,
    /// What changed last, in words ("Job 311-… was closed").
    pub notice: Option<String>,
    /// A refused step, in words with what to do.
    pub problem: Option<String>,
    pub resolutions: Vec<(String, &'static str)>,
    /// The same page state renders the same version: the script leaves a
    /// form being filled in alone when nothing changed.
    pub version: String,
}

impl AssignmentFragment {
    pub fn new(csrf: &str, job: Option<&Job>, notice: Option<String>) -> Self {
        let now = Utc::now();
        let version = job
            .map(|job| {
                format!(
                    "{}:{}:{}:{}",
                    job.job_id, job.state, job.priority, job.photo_count
                )
            })
            .unwrap_or_else(|| "none".into());
        Self {
            csrf: csrf.into(),
            job: job.map(|job| JobDetail::of(job, now)),
            notice,
            problem: None,
            resolutions: words::RESOLUTIONS
                .iter()
                .map(|(code, label)| (code.as_str_name().to_string(), *label))
                .collect(),
            version,
        }
    }

    /// The lifecycle's next step for the unit, as the big button offers it:
    /// the form's action, its label, and whether the device's position is
    /// `required` (on scene) or `optional`.
    pub fn next_step(&self) -> Option<(&'static str, &'static str, &'static str)> {
        let job = self.job.as_ref()?;
        match JobState::try_from(job.state).unwrap_or(JobState::Unspecified) {
            JobState::Assigned => Some(("acknowledge", "Acknowledge", "optional")),
            JobState::Acknowledged => Some(("en-route", "En route", "optional")),
            JobState::EnRoute => Some(("on-scene", "On scene", "required")),
            _ => None,
        }
    }
}

/// A live section's refusal or outage, in words, in its place.
#[derive(Template)]
#[template(
    source = "<p class=\"problem\" role=\"alert\">{{ problem }}</p>",
    ext = "html"
)]
pub struct ProblemFragment {
    pub problem: String,
}
