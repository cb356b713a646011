//! Routing's storage: decisions with their explanations, and the outbox.

use chrono::{DateTime, Duration, Utc};
use dispatch311_domain::{
    jobs::{kinds, queues},
    status::{priority_from_name, priority_name},
    time::{from_timestamp, to_timestamp},
};
use dispatch311_proto::{
    common::v1::{Priority, ServiceRequestStatus},
    jobs::v1::{DispatchJob, RouteJob, StatusUpdate},
    routing::v1::{RouteDecision, RouteOutcome},
};
use dispatch311_queue::outbox;
use sqlx::{PgPool, Row, postgres::PgRow};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Queue(#[from] dispatch311_queue::QueueError),
    #[error("invalid route job: {0}")]
    InvalidJob(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A decision as stored, with when it was made.
pub struct StoredDecision {
    pub sr_number: String,
    pub decision: RouteDecision,
    pub decided_at: DateTime<Utc>,
    pub sla_due_at: Option<DateTime<Utc>>,
    /// false when the request had been routed before (a redelivery).
    pub new: bool,
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

    /// Records `decision` for the job's request (or keeps the one recorded
    /// before) and, in the same transaction, writes what follows from it: a
    /// dispatch job for police work and a status update for intake. A repeat
    /// writes them again from the first decision, which is how requests whose
    /// jobs were lost with Redis get through; consumers ignore duplicates.
    pub async fn record(
        &self,
        job: &RouteJob,
        decision: RouteDecision,
    ) -> StoreResult<StoredDecision> {
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
        let outcome = RouteOutcome::try_from(decision.outcome).unwrap_or_default();
        let priority = Priority::try_from(decision.priority).unwrap_or_default();

        let fresh = StoredDecision {
            sr_number: job.sr_number.clone(),
            decision,
            decided_at: now,
            sla_due_at,
            new: true,
        };
        // the usual case in one statement: the decision and its jobs
        let jobs = outputs(job, &fresh)?;
        let (queues, envelopes) = outbox::columns(&jobs);
        let written = sqlx::query(
            "WITH decided AS ( \
                INSERT INTO route_decisions (sr_id, sr_number, complaint_type, descriptor, latitude, longitude, \
                    outcome, agency, precinct, priority, sla_minutes, sla_due_at, rule_id, explanation, decided_at) \
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
                ON CONFLICT (sr_id) DO NOTHING RETURNING sr_id) \
             INSERT INTO outbox (queue, envelope) \
             SELECT * FROM unnest($16::text[], $17::bytea[]) WHERE EXISTS (SELECT 1 FROM decided)",
        )
        .bind(sr_id)
        .bind(&job.sr_number)
        .bind(&job.complaint_type)
        .bind(&job.descriptor)
        .bind(job.location.as_ref().map(|l| l.latitude))
        .bind(job.location.as_ref().map(|l| l.longitude))
        .bind(outcome.as_str_name())
        .bind(&fresh.decision.agency)
        .bind(&fresh.decision.precinct)
        .bind(priority_name(priority))
        .bind(fresh.decision.sla_minutes as i32)
        .bind(sla_due_at)
        .bind(&fresh.decision.rule_id)
        .bind(serde_json::json!(fresh.decision.explanation))
        .bind(now)
        .bind(queues)
        .bind(envelopes)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if written > 0 {
            return Ok(fresh);
        }

        // routed before: emit again what the first decision said
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query("SELECT * FROM route_decisions WHERE sr_id = $1")
            .bind(sr_id)
            .fetch_one(&mut *tx)
            .await?;
        let stored = StoredDecision {
            new: false,
            ..decision_from_row(&row)
        };
        let jobs = outputs(job, &stored)?;
        let (queues, envelopes) = outbox::columns(&jobs);
        sqlx::query(
            "INSERT INTO outbox (queue, envelope) SELECT * FROM unnest($1::text[], $2::bytea[])",
        )
        .bind(queues)
        .bind(envelopes)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(stored)
    }

    pub async fn get(&self, sr_id: Uuid) -> StoreResult<Option<StoredDecision>> {
        let row = sqlx::query("SELECT * FROM route_decisions WHERE sr_id = $1")
            .bind(sr_id)
            .fetch_optional(&self.pool)
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
            complaint_type: job.complaint_type.clone(),
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
            format!(
                "held for review by 311 staff: {}",
                decision
                    .explanation
                    .last()
                    .map(String::as_str)
                    .unwrap_or("no route found")
            ),
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

fn decision_from_row(row: &PgRow) -> StoredDecision {
    let explanation: serde_json::Value = row.get("explanation");
    let outcome: String = row.get("outcome");
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
        },
        decided_at: row.get("decided_at"),
        sla_due_at: row.get("sla_due_at"),
        new: false,
    }
}
