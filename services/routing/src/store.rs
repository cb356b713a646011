//! Routing's storage: decisions with their explanations, and the outbox.

use chrono::{DateTime, Duration, Utc};
use dispatch311_domain::{
    jobs::{kinds, queues},
    status::{priority_from_name, priority_name},
    time::{from_timestamp, to_timestamp},
};
use dispatch311_proto::{
    common::v1::{DuplicateRule, Priority, ServiceRequestStatus},
    jobs::v1::{DispatchJob, RouteJob, StatusUpdate},
    routing::v1::{RouteDecision, RouteOutcome},
};
use dispatch311_queue::outbox;
use sqlx::{PgPool, Row, postgres::PgRow};
use tracing::Instrument;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Queue(#[from] dispatch311_queue::QueueError),
    #[error("invalid route job: {0}")]
    InvalidJob(String),
    #[error(transparent)]
    Batch(#[from] dispatch311_queue::batch::BatchError),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl dispatch311_grpc::status::StorageFailure for StoreError {
    fn unreachable_dependency(&self) -> Option<&'static str> {
        match self {
            Self::Database(e) => e.unreachable_dependency(),
            Self::Queue(e) => e.unreachable_dependency(),
            Self::InvalidJob(_) => None,
            // the batch writer stops only with the process
            Self::Batch(_) => Some("routing"),
        }
    }
}

/// A decision as stored, with when it was made.
pub struct StoredDecision {
    pub sr_number: String,
    pub decision: RouteDecision,
    pub decided_at: DateTime<Utc>,
    pub sla_due_at: Option<DateTime<Utc>>,
    /// `None` for a decision made before routing recorded it.
    pub police_matter: Option<bool>,
}

/// A decision about to be recorded, with the jobs it sends. Built in the
/// handler, inside the delivery's span, so the jobs carry its trace.
pub struct NewDecision {
    pub sr_id: Uuid,
    pub job: RouteJob,
    pub stored: StoredDecision,
    pub outbox: Vec<outbox::OutboxRow>,
}

impl NewDecision {
    /// `decision` for `job`, made now.
    pub fn new(job: RouteJob, decision: RouteDecision) -> StoreResult<Self> {
        let sr_id = Uuid::parse_str(&job.sr_id)
            .map_err(|_| StoreError::InvalidJob(format!("sr_id {}", job.sr_id)))?;
        let now = Utc::now();
        let created_at = job
            .created_at
            .as_ref()
            .and_then(from_timestamp)
            .unwrap_or(now);
        let sla_due_at = (decision.sla_minutes > 0)
            .then(|| created_at + Duration::minutes(i64::from(decision.sla_minutes)));
        let stored = StoredDecision {
            sr_number: job.sr_number.clone(),
            police_matter: Some(decision.police_matter),
            decision,
            decided_at: now,
            sla_due_at,
        };
        let outbox = outputs(&job, &stored)?;
        Ok(Self {
            sr_id,
            job,
            stored,
            outbox,
        })
    }
}

/// New decisions as the parallel arrays `record_new` unnests.
#[derive(Default)]
struct DecisionColumns<'a> {
    sr_id: Vec<Uuid>,
    sr_number: Vec<&'a str>,
    complaint_type: Vec<&'a str>,
    descriptor: Vec<&'a str>,
    latitude: Vec<Option<f64>>,
    longitude: Vec<Option<f64>>,
    outcome: Vec<&'static str>,
    agency: Vec<&'a str>,
    precinct: Vec<&'a str>,
    priority: Vec<&'static str>,
    sla_minutes: Vec<i32>,
    sla_due_at: Vec<Option<DateTime<Utc>>>,
    rule_id: Vec<&'a str>,
    explanation: Vec<String>,
    decided_at: Vec<DateTime<Utc>>,
    rule_complaint_type: Vec<&'a str>,
    police_matter: Vec<bool>,
}

impl<'a> DecisionColumns<'a> {
    fn push(&mut self, new: &'a NewDecision) {
        let decision = &new.stored.decision;
        let outcome = RouteOutcome::try_from(decision.outcome).unwrap_or_default();
        let priority = Priority::try_from(decision.priority).unwrap_or_default();
        self.sr_id.push(new.sr_id);
        self.sr_number.push(&new.job.sr_number);
        self.complaint_type.push(&new.job.complaint_type);
        self.descriptor.push(&new.job.descriptor);
        self.latitude
            .push(new.job.location.as_ref().map(|l| l.latitude));
        self.longitude
            .push(new.job.location.as_ref().map(|l| l.longitude));
        self.outcome.push(outcome.as_str_name());
        self.agency.push(&decision.agency);
        self.precinct.push(&decision.precinct);
        self.priority.push(priority_name(priority));
        self.sla_minutes.push(decision.sla_minutes as i32);
        self.sla_due_at.push(new.stored.sla_due_at);
        self.rule_id.push(&decision.rule_id);
        self.explanation
            .push(serde_json::json!(decision.explanation).to_string());
        self.decided_at.push(new.stored.decided_at);
        self.rule_complaint_type.push(&decision.complaint_type);
        self.police_matter.push(decision.police_matter);
    }
}

#[derive(Clone)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Records new decisions with, in the same statement, what follows from
    /// each: a dispatch job for police work and a status update for intake.
    /// Returns, per decision, whether it was new; a request routed before
    /// keeps its first decision (see [`Store::record_repeat`]). Each request
    /// may appear once (the caller splits a batch into rounds).
    pub async fn record_new(&self, decisions: &[&NewDecision]) -> StoreResult<Vec<bool>> {
        if decisions.is_empty() {
            return Ok(Vec::new());
        }
        let mut d = DecisionColumns::default();
        let (mut row_sr_ids, mut queues, mut envelopes) = (Vec::new(), Vec::new(), Vec::new());
        for decision in decisions {
            d.push(decision);
            for row in &decision.outbox {
                row_sr_ids.push(decision.sr_id);
                queues.push(row.queue.as_str());
                envelopes.push(row.envelope.as_slice());
            }
        }
        let decided: Vec<Uuid> = sqlx::query_scalar(
            "WITH decided AS ( \
                INSERT INTO route_decisions (sr_id, sr_number, complaint_type, descriptor, latitude, longitude, \
                    outcome, agency, precinct, priority, sla_minutes, sla_due_at, rule_id, explanation, decided_at, \
                    rule_complaint_type, police_matter) \
                SELECT d.sr_id, d.sr_number, d.complaint_type, d.descriptor, d.latitude, d.longitude, \
                    d.outcome, d.agency, d.precinct, d.priority, d.sla_minutes, d.sla_due_at, d.rule_id, \
                    d.explanation::jsonb, d.decided_at, d.rule_complaint_type, d.police_matter \
                FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::float8[], \
                    $7::text[], $8::text[], $9::text[], $10::text[], $11::int4[], $12::timestamptz[], \
                    $13::text[], $14::text[], $15::timestamptz[], $19::text[], $20::bool[]) \
                AS d(sr_id, sr_number, complaint_type, descriptor, latitude, longitude, outcome, agency, \
                    precinct, priority, sla_minutes, sla_due_at, rule_id, explanation, decided_at, \
                    rule_complaint_type, police_matter) \
                ON CONFLICT (sr_id) DO NOTHING RETURNING sr_id), \
             jobs AS ( \
                INSERT INTO outbox (queue, envelope) \
                SELECT o.queue, o.envelope FROM unnest($16::uuid[], $17::text[], $18::bytea[]) \
                    WITH ORDINALITY AS o(sr_id, queue, envelope, n) \
                WHERE o.sr_id IN (SELECT sr_id FROM decided) ORDER BY o.n) \
             SELECT sr_id FROM decided",
        )
        .bind(&d.sr_id)
        .bind(&d.sr_number)
        .bind(&d.complaint_type)
        .bind(&d.descriptor)
        .bind(&d.latitude)
        .bind(&d.longitude)
        .bind(&d.outcome)
        .bind(&d.agency)
        .bind(&d.precinct)
        .bind(&d.priority)
        .bind(&d.sla_minutes)
        .bind(&d.sla_due_at)
        .bind(&d.rule_id)
        .bind(&d.explanation)
        .bind(&d.decided_at)
        .bind(row_sr_ids)
        .bind(queues)
        .bind(envelopes)
        .bind(&d.rule_complaint_type)
        .bind(&d.police_matter)
        .fetch_all(&self.pool)
        .instrument(dispatch311_db::statement_span("INSERT", "route_decisions"))
        .await?;
        Ok(decisions
            .iter()
            .map(|decision| decided.contains(&decision.sr_id))
            .collect())
    }

    /// For a request routed before (a redelivered or re-published route
    /// job): writes again what its first decision said, which is how
    /// requests whose jobs were lost with Redis get through; consumers
    /// ignore duplicates.
    /// `duplicate_rule` is the rule's way of linking reports as the table
    /// says now (decisions do not store it).
    pub async fn record_repeat(
        &self,
        job: &RouteJob,
        duplicate_rule: Option<DuplicateRule>,
    ) -> StoreResult<StoredDecision> {
        let sr_id = Uuid::parse_str(&job.sr_id)
            .map_err(|_| StoreError::InvalidJob(format!("sr_id {}", job.sr_id)))?;
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query("SELECT * FROM route_decisions WHERE sr_id = $1")
            .bind(sr_id)
            .fetch_one(&mut *tx)
            .instrument(dispatch311_db::statement_span("SELECT", "route_decisions"))
            .await?;
        let mut stored = decision_from_row(&row);
        stored.decision.duplicate_rule = duplicate_rule;
        let jobs = outputs(job, &stored)?;
        let (queues, envelopes) = outbox::columns(&jobs);
        sqlx::query(
            "INSERT INTO outbox (queue, envelope) SELECT * FROM unnest($1::text[], $2::bytea[])",
        )
        .bind(queues)
        .bind(envelopes)
        .execute(&mut *tx)
        .instrument(dispatch311_db::statement_span("INSERT", "outbox"))
        .await?;
        tx.commit().await?;
        Ok(stored)
    }

    pub async fn get(&self, sr_id: Uuid) -> StoreResult<Option<StoredDecision>> {
        let row = sqlx::query("SELECT * FROM route_decisions WHERE sr_id = $1")
            .bind(sr_id)
            .fetch_optional(&self.pool)
            .instrument(dispatch311_db::statement_span("SELECT", "route_decisions"))
            .await?;
        Ok(row.as_ref().map(decision_from_row))
    }
}

/// The jobs a decision sends: a dispatch job for police work, and always a
/// status update for intake.
fn outputs(job: &RouteJob, stored: &StoredDecision) -> StoreResult<Vec<outbox::OutboxRow>> {
    let mut rows = Vec::with_capacity(2);
    if RouteOutcome::try_from(stored.decision.outcome) == Ok(RouteOutcome::Dispatch) {
        let dispatch = DispatchJob {
            sr_id: job.sr_id.clone(),
            sr_number: job.sr_number.clone(),
            // the rule's name for it: an old name dispatches as the current one
            complaint_type: if stored.decision.complaint_type.is_empty() {
                job.complaint_type.clone()
            } else {
                stored.decision.complaint_type.clone()
            },
            descriptor: job.descriptor.clone(),
            location: job.location,
            address: job.address.clone(),
            agency: stored.decision.agency.clone(),
            precinct: stored.decision.precinct.clone(),
            priority: stored.decision.priority,
            sla_due_at: stored.sla_due_at.map(to_timestamp),
            created_at: job.created_at,
            routed_at: Some(to_timestamp(stored.decided_at)),
            photo_count: job.photo_count,
            complainant_consented: job.complainant_consented,
            description_for_responders: job.description_for_responders.clone(),
            photo_ids: job.photo_ids.clone(),
            police_matter: stored.police_matter,
            duplicate_rule: stored.decision.duplicate_rule,
        };
        rows.push(outbox::prepare(
            queues::DISPATCH,
            kinds::DISPATCH,
            &job.sr_id,
            &dispatch,
        )?);
    }
    let update = status_update(&job.sr_id, stored);
    rows.push(outbox::prepare(
        queues::STATUS,
        kinds::STATUS_UPDATE,
        &job.sr_id,
        &update,
    )?);
    Ok(rows)
}

/// What intake shows the public about a decision.
fn status_update(sr_id: &str, stored: &StoredDecision) -> StatusUpdate {
    let decision = &stored.decision;
    let outcome = RouteOutcome::try_from(decision.outcome).unwrap_or_default();
    let priority = Priority::try_from(decision.priority).unwrap_or_default();
    let (status, message, key) = match outcome {
        RouteOutcome::Dispatch => (
            ServiceRequestStatus::Routed,
            format!(
                "routed to {} precinct {} (priority {}{})",
                decision.agency,
                decision.precinct,
                priority_name(priority).to_lowercase(),
                stored
                    .sla_due_at
                    .map(|due| format!(", due by {}", due.format("%Y-%m-%d %H:%M UTC")))
                    .unwrap_or_default()
            ),
            "routing:routed",
        ),
        RouteOutcome::Refer => (
            ServiceRequestStatus::Referred,
            format!(
                "referred to {}, which handles this type of complaint",
                decision.agency
            ),
            "routing:referred",
        ),
        RouteOutcome::Triage | RouteOutcome::Unspecified => (
            ServiceRequestStatus::NeedsTriage,
            format!("held for review by 311 staff: {}", triage_reason(decision)),
            "routing:triage",
        ),
    };
    StatusUpdate {
        sr_id: sr_id.to_string(),
        status: status as i32,
        occurred_at: Some(to_timestamp(stored.decided_at)),
        source: "routing".into(),
        message,
        agency: decision.agency.clone(),
        precinct: decision.precinct.clone(),
        priority: decision.priority,
        sla_due_at: stored.sla_due_at.map(to_timestamp),
        transition_key: key.into(),
        ..Default::default()
    }
}

/// Why a request is held for triage, in the explanation's own words: the
/// steps that found something missing (no rule, no place, no precinct).
fn triage_reason(decision: &RouteDecision) -> String {
    let reasons: Vec<&str> = decision
        .explanation
        .iter()
        .map(String::as_str)
        .filter(|line| {
            !line.contains(" matched ")
                && !line.starts_with("priority ")
                && !line.starts_with("held for 311 triage by ")
                && !line.contains(" is inside precinct ")
                && !line.contains(" is another name of ")
        })
        .collect();
    if reasons.is_empty() {
        return "no route found".to_owned();
    }
    reasons.join("; ")
}

fn decision_from_row(row: &PgRow) -> StoredDecision {
    let explanation: serde_json::Value = row.get("explanation");
    let outcome: String = row.get("outcome");
    let police_matter: Option<bool> = row.get("police_matter");
    StoredDecision {
        sr_number: row.get("sr_number"),
        decision: RouteDecision {
            outcome: RouteOutcome::from_str_name(&outcome).unwrap_or_default() as i32,
            agency: row.get("agency"),
            precinct: row.get("precinct"),
            priority: priority_from_name(row.get("priority")).unwrap_or_default() as i32,
            sla_minutes: row.get::<i32, _>("sla_minutes") as u32,
            rule_id: row.get("rule_id"),
            explanation: serde_json::from_value(explanation).unwrap_or_default(),
            complaint_type: row.get("rule_complaint_type"),
            police_matter: police_matter.unwrap_or(true),
            // not stored: a repeat takes the rule's as the table says now
            duplicate_rule: None,
        },
        decided_at: row.get("decided_at"),
        sla_due_at: row.get("sla_due_at"),
        police_matter,
    }
}
