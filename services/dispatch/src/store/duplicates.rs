//! The statements of linking reports of one incident to one job (the
//! decision is `jobs::duplicates`'s).
//!
//! New jobs whose routing rule links reports are written in a transaction
//! that first takes a PostgreSQL advisory lock per incident key (precinct and
//! complaint type), held until it commits: two dispatch replicas receiving
//! reports of one incident at once take turns, and the second finds the
//! first's job open. Inside the lock the transaction reads which requests are
//! known already and the open jobs the reports may belong to, then inserts
//! the unmatched reports as jobs (the usual statement) and links the matched
//! ones, and commits.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::{Postgres, Row, Transaction};
use tracing::Instrument;
use uuid::Uuid;

use super::{Enqueued, JobRow, NewJob, Store, StoreResult, job_row};
use crate::{
    jobs::change::JobChange,
    store::events::{event_type_name, role_name},
};
use dispatch311_domain::status::priority_name;

/// The advisory lock of an incident key: a stable 64-bit number of the
/// precinct and complaint type (the same in every replica and release).
pub fn incident_lock(precinct: &str, complaint_type: &str) -> i64 {
    let digest = Sha256::new()
        .chain_update(b"dispatch311 incident\0")
        .chain_update(precinct.as_bytes())
        .chain_update(b"\0")
        .chain_update(complaint_type.to_lowercase().as_bytes())
        .finalize();
    i64::from_be_bytes(
        digest[..8]
            .try_into()
            .expect("a SHA-256 digest has 8 bytes"),
    )
}

/// A request dispatch already has: its job, or the job it is a report of.
#[derive(Debug, Clone)]
pub struct Known {
    pub job_id: Uuid,
    /// `Some` for a linked report: what its link said.
    pub report: Option<KnownReport>,
}

#[derive(Debug, Clone)]
pub struct KnownReport {
    pub job: JobRow,
    pub link_sequence: i64,
    pub match_metres: f64,
}

/// An open job a report may belong to, with the address of its first report.
#[derive(Debug, Clone)]
pub struct OpenJob {
    pub job: JobRow,
    pub street_address: String,
}

/// A report to link: the job's change (its DUPLICATE_LINKED event, count,
/// priority and the report's status update) and the report.
pub struct ReportLink<'a> {
    pub change: JobChange,
    pub report: &'a NewJob,
    pub match_metres: f64,
}

/// The transaction that holds the incidents' locks.
pub struct IncidentLocks {
    tx: Transaction<'static, Postgres>,
}

impl Store {
    /// Begins a transaction holding the locks of `incidents` (precinct,
    /// complaint type), waiting for another holder to commit.
    pub async fn lock_incidents(&self, incidents: &[(&str, &str)]) -> StoreResult<IncidentLocks> {
        let mut keys: Vec<i64> = incidents
            .iter()
            .map(|(precinct, complaint_type)| incident_lock(precinct, complaint_type))
            .collect();
        // one order for every holder: no two transactions wait on each other
        keys.sort_unstable();
        keys.dedup();
        let mut tx = self.pool().begin().await?;
        sqlx::query("SELECT count(pg_advisory_xact_lock(k)) FROM unnest($1::int8[]) WITH ORDINALITY AS l(k, n)")
            .bind(&keys)
            .fetch_one(&mut *tx)
            .instrument(dispatch311_db::statement_span("SELECT", "pg_advisory_xact_lock"))
            .await?;
        Ok(IncidentLocks { tx })
    }
}

impl IncidentLocks {
    /// Which of `sr_ids` dispatch has already, as a job or a linked report.
    pub async fn known(&mut self, sr_ids: &[Uuid]) -> StoreResult<HashMap<Uuid, Known>> {
        let rows = sqlx::query(
            "SELECT j.sr_id AS request, NULL::bigint AS link_sequence, NULL::float8 AS match_metres, j.* \
                FROM jobs j WHERE j.sr_id = ANY($1) \
             UNION ALL \
             SELECT r.sr_id, r.link_sequence, r.match_metres, j.* \
                FROM job_reports r JOIN jobs j USING (job_id) WHERE r.sr_id = ANY($1) AND r.unlinked_at IS NULL",
        )
        .bind(sr_ids)
        .fetch_all(&mut *self.tx)
        .instrument(dispatch311_db::statement_span("SELECT", "job_reports"))
        .await?;
        Ok(rows
            .iter()
            .map(|row| {
                let job = job_row(row);
                let link_sequence: Option<i64> = row.get("link_sequence");
                let known = Known {
                    job_id: job.job_id,
                    report: link_sequence.map(|link_sequence| KnownReport {
                        link_sequence,
                        match_metres: row.get::<Option<f64>, _>("match_metres").unwrap_or(0.0),
                        job,
                    }),
                };
                (row.get("request"), known)
            })
            .collect())
    }

    /// The open jobs (queued up to on scene) of `incidents` (precinct,
    /// complaint type) first reported since `since`.
    pub async fn open_jobs(
        &mut self,
        incidents: &[(&str, &str)],
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<OpenJob>> {
        let (precincts, types): (Vec<&str>, Vec<&str>) = incidents.iter().copied().unzip();
        let rows = sqlx::query(
            "SELECT j.* FROM jobs j \
             JOIN (SELECT DISTINCT * FROM unnest($1::text[], $2::text[])) AS i(precinct, complaint_type) \
                ON j.precinct = i.precinct AND j.complaint_type = i.complaint_type \
             WHERE j.state IN ('QUEUED', 'ASSIGNED', 'ACKNOWLEDGED', 'EN_ROUTE', 'ON_SCENE') \
               AND j.created_at >= $3",
        )
        .bind(&precincts)
        .bind(&types)
        .bind(since)
        .fetch_all(&mut *self.tx)
        .instrument(dispatch311_db::statement_span("SELECT", "jobs"))
        .await?;
        Ok(rows
            .iter()
            .map(|row| OpenJob {
                job: job_row(row),
                street_address: row.get("street_address"),
            })
            .collect())
    }

    /// Queues `jobs` as [`Store::enqueue`] does, under the locks.
    pub async fn insert_jobs(&mut self, jobs: &[&NewJob]) -> StoreResult<Vec<Option<Enqueued>>> {
        super::insert_jobs(&mut *self.tx, jobs).await
    }

    /// Links each report to its job: the report's row, the job's count,
    /// priority and last event, the DUPLICATE_LINKED event and the outbox
    /// rows, in one statement. Per link, whether it was written: not when
    /// the job changed since it was read (a unit took it meanwhile; decide
    /// again).
    pub async fn link(&mut self, links: &[ReportLink<'_>]) -> StoreResult<Vec<bool>> {
        if links.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = LinkColumns::default();
        for (ord, link) in links.iter().enumerate() {
            c.push(ord as i32, link);
        }
        let linked: Vec<i32> = sqlx::query_scalar(
            "WITH input AS ( \
                SELECT * FROM unnest($1::int4[], $2::uuid[], $3::int8[], $4::int8[], $5::text[], $6::text[], \
                    $7::int2[], $8::int4[], $9::uuid[], $10::text[], $11::timestamptz[], $12::timestamptz[], \
                    $13::text[], $14::bool[], $15::int4[], $16::text[], $17::float8[], $18::text[], $19::text[], \
                    $20::text[], $22::text[], $26::bytea[]) \
                AS i(ord, job_id, seen_sequence, sequence, hash, priority, priority_rank, report_count, sr_id, \
                    sr_number, linked_at, created_at, descriptor, consented, photo_count, traceparent, metres, \
                    reason, previous_hash, actor_role, trace_id, dispatch_job)), \
             updated AS ( \
                UPDATE jobs j SET report_count = i.report_count, priority = i.priority, \
                    priority_rank = i.priority_rank, last_event_sequence = i.sequence, last_event_hash = i.hash, \
                    updated_at = i.linked_at \
                FROM input i WHERE j.job_id = i.job_id AND j.last_event_sequence = i.seen_sequence \
                RETURNING j.job_id), \
             linked AS (SELECT i.* FROM input i JOIN updated u USING (job_id)), \
             reports AS ( \
                INSERT INTO job_reports (sr_id, sr_number, job_id, linked_at, created_at, descriptor, \
                    complainant_consented, photo_count, origin_traceparent, match_metres, link_sequence, \
                    dispatch_job) \
                SELECT sr_id, sr_number, job_id, linked_at, created_at, descriptor, consented, photo_count, \
                    traceparent, metres, sequence, dispatch_job FROM linked ORDER BY ord), \
             events AS ( \
                INSERT INTO job_events (job_id, sequence, event_type, occurred_at, actor, actor_role, reason, \
                    previous_hash, hash, trace_id) \
                SELECT job_id, sequence, $21, linked_at, 'dispatch', actor_role, reason, previous_hash, hash, trace_id \
                FROM linked ORDER BY ord), \
             told AS ( \
                INSERT INTO outbox (queue, envelope) \
                SELECT o.queue, o.envelope FROM unnest($23::int4[], $24::text[], $25::bytea[]) AS o(ord, queue, envelope) \
                JOIN linked USING (ord) ORDER BY o.ord) \
             SELECT ord FROM linked",
        )
        .bind(&c.ord)
        .bind(&c.job_id)
        .bind(&c.seen_sequence)
        .bind(&c.sequence)
        .bind(&c.hash)
        .bind(&c.priority)
        .bind(&c.priority_rank)
        .bind(&c.report_count)
        .bind(&c.sr_id)
        .bind(&c.sr_number)
        .bind(&c.linked_at)
        .bind(&c.created_at)
        .bind(&c.descriptor)
        .bind(&c.consented)
        .bind(&c.photo_count)
        .bind(&c.traceparent)
        .bind(&c.metres)
        .bind(&c.reason)
        .bind(&c.previous_hash)
        .bind(&c.actor_role)
        .bind(event_type_name(
            dispatch311_proto::dispatch::v1::EventType::DuplicateLinked,
        ))
        .bind(&c.trace_id)
        .bind(&c.outbox_ord)
        .bind(&c.outbox_queue)
        .bind(&c.outbox_envelope)
        .bind(&c.dispatch_job)
        .fetch_all(&mut *self.tx)
        .instrument(dispatch311_db::statement_span("INSERT", "job_reports"))
        .await?;
        Ok((0..links.len() as i32)
            .map(|ord| linked.contains(&ord))
            .collect())
    }

    /// Writes outbox rows (a linked report's complainant told again).
    pub async fn tell(&mut self, rows: &[dispatch311_queue::outbox::OutboxRow]) -> StoreResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let (queues, envelopes) = dispatch311_queue::outbox::columns(rows);
        sqlx::query(
            "INSERT INTO outbox (queue, envelope) SELECT * FROM unnest($1::text[], $2::bytea[])",
        )
        .bind(queues)
        .bind(envelopes)
        .execute(&mut *self.tx)
        .instrument(dispatch311_db::statement_span("INSERT", "outbox"))
        .await?;
        Ok(())
    }

    pub async fn commit(self) -> StoreResult<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

/// Links as the parallel arrays [`IncidentLocks::link`] unnests.
#[derive(Default)]
struct LinkColumns<'a> {
    ord: Vec<i32>,
    job_id: Vec<Uuid>,
    seen_sequence: Vec<i64>,
    sequence: Vec<i64>,
    hash: Vec<&'a str>,
    previous_hash: Vec<&'a str>,
    priority: Vec<&'static str>,
    priority_rank: Vec<i16>,
    report_count: Vec<i32>,
    sr_id: Vec<Uuid>,
    sr_number: Vec<&'a str>,
    linked_at: Vec<DateTime<Utc>>,
    created_at: Vec<DateTime<Utc>>,
    descriptor: Vec<&'a str>,
    consented: Vec<bool>,
    photo_count: Vec<i32>,
    traceparent: Vec<&'a str>,
    metres: Vec<f64>,
    reason: Vec<&'a str>,
    actor_role: Vec<&'static str>,
    trace_id: Vec<&'a str>,
    outbox_ord: Vec<i32>,
    outbox_queue: Vec<&'a str>,
    outbox_envelope: Vec<&'a [u8]>,
    /// The routed job as it arrived: queued from it if it is ever unlinked.
    dispatch_job: Vec<Vec<u8>>,
}

impl<'a> LinkColumns<'a> {
    fn push(&mut self, ord: i32, link: &'a ReportLink<'_>) {
        let change = &link.change;
        let event = change
            .events
            .last()
            .expect("a link appends its DUPLICATE_LINKED event");
        let report = link.report;
        self.ord.push(ord);
        self.job_id.push(change.before.job_id);
        self.seen_sequence.push(change.before.last_event_sequence);
        self.sequence.push(event.sequence);
        self.hash.push(&event.hash);
        self.previous_hash.push(&event.previous_hash);
        self.priority.push(priority_name(change.after.priority));
        self.priority_rank.push(change.after.priority as i16);
        self.report_count.push(change.after.report_count);
        self.sr_id.push(report.sr_id);
        self.sr_number.push(&report.job.sr_number);
        self.linked_at.push(change.now);
        self.created_at.push(report.created_at);
        self.descriptor.push(&report.job.descriptor);
        self.consented.push(report.job.complainant_consented);
        self.photo_count.push(report.job.photo_count as i32);
        self.traceparent.push(&report.origin_traceparent);
        self.metres.push(link.match_metres);
        self.reason.push(&event.event.reason);
        self.actor_role.push(role_name(event.event.actor.role));
        // the event is the linking delivery's: its trace is where the story is
        self.trace_id.push(&report.trace_id);
        self.dispatch_job
            .push(prost::Message::encode_to_vec(&report.job));
        for row in &change.outbox {
            self.outbox_ord.push(ord);
            self.outbox_queue.push(&row.queue);
            self.outbox_envelope.push(&row.envelope);
        }
    }
}

/// A linked report about to be unlinked: its row and its job's, locked in
/// the transaction that will write the unlinking.
pub struct Unlinking {
    tx: Transaction<'static, Postgres>,
    pub job: JobRow,
    pub report: ReportToUnlink,
}

/// What is kept of a linked report.
#[derive(Debug, Clone)]
pub struct ReportToUnlink {
    pub sr_id: Uuid,
    pub sr_number: String,
    /// The routed job it arrived with; `None` for reports linked before it
    /// was kept.
    pub dispatch_job: Option<Vec<u8>>,
    pub unlinked: bool,
}

impl Store {
    /// Locks the report `sr_number` and the job it is linked to (job first,
    /// as every writer does). `None` when no report has that number.
    pub async fn begin_unlink(&self, sr_number: &str) -> StoreResult<Option<Unlinking>> {
        let mut tx = self.pool().begin().await?;
        let Some(job_id): Option<Uuid> =
            sqlx::query_scalar("SELECT job_id FROM job_reports WHERE sr_number = $1")
                .bind(sr_number)
                .fetch_optional(&mut *tx)
                .instrument(dispatch311_db::statement_span("SELECT", "job_reports"))
                .await?
        else {
            return Ok(None);
        };
        let job = sqlx::query("SELECT * FROM jobs WHERE job_id = $1 FOR UPDATE")
            .bind(job_id)
            .fetch_one(&mut *tx)
            .instrument(dispatch311_db::statement_span("SELECT", "jobs"))
            .await?;
        let job = job_row(&job);
        let row = sqlx::query(
            "SELECT sr_id, sr_number, dispatch_job, unlinked_at IS NOT NULL AS unlinked \
             FROM job_reports WHERE sr_number = $1 FOR UPDATE",
        )
        .bind(sr_number)
        .fetch_one(&mut *tx)
        .instrument(dispatch311_db::statement_span("SELECT", "job_reports"))
        .await?;
        let report = ReportToUnlink {
            sr_id: row.get("sr_id"),
            sr_number: row.get("sr_number"),
            dispatch_job: row.get("dispatch_job"),
            unlinked: row.get("unlinked"),
        };
        Ok(Some(Unlinking { tx, job, report }))
    }
}

impl Unlinking {
    /// Writes the unlinking and commits: the job's change (its
    /// DUPLICATE_UNLINKED event and count), the report marked, and the
    /// report's own job queued. The job's row is locked, so its version is
    /// the one read.
    pub async fn write(
        mut self,
        change: &JobChange,
        own_job: &NewJob,
        by: &str,
        reason: &str,
    ) -> StoreResult<Option<Enqueued>> {
        let event = change
            .events
            .last()
            .expect("an unlinking appends its event");
        sqlx::query(
            "UPDATE jobs SET report_count = $2, last_event_sequence = $3, last_event_hash = $4, \
                updated_at = $5 WHERE job_id = $1",
        )
        .bind(change.before.job_id)
        .bind(change.after.report_count)
        .bind(event.sequence)
        .bind(&event.hash)
        .bind(change.now)
        .execute(&mut *self.tx)
        .instrument(dispatch311_db::statement_span("UPDATE", "jobs"))
        .await?;
        sqlx::query(
            "INSERT INTO job_events (job_id, sequence, event_type, occurred_at, actor, actor_role, reason, \
                previous_hash, hash, trace_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(change.before.job_id)
        .bind(event.sequence)
        .bind(event_type_name(event.event.event_type))
        .bind(event.event.occurred_at)
        .bind(&event.event.actor.id)
        .bind(role_name(event.event.actor.role))
        .bind(&event.event.reason)
        .bind(&event.previous_hash)
        .bind(&event.hash)
        .bind(dispatch311_telemetry::propagation::trace_id_of(&tracing::Span::current()).unwrap_or_default())
        .execute(&mut *self.tx)
        .instrument(dispatch311_db::statement_span("INSERT", "job_events"))
        .await?;
        let queued = super::insert_jobs(&mut *self.tx, &[own_job]).await?;
        let own_job_id = match queued.first() {
            Some(Some(Enqueued::New { job_id, .. })) => *job_id,
            // the request has a job already: nothing to unlink into
            _ => return Ok(None),
        };
        sqlx::query(
            "UPDATE job_reports SET unlinked_at = $2, unlinked_by = $3, unlinked_reason = $4, \
                unlinked_to_job = $5 WHERE sr_id = $1",
        )
        .bind(self.report.sr_id)
        .bind(change.now)
        .bind(by)
        .bind(reason)
        .bind(own_job_id)
        .execute(&mut *self.tx)
        .instrument(dispatch311_db::statement_span("UPDATE", "job_reports"))
        .await?;
        self.tx.commit().await?;
        Ok(queued.into_iter().next().flatten())
    }
}
