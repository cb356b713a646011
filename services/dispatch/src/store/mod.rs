//! Dispatch's storage: jobs, their event log and the outbox, all in the
//! `dispatch` schema.

use std::time::Duration;

use chrono::{DateTime, Utc};
use dispatch311_domain::{
    address_columns::AddressColumns,
    jobs::{kinds, queues},
    status::{priority_from_name, priority_name, resolution_from_name},
    time::{from_timestamp, to_timestamp},
};
use dispatch311_proto::{
    common::v1::{Address, GeoPoint, Priority, ServiceRequestStatus},
    dispatch::v1::{Job, JobState},
    jobs::v1::{DispatchJob, StatusUpdate},
};
use dispatch311_queue::outbox;
use dispatch311_telemetry::propagation;
use sqlx::{PgPool, Row, postgres::PgRow};
use tracing::Instrument;
use uuid::Uuid;

pub mod changes;
pub mod duplicates;
pub mod event_log;
pub mod events;
pub mod feed;
pub mod flags;
pub mod oversight;
pub mod slow_jobs;
pub mod units;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Queue(#[from] dispatch311_queue::QueueError),
    #[error("invalid dispatch job: {0}")]
    InvalidJob(String),
    #[error(transparent)]
    Batch(#[from] dispatch311_queue::batch::BatchError),
    /// The job or one of its units changed between a change's read and its
    /// write; nothing was written.
    #[error("the job changed since it was read")]
    Conflict,
}

pub type StoreResult<T> = Result<T, StoreError>;

impl dispatch311_grpc::status::StorageFailure for StoreError {
    fn unreachable_dependency(&self) -> Option<&'static str> {
        match self {
            Self::Database(e) => e.unreachable_dependency(),
            Self::Queue(e) => e.unreachable_dependency(),
            Self::InvalidJob(_) | Self::Conflict => None,
            // the batch writer stops only with the process
            Self::Batch(_) => Some("dispatch"),
        }
    }
}

/// What enqueueing a dispatch job did. `offer_to_auto_assign`: the job
/// waits in the queue of a precinct that assigns automatically.
#[derive(Debug, PartialEq, Eq)]
pub enum Enqueued {
    New {
        job_id: Uuid,
        offer_to_auto_assign: bool,
    },
    /// The request already has a job: a redelivery or a reconciler repeat.
    AlreadyQueued {
        job_id: Uuid,
        offer_to_auto_assign: bool,
    },
    /// The request is another report of an open job's incident: linked to
    /// that job (now, or by an earlier delivery).
    Linked { job_id: Uuid, new: bool },
}

/// A routed request ready to be queued ([`Store::new_job`], [`Store::enqueue`]).
pub struct NewJob {
    pub sr_id: Uuid,
    job_id: Uuid,
    pub precinct: String,
    pub priority: Priority,
    created_at: DateTime<Utc>,
    pub routed_at: Option<DateTime<Utc>>,
    pub queued_at: DateTime<Utc>,
    sla_due_at: Option<DateTime<Utc>>,
    police_matter: bool,
    photo_ids: Vec<Uuid>,
    /// the job's first event
    reason: String,
    /// the delivery's span, which later work on the job links to
    origin_traceparent: String,
    /// how many times the request moved to another job (see `for_unlinked`)
    request_epoch: i32,
    /// the trace that writes the first event
    trace_id: String,
    /// tells intake the request is queued (written on a repeat too)
    told: outbox::OutboxRow,
    sla_timer: Option<outbox::OutboxRow>,
    pub job: DispatchJob,
}

impl NewJob {
    /// When the complainant filed the request.
    pub fn filed_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    /// The job of a report a supervisor unlinked from `from_sr_number`'s
    /// job: the request's next epoch, its first event saying where it came
    /// from, and its complainant told it is now a job of its own.
    pub fn for_unlinked(
        mut self,
        epoch: i32,
        from_sr_number: &str,
        reason: &str,
    ) -> StoreResult<Self> {
        self.request_epoch = epoch;
        self.reason = format!(
            "queued for precinct {} (unlinked from the job of {from_sr_number}: {reason})",
            self.precinct
        );
        let update = StatusUpdate {
            sr_id: self.sr_id.to_string(),
            status: ServiceRequestStatus::Queued as i32,
            occurred_at: Some(to_timestamp(self.queued_at)),
            source: "dispatch".into(),
            message: format!(
                "not the same incident as {from_sr_number} after all: a job of its own in the dispatch queue of precinct {}",
                self.precinct
            ),
            transition_key: dispatch311_domain::jobs::epoch_key("dispatch:queued", epoch),
            dispatch_sequence: 1,
            dispatch_epoch: epoch as u32,
            ..Default::default()
        };
        self.told = outbox::prepare(queues::STATUS, kinds::STATUS_UPDATE, &update.sr_id, &update)?;
        Ok(self)
    }
}

/// New jobs as the parallel arrays [`Store::enqueue`] unnests; a job's
/// photos are flattened into (`photo_ord`, `photo_id`) pairs.
#[derive(Default)]
struct JobColumns<'a> {
    ord: Vec<i32>,
    job_id: Vec<Uuid>,
    sr_id: Vec<Uuid>,
    sr_number: Vec<&'a str>,
    complaint_type: Vec<&'a str>,
    descriptor: Vec<&'a str>,
    latitude: Vec<Option<f64>>,
    longitude: Vec<Option<f64>>,
    address: AddressColumns<'a>,
    agency: Vec<&'a str>,
    precinct: Vec<&'a str>,
    priority: Vec<&'static str>,
    priority_rank: Vec<i16>,
    sla_due_at: Vec<Option<DateTime<Utc>>>,
    created_at: Vec<DateTime<Utc>>,
    routed_at: Vec<Option<DateTime<Utc>>>,
    queued_at: Vec<DateTime<Utc>>,
    photo_count: Vec<i32>,
    complainant_consented: Vec<bool>,
    police_matter: Vec<bool>,
    description: Vec<&'a str>,
    reason: Vec<&'a str>,
    origin_traceparent: Vec<&'a str>,
    request_epoch: Vec<i32>,
    trace_id: Vec<&'a str>,
    told_queue: Vec<&'a str>,
    told: Vec<&'a [u8]>,
    sla_timer: Vec<Option<&'a [u8]>>,
    photo_ord: Vec<i32>,
    photo_id: Vec<Uuid>,
}

impl<'a> JobColumns<'a> {
    fn push(&mut self, ord: i32, new: &'a NewJob) {
        let job = &new.job;
        self.ord.push(ord);
        self.job_id.push(new.job_id);
        self.sr_id.push(new.sr_id);
        self.sr_number.push(&job.sr_number);
        self.complaint_type.push(&job.complaint_type);
        self.descriptor.push(&job.descriptor);
        self.latitude
            .push(job.location.as_ref().map(|l| l.latitude));
        self.longitude
            .push(job.location.as_ref().map(|l| l.longitude));
        self.address.push(job.address.as_ref());
        self.agency.push(&job.agency);
        self.precinct.push(&new.precinct);
        self.priority.push(priority_name(new.priority));
        self.priority_rank.push(new.priority as i16);
        self.sla_due_at.push(new.sla_due_at);
        self.created_at.push(new.created_at);
        self.routed_at.push(new.routed_at);
        self.queued_at.push(new.queued_at);
        self.photo_count.push(job.photo_count as i32);
        self.complainant_consented.push(job.complainant_consented);
        self.police_matter.push(new.police_matter);
        self.description.push(&job.description_for_responders);
        self.reason.push(&new.reason);
        self.origin_traceparent.push(&new.origin_traceparent);
        self.request_epoch.push(new.request_epoch);
        self.trace_id.push(&new.trace_id);
        self.told_queue.push(&new.told.queue);
        self.told.push(&new.told.envelope);
        self.sla_timer.push(
            new.sla_timer
                .as_ref()
                .map(|timer| timer.envelope.as_slice()),
        );
        for photo_id in &new.photo_ids {
            self.photo_ord.push(ord);
            self.photo_id.push(*photo_id);
        }
    }
}

pub enum JobKey {
    Id(Uuid),
    SrNumber(String),
}

#[derive(Clone)]
pub struct Store {
    pool: PgPool,
    /// `DispatchRules::sla_override`: when set, a new job's SLA is due this
    /// long after it is queued, whatever routing said.
    sla_override: Option<Duration>,
}

pub(crate) const JOB_COLUMNS: &str = "jobs.*, (SELECT call_sign FROM units u WHERE u.unit_id = jobs.unit_id) AS unit_call_sign, \
     array(SELECT r.sr_number FROM job_reports r WHERE r.job_id = jobs.job_id AND r.unlinked_at IS NULL ORDER BY r.linked_at, r.sr_number) \
        AS linked_sr_numbers";

impl Store {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            sla_override: None,
        }
    }

    /// Every job queued from now on is due `sla_override` after it is queued
    /// (tests and drills); `None` keeps routing's due time.
    pub fn with_sla_override(mut self, sla_override: Option<Duration>) -> Self {
        self.sla_override = sla_override;
        self
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Builds what queueing `job` writes: the job's row, its first event, the
    /// status update that tells intake and the SLA timer. Call it in the
    /// delivery's span: the jobs it sends are that span's children.
    pub fn new_job(&self, job: DispatchJob) -> StoreResult<NewJob> {
        let sr_id = Uuid::parse_str(&job.sr_id)
            .map_err(|_| StoreError::InvalidJob(format!("sr_id {}", job.sr_id)))?;
        let precinct = job.precinct.trim().to_string();
        if precinct.is_empty() {
            return Err(StoreError::InvalidJob(format!(
                "{} has no precinct",
                job.sr_number
            )));
        }
        let priority = match Priority::try_from(job.priority).unwrap_or(Priority::Normal) {
            Priority::Unspecified => Priority::Normal,
            priority => priority,
        };
        let queued_at = Utc::now();
        let created_at = job
            .created_at
            .as_ref()
            .and_then(from_timestamp)
            .unwrap_or(queued_at);

        // intake is told the request is queued even on a repeat, in case that
        // message was lost with Redis; its timeline keeps one entry per transition
        let update = StatusUpdate {
            sr_id: job.sr_id.clone(),
            status: ServiceRequestStatus::Queued as i32,
            occurred_at: Some(to_timestamp(queued_at)),
            source: "dispatch".into(),
            message: format!("waiting in the dispatch queue of precinct {precinct}"),
            transition_key: "dispatch:queued".into(),
            // the QUEUED event is the job's first
            dispatch_sequence: 1,
            ..Default::default()
        };
        let told = outbox::prepare(queues::STATUS, kinds::STATUS_UPDATE, &update.sr_id, &update)?;

        // the SLA clock starts with the job: a timer, written with it, checks
        // for a breach when it is due (only a NEW job gets one; a reopened job
        // keeps its first due time and is not armed again)
        let job_id = Uuid::now_v7();
        let routed_due_at = job.sla_due_at.as_ref().and_then(from_timestamp);
        let sla_due_at = match self.sla_override {
            Some(after) => chrono::Duration::from_std(after)
                .ok()
                .and_then(|after| queued_at.checked_add_signed(after))
                .or(routed_due_at),
            None => routed_due_at,
        };
        let sla_timer = sla_due_at
            .map(|due| crate::outputs::prepare_sla_timer(&job.sr_id, job_id, due))
            .transpose()?;
        Ok(NewJob {
            sr_id,
            job_id,
            priority,
            created_at,
            routed_at: job.routed_at.as_ref().and_then(from_timestamp),
            queued_at,
            sla_due_at,
            // routing's rule decides; a job routed before it said so is police work
            police_matter: job.police_matter.unwrap_or(true),
            photo_ids: job
                .photo_ids
                .iter()
                .filter_map(|id| Uuid::parse_str(id).ok())
                .collect(),
            reason: format!("queued for precinct {precinct}"),
            origin_traceparent: propagation::current_traceparent(),
            request_epoch: 0,
            trace_id: propagation::trace_id_of(&tracing::Span::current()).unwrap_or_default(),
            precinct,
            told,
            sla_timer,
            job,
        })
    }

    /// Puts routed requests in their precincts' queues, each with its first
    /// event, its SLA timer and the status update for intake, in one
    /// statement (one transaction). A request that already has a job is not
    /// queued twice; intake is told again, in case that message was lost.
    /// Each request may appear once (the caller splits a batch into rounds).
    /// Returns, per job, what was done, or `None` when another delivery of
    /// the same request is queueing it right now (try again).
    pub async fn enqueue(&self, jobs: &[&NewJob]) -> StoreResult<Vec<Option<Enqueued>>> {
        insert_jobs(&self.pool, jobs).await
    }

    pub async fn get(&self, key: &JobKey) -> StoreResult<Option<Job>> {
        let row = match key {
            JobKey::Id(id) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = $1"
                )))
                .bind(id)
                .fetch_optional(&self.pool)
                .instrument(dispatch311_db::statement_span("SELECT", "jobs"))
                .await?
            }
            JobKey::SrNumber(number) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {JOB_COLUMNS} FROM jobs WHERE sr_number = $1 \
                     OR job_id = (SELECT job_id FROM job_reports WHERE sr_number = $1 AND unlinked_at IS NULL)"
                )))
                .bind(number)
                .fetch_optional(&self.pool)
                .instrument(dispatch311_db::statement_span("SELECT", "jobs"))
                .await?
            }
        };
        let Some(row) = row else { return Ok(None) };
        let mut job = job_from_row(&row);
        job.flags = crate::store::flags::of_job(&self.pool, row.get("job_id")).await?;
        Ok(Some(job))
    }

    /// A page of a precinct's queue after `after` (the queue position of the
    /// last job of the previous page), and how many jobs are queued in all.
    pub async fn queue(
        &self,
        precinct: &str,
        after: Option<QueuePosition>,
        limit: usize,
    ) -> StoreResult<(Vec<Job>, i64)> {
        let (rank, queued_at, job_id) = match after {
            Some(p) => (Some(p.priority_rank), Some(p.queued_at), Some(p.job_id)),
            None => (None, None, None),
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE precinct = $1 AND state = 'QUEUED' \
               AND ($2::smallint IS NULL OR (-priority_rank, queued_at, job_id) > (-$2::smallint, $3, $4)) \
             ORDER BY priority_rank DESC, queued_at, job_id LIMIT $5"
        )))
        .bind(precinct)
        .bind(rank)
        .bind(queued_at)
        .bind(job_id)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .instrument(dispatch311_db::statement_span("SELECT", "jobs"))
        .await?;
        let total: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM jobs WHERE precinct = $1 AND state = 'QUEUED'",
        )
        .bind(precinct)
        .fetch_one(&self.pool)
        .instrument(dispatch311_db::statement_span("SELECT", "jobs"))
        .await?;
        Ok((rows.iter().map(job_from_row).collect(), total))
    }
}

/// Where a job sits in its precinct queue; the page token of `ListQueue`.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuePosition {
    pub priority_rank: i16,
    pub queued_at: DateTime<Utc>,
    pub job_id: Uuid,
}

impl QueuePosition {
    pub fn of(job: &Job) -> Option<Self> {
        Some(Self {
            priority_rank: Priority::try_from(job.priority).ok()? as i16,
            queued_at: job.queued_at.as_ref().and_then(from_timestamp)?,
            job_id: Uuid::parse_str(&job.job_id).ok()?,
        })
    }

    pub fn encode(&self) -> String {
        format!(
            "{}|{}|{}",
            self.priority_rank,
            self.queued_at.timestamp_micros(),
            self.job_id
        )
    }

    pub fn decode(s: &str) -> Option<Self> {
        let mut parts = s.split('|');
        let priority_rank = parts.next()?.parse().ok()?;
        let queued_at = DateTime::from_timestamp_micros(parts.next()?.parse().ok()?)?;
        let job_id = Uuid::parse_str(parts.next()?).ok()?;
        parts.next().is_none().then_some(Self {
            priority_rank,
            queued_at,
            job_id,
        })
    }
}

/// [`Store::enqueue`] on `executor` (the pool, or a transaction that holds
/// the incidents' locks: see `store::duplicates`).
pub(crate) async fn insert_jobs<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    jobs: &[&NewJob],
) -> StoreResult<Vec<Option<Enqueued>>> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let mut c = JobColumns::default();
    for (ord, job) in jobs.iter().enumerate() {
        c.push(ord as i32, job);
    }
    let rows = sqlx::query(
        "WITH input AS ( \
            SELECT * FROM unnest($1::int4[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], \
                $7::float8[], $8::float8[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], \
                $14::text[], $15::text[], $16::int2[], $17::timestamptz[], $18::timestamptz[], \
                $19::timestamptz[], $20::timestamptz[], $21::int4[], $22::bool[], $23::bool[], $24::text[], \
                $25::text[], $26::text[], $27::bytea[], $28::bytea[], $32::text[], $33::text[], $34::int4[]) \
            AS i(ord, job_id, sr_id, sr_number, complaint_type, descriptor, latitude, longitude, \
                street_address, cross_street, borough, postal_code, agency, precinct, priority, \
                priority_rank, sla_due_at, created_at, routed_at, queued_at, photo_count, \
                complainant_consented, police_matter, description, reason, told_queue, told, sla_timer, \
                origin_traceparent, trace_id, request_epoch)), \
         photos AS ( \
            SELECT p.ord, array_agg(p.photo_id ORDER BY p.n) AS photo_ids \
            FROM unnest($29::int4[], $30::uuid[]) WITH ORDINALITY AS p(ord, photo_id, n) GROUP BY p.ord), \
         queued AS ( \
            INSERT INTO jobs (job_id, sr_id, sr_number, complaint_type, descriptor, latitude, longitude, \
                street_address, cross_street, borough, postal_code, agency, precinct, priority, priority_rank, \
                state, sla_due_at, created_at, routed_at, queued_at, photo_count, complainant_consented, \
                police_matter, last_event_sequence, last_event_hash, description, photo_ids, \
                origin_traceparent, request_epoch) \
            SELECT i.job_id, i.sr_id, i.sr_number, i.complaint_type, i.descriptor, i.latitude, i.longitude, \
                i.street_address, i.cross_street, i.borough, i.postal_code, i.agency, i.precinct, i.priority, \
                i.priority_rank, 'QUEUED', i.sla_due_at, i.created_at, i.routed_at, i.queued_at, \
                i.photo_count, i.complainant_consented, i.police_matter, 1, \
                job_event_hash('', i.job_id, 1, 'QUEUED', i.queued_at, 'dispatch', 'SYSTEM', NULL, NULL, NULL, \
                    i.reason), \
                i.description, coalesce(p.photo_ids, '{}'), i.origin_traceparent, i.request_epoch \
            FROM input i LEFT JOIN photos p USING (ord) ORDER BY i.ord \
            ON CONFLICT (sr_id) DO NOTHING RETURNING job_id, last_event_hash), \
         event AS ( \
            INSERT INTO job_events (job_id, sequence, event_type, occurred_at, actor, actor_role, reason, \
                previous_hash, hash, trace_id) \
            SELECT q.job_id, 1, 'QUEUED', i.queued_at, 'dispatch', 'SYSTEM', i.reason, '', q.last_event_hash, \
                i.trace_id \
            FROM queued q JOIN input i USING (job_id) ORDER BY i.ord), \
         told AS ( \
            INSERT INTO outbox (queue, envelope) SELECT i.told_queue, i.told FROM input i ORDER BY i.ord), \
         sla_timer AS ( \
            INSERT INTO outbox (queue, envelope) SELECT $31, i.sla_timer \
            FROM queued q JOIN input i USING (job_id) WHERE i.sla_timer IS NOT NULL ORDER BY i.ord) \
         SELECT q.job_id AS new_job, j.job_id AS existing_job, \
            (q.job_id IS NOT NULL OR j.state = 'QUEUED') AND EXISTS ( \
                SELECT 1 FROM precinct_settings s WHERE s.precinct = i.precinct AND s.auto_assign) \
                AS offer_to_auto_assign \
         FROM input i LEFT JOIN queued q USING (job_id) LEFT JOIN jobs j ON j.sr_id = i.sr_id \
         ORDER BY i.ord",
    )
    // planned for each batch: a plan cached while the table was still
    // empty joins it by a sequential scan until autovacuum first analyzes it
    .persistent(false)
    .bind(&c.ord)
    .bind(&c.job_id)
    .bind(&c.sr_id)
    .bind(&c.sr_number)
    .bind(&c.complaint_type)
    .bind(&c.descriptor)
    .bind(&c.latitude)
    .bind(&c.longitude)
    .bind(&c.address.street_address)
    .bind(&c.address.cross_street)
    .bind(&c.address.borough)
    .bind(&c.address.postal_code)
    .bind(&c.agency)
    .bind(&c.precinct)
    .bind(&c.priority)
    .bind(&c.priority_rank)
    .bind(&c.sla_due_at)
    .bind(&c.created_at)
    .bind(&c.routed_at)
    .bind(&c.queued_at)
    .bind(&c.photo_count)
    .bind(&c.complainant_consented)
    .bind(&c.police_matter)
    .bind(&c.description)
    .bind(&c.reason)
    .bind(&c.told_queue)
    .bind(&c.told)
    .bind(&c.sla_timer)
    .bind(&c.photo_ord)
    .bind(&c.photo_id)
    .bind(queues::DISPATCH_TIMERS)
    .bind(&c.origin_traceparent)
    .bind(&c.trace_id)
    .bind(&c.request_epoch)
    .fetch_all(executor)
    .instrument(dispatch311_db::statement_span("INSERT", "jobs"))
    .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let (new_job, existing_job): (Option<Uuid>, Option<Uuid>) =
                (row.get("new_job"), row.get("existing_job"));
            let offer_to_auto_assign: Option<bool> = row.get("offer_to_auto_assign");
            let offer_to_auto_assign = offer_to_auto_assign.unwrap_or(false);
            match (new_job, existing_job) {
                (Some(job_id), _) => Some(Enqueued::New {
                    job_id,
                    offer_to_auto_assign,
                }),
                (None, Some(job_id)) => Some(Enqueued::AlreadyQueued {
                    job_id,
                    offer_to_auto_assign,
                }),
                // a concurrent insert of the same request has not committed yet
                (None, None) => None,
            }
        })
        .collect())
}

pub(crate) fn job_from_row(row: &PgRow) -> Job {
    let job_id: Uuid = row.get("job_id");
    let sr_id: Uuid = row.get("sr_id");
    let latitude: Option<f64> = row.get("latitude");
    let longitude: Option<f64> = row.get("longitude");
    let sla_due_at: Option<DateTime<Utc>> = row.get("sla_due_at");
    let state: String = row.get("state");
    let unit_id: Option<Uuid> = row.get("unit_id");
    let assigned_at: Option<DateTime<Utc>> = row.get("assigned_at");
    let closed_at: Option<DateTime<Utc>> = row.get("closed_at");
    Job {
        job_id: job_id.to_string(),
        sr_id: sr_id.to_string(),
        sr_number: row.get("sr_number"),
        complaint_type: row.get("complaint_type"),
        descriptor: row.get("descriptor"),
        location: latitude
            .zip(longitude)
            .map(|(latitude, longitude)| GeoPoint {
                latitude,
                longitude,
            }),
        address: Some(Address {
            street_address: row.get("street_address"),
            cross_street: row.get("cross_street"),
            borough: row.get("borough"),
            postal_code: row.get("postal_code"),
        }),
        agency: row.get("agency"),
        precinct: row.get("precinct"),
        priority: priority_from_name(row.get("priority")).unwrap_or_default() as i32,
        state: JobState::from_str_name(&format!("JOB_STATE_{state}")).unwrap_or_default() as i32,
        sla_due_at: sla_due_at.map(to_timestamp),
        created_at: Some(to_timestamp(row.get("created_at"))),
        queued_at: Some(to_timestamp(row.get("queued_at"))),
        photo_count: row.get::<i32, _>("photo_count") as u32,
        unit_id: unit_id.map(|u| u.to_string()).unwrap_or_default(),
        unit_call_sign: row
            .try_get::<Option<String>, _>("unit_call_sign")
            .ok()
            .flatten()
            .unwrap_or_default(),
        assigned_at: assigned_at.map(to_timestamp),
        closed_at: closed_at.map(to_timestamp),
        resolution_code: resolution_from_name(row.get("resolution_code")).unwrap_or_default()
            as i32,
        resolution_notes: row.get("resolution_notes"),
        summons_number: row.get("summons_number"),
        sla_remaining_seconds: sla_due_at.map_or(0, |due| (due - Utc::now()).num_seconds()),
        sla_breached: row.get("sla_breached"),
        // filled by callers that show flags (one more query)
        flags: Vec::new(),
        reopen_count: row.get::<i32, _>("reopen_count") as u32,
        description: row.get("description"),
        report_count: row.get::<i32, _>("report_count").max(1) as u32,
        // read where the view lists them (JOB_COLUMNS), not after a write
        linked_sr_numbers: row.try_get("linked_sr_numbers").unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_positions_round_trip_and_reject_garbage() {
        let position = QueuePosition {
            priority_rank: 3,
            queued_at: Utc::now(),
            job_id: Uuid::now_v7(),
        };
        let decoded = QueuePosition::decode(&position.encode()).unwrap();
        assert_eq!(decoded.job_id, position.job_id);
        assert_eq!(
            decoded.queued_at.timestamp_micros(),
            position.queued_at.timestamp_micros()
        );
        assert_eq!(QueuePosition::decode("3|x|y"), None);
        assert_eq!(
            QueuePosition::decode(&format!("{}|extra", position.encode())),
            None
        );
    }
}

/// A timer an open job should have: (job, request, check, assignment, due).
pub type DueTimer = (Uuid, Uuid, String, i64, DateTime<Utc>);

impl Store {
    /// Every timer the open jobs should have: an SLA check for each open job
    /// not yet breached and never reopened (a reopened job keeps its first
    /// due time and is not armed again), and an acknowledgement check for each
    /// assigned job, due `ack_timeout` after it was assigned.
    pub async fn timers_due(&self, ack_timeout: Duration) -> StoreResult<Vec<DueTimer>> {
        Ok(sqlx::query_as(
            "SELECT job_id, sr_id, 'sla_breach', 0::bigint, sla_due_at FROM jobs \
                 WHERE state IN ('QUEUED', 'ASSIGNED', 'ACKNOWLEDGED', 'EN_ROUTE', 'ON_SCENE') \
                   AND sla_due_at IS NOT NULL AND NOT sla_breached AND reopen_count = 0 \
                 UNION ALL \
                 SELECT job_id, sr_id, 'ack_timeout', assignment_number, \
                     assigned_at + make_interval(secs => $1) FROM jobs \
                 WHERE state = 'ASSIGNED' AND assigned_at IS NOT NULL",
        )
        .bind(ack_timeout.as_secs_f64())
        .fetch_all(&self.pool)
        .instrument(dispatch311_db::statement_span("SELECT", "jobs"))
        .await?)
    }
}

/// The requests of the reports linked to job `job_id`, first linked first.
pub async fn linked_requests(
    conn: &mut sqlx::PgConnection,
    job_id: Uuid,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT sr_id FROM job_reports WHERE job_id = $1 AND unlinked_at IS NULL ORDER BY linked_at, sr_number",
    )
    .bind(job_id)
    .fetch_all(conn)
    .instrument(dispatch311_db::statement_span("SELECT", "job_reports"))
    .await
}

/// A job whose unit was taken from it is queued again, in the caller's
/// transaction (it holds the job's lock); it keeps its place (`queued_at`).
pub async fn set_requeued(
    conn: &mut sqlx::PgConnection,
    job_id: Uuid,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE jobs SET state = 'QUEUED', unit_id = NULL, assigned_at = NULL, acknowledged_at = NULL, \
            en_route_at = NULL, on_scene_at = NULL, on_scene_latitude = NULL, on_scene_longitude = NULL, \
            updated_at = $2 \
         WHERE job_id = $1",
    )
    .bind(job_id)
    .bind(at)
    .execute(conn)
    .instrument(dispatch311_db::statement_span("UPDATE", "jobs"))
    .await?;
    Ok(())
}

/// An open job past its SLA is marked breached, in the caller's transaction.
pub async fn set_sla_breached(
    conn: &mut sqlx::PgConnection,
    job_id: Uuid,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE jobs SET sla_breached = true, updated_at = $2 WHERE job_id = $1")
        .bind(job_id)
        .bind(at)
        .execute(conn)
        .instrument(dispatch311_db::statement_span("UPDATE", "jobs"))
        .await?;
    Ok(())
}

/// A job as the lifecycle rules need it, read under its row lock.
#[derive(Debug, Clone)]
pub struct JobRow {
    pub job_id: Uuid,
    pub sr_id: Uuid,
    pub sr_number: String,
    pub complaint_type: String,
    pub descriptor: String,
    pub borough: String,
    pub agency: String,
    pub precinct: String,
    pub location: Option<(f64, f64)>,
    pub priority: Priority,
    pub state: JobState,
    pub unit_id: Option<Uuid>,
    pub assignment_number: i64,
    pub created_at: DateTime<Utc>,
    pub queued_at: DateTime<Utc>,
    pub assigned_at: Option<DateTime<Utc>>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub en_route_at: Option<DateTime<Utc>>,
    pub on_scene_at: Option<DateTime<Utc>>,
    pub on_scene_position: Option<(f64, f64)>,
    pub closed_at: Option<DateTime<Utc>>,
    pub sla_due_at: Option<DateTime<Utc>>,
    pub sla_breached: bool,
    pub police_matter: bool,
    pub photo_count: i32,
    pub reopen_count: i32,
    pub closure_count: i32,
    pub complainant_consented: bool,
    pub closed_by: Option<String>,
    /// The stored name of the resolution code, empty while open.
    pub resolution_code: String,
    pub resolution_notes: String,
    pub summons_number: String,
    pub rerouted_to: String,
    /// The job's last event: every change appends one, so this is the
    /// version a change checks it is still writing over.
    pub last_event_sequence: i64,
    pub last_event_hash: String,
    /// The W3C traceparent of the delivery that queued the job, which later
    /// work on it links to (empty for jobs queued before it was kept).
    pub origin_traceparent: String,
    /// 1 plus the reports linked to the job.
    pub report_count: i32,
    /// How many times the job's own request moved between jobs (unlinked
    /// from another job's incident): its updates to intake carry it.
    pub request_epoch: i32,
    /// The reports linked to the job, first linked first: what it tells
    /// intake and the survey it tells each of them. Read for a change only
    /// (empty elsewhere).
    pub reports: Vec<LinkedReport>,
}

/// Another report of a job's incident, linked to the job.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct LinkedReport {
    pub sr_id: Uuid,
    pub sr_number: String,
    pub complainant_consented: bool,
    pub origin_traceparent: String,
}

#[cfg(test)]
impl JobRow {
    /// A high-priority illegal-parking job queued in precinct 14, for unit
    /// tests to change what they are about.
    pub fn sample() -> Self {
        let now = Utc::now();
        Self {
            job_id: Uuid::now_v7(),
            sr_id: Uuid::now_v7(),
            sr_number: "SR-2026-0000001".into(),
            complaint_type: "Illegal Parking".into(),
            descriptor: "Blocked Hydrant".into(),
            borough: "MANHATTAN".into(),
            agency: "NYPD".into(),
            precinct: "14".into(),
            location: Some((40.7484, -73.9857)),
            priority: Priority::High,
            state: JobState::Queued,
            unit_id: None,
            assignment_number: 0,
            created_at: now,
            queued_at: now,
            assigned_at: None,
            acknowledged_at: None,
            en_route_at: None,
            on_scene_at: None,
            on_scene_position: None,
            closed_at: None,
            sla_due_at: None,
            sla_breached: false,
            police_matter: true,
            photo_count: 0,
            reopen_count: 0,
            closure_count: 0,
            complainant_consented: false,
            closed_by: None,
            resolution_code: String::new(),
            resolution_notes: String::new(),
            summons_number: String::new(),
            rerouted_to: String::new(),
            last_event_sequence: 1,
            last_event_hash: String::new(),
            origin_traceparent: String::new(),
            report_count: 1,
            request_epoch: 0,
            reports: Vec::new(),
        }
    }
}

pub fn state_name(state: JobState) -> &'static str {
    state.as_str_name().trim_start_matches("JOB_STATE_")
}

/// Locks the job's row for the rest of the transaction and reads it; `None`
/// when there is no such job. Every change to a job goes through this, so
/// the changes (and the events they append) of one job happen one at a time.
/// Lock order: the job first, then its unit.
pub async fn lock_job(
    conn: &mut sqlx::PgConnection,
    job_id: Uuid,
) -> Result<Option<JobRow>, sqlx::Error> {
    let row = sqlx::query("SELECT * FROM jobs WHERE job_id = $1 FOR UPDATE")
        .bind(job_id)
        .fetch_optional(conn)
        .instrument(dispatch311_db::statement_span("SELECT", "jobs"))
        .await?;
    Ok(row.as_ref().map(job_row))
}

pub fn job_row(row: &PgRow) -> JobRow {
    let latitude: Option<f64> = row.get("latitude");
    let longitude: Option<f64> = row.get("longitude");
    let on_scene_latitude: Option<f64> = row.get("on_scene_latitude");
    let on_scene_longitude: Option<f64> = row.get("on_scene_longitude");
    let state: String = row.get("state");
    JobRow {
        job_id: row.get("job_id"),
        sr_id: row.get("sr_id"),
        sr_number: row.get("sr_number"),
        complaint_type: row.get("complaint_type"),
        descriptor: row.get("descriptor"),
        borough: row.get("borough"),
        agency: row.get("agency"),
        precinct: row.get("precinct"),
        location: latitude.zip(longitude),
        priority: priority_from_name(row.get("priority")).unwrap_or(Priority::Normal),
        state: JobState::from_str_name(&format!("JOB_STATE_{state}")).unwrap_or_default(),
        unit_id: row.get("unit_id"),
        assignment_number: row.get("assignment_number"),
        created_at: row.get("created_at"),
        queued_at: row.get("queued_at"),
        assigned_at: row.get("assigned_at"),
        acknowledged_at: row.get("acknowledged_at"),
        en_route_at: row.get("en_route_at"),
        on_scene_at: row.get("on_scene_at"),
        on_scene_position: on_scene_latitude.zip(on_scene_longitude),
        closed_at: row.get("closed_at"),
        sla_due_at: row.get("sla_due_at"),
        sla_breached: row.get("sla_breached"),
        police_matter: row.get("police_matter"),
        photo_count: row.get("photo_count"),
        reopen_count: row.get("reopen_count"),
        closure_count: row.get("closure_count"),
        complainant_consented: row.get("complainant_consented"),
        closed_by: row.get("closed_by"),
        resolution_code: row.get("resolution_code"),
        resolution_notes: row.get("resolution_notes"),
        summons_number: row.get("summons_number"),
        rerouted_to: row.get("rerouted_to"),
        last_event_sequence: row.get("last_event_sequence"),
        last_event_hash: row.get("last_event_hash"),
        origin_traceparent: row.get("origin_traceparent"),
        report_count: row.get("report_count"),
        request_epoch: row.get("request_epoch"),
        reports: Vec::new(),
    }
}
