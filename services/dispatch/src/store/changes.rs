//! Reading a job for a change, and writing a decided change in one statement.
//!
//! A transition costs two round trips and no explicit transaction:
//! [`Store::read_for_change`] reads the job, the units it touches, its flags
//! and what the closing rules need; [`Store::write_change`] writes the job,
//! its units and feed entries, the hash-chained events, the flags, the outbox
//! jobs and a complainant message as one statement — atomic on its own — and
//! answers with the job as written. The statement writes only if the job's
//! last event is still the one read (every change to a job appends an event,
//! so that is the job's version) and each unit's status and job are still as
//! read; otherwise it writes nothing and says [`StoreError::Conflict`], and
//! the caller decides again on a fresh read. Row locks are taken by the
//! statement itself (job first, then units), and a unit's feed entry is
//! inserted after its row is locked, so feed entries commit in order; the
//! entry carries the job's new row as its snapshot (migration 0011).

use chrono::{DateTime, Utc};
use dispatch311_domain::time::to_timestamp;
use dispatch311_proto::dispatch::v1::{self as dispatch, Flag, FlagKind};
use dispatch311_telemetry::propagation;
use serde::Deserialize;
use sqlx::Row;
use tracing::Instrument;
use uuid::Uuid;

use super::{
    JobRow, Store, StoreError, StoreResult, job_from_row, job_row, state_name,
    units::{UnitRow, status_name, unit_row},
};
use crate::{
    jobs::change::JobChange,
    store::events::{event_type_name, role_name},
    store::feed::{self, change_name},
    store::flags::kind_name,
};
use dispatch311_domain::status::priority_name;
use dispatch311_proto::dispatch::v1::UnitStatus;

/// The job a DUPLICATE closure names as the report already filed.
#[derive(Debug, Clone, PartialEq)]
pub struct DuplicateTarget {
    pub job_id: uuid::Uuid,
    pub sr_number: String,
    pub complaint_type: String,
    pub precinct: String,
    pub location: Option<(f64, f64)>,
}

/// What a change needs read besides the job itself.
#[derive(Debug, Default, Clone)]
pub struct ReadFor<'a> {
    /// Units to read besides the job's own (the unit a job is assigned to).
    pub unit_ids: &'a [Uuid],
    /// A closure by this actor: whether they viewed the photos, and how many
    /// jobs they closed since the given instant.
    pub closer: Option<(&'a str, DateTime<Utc>)>,
    /// The request a duplicate closure names.
    pub duplicate_sr_number: Option<&'a str>,
    /// A complainant message whose answer arrives.
    pub message_id: Option<Uuid>,
}

/// A job as read for a change, with what its rules need.
#[derive(Debug, Clone)]
pub struct JobSnapshot {
    pub job: JobRow,
    /// The job's unit and the units asked for, by id.
    pub units: Vec<UnitRow>,
    pub flags: Vec<Flag>,
    pub flag_keys: Vec<String>,
    pub photo_ids: Vec<Uuid>,
    /// The job's precinct assigns queued jobs to units by itself.
    pub auto_assign: bool,
    pub closer_viewed_evidence: bool,
    pub closer_recent_closures: u32,
    pub duplicate_target: Option<DuplicateTarget>,
    /// The message asked for is the job's and has no answer yet.
    pub message_unanswered: bool,
}

impl JobSnapshot {
    pub fn unit(&self, unit_id: Uuid) -> Option<&UnitRow> {
        self.units.iter().find(|u| u.unit_id == unit_id)
    }
}

/// A unit as `json_agg` writes its row.
#[derive(Deserialize)]
struct UnitJson {
    unit_id: Uuid,
    call_sign: String,
    precinct: String,
    officer_ids: Vec<String>,
    status: String,
    latitude: Option<f64>,
    longitude: Option<f64>,
    position_reported_at: Option<DateTime<Utc>>,
    current_job_id: Option<Uuid>,
}

#[derive(Deserialize)]
struct DuplicateJson {
    job_id: Uuid,
    complaint_type: String,
    precinct: String,
    latitude: Option<f64>,
    longitude: Option<f64>,
}

/// The job, its units and flags: what every change reads. The macro lets the
/// two reads below share it as one literal each (planned once per connection).
macro_rules! read_job_and_units {
    () => {
        "SELECT j.*, \
            (SELECT coalesce(json_agg(u ORDER BY u.unit_id), '[]') FROM units u \
                WHERE u.unit_id = j.unit_id OR u.unit_id = ANY($2::uuid[])) AS units_json, \
            array(SELECT f.kind FROM job_flags f WHERE f.job_id = j.job_id ORDER BY f.id) AS flag_kinds, \
            array(SELECT f.detail FROM job_flags f WHERE f.job_id = j.job_id ORDER BY f.id) AS flag_details, \
            array(SELECT f.raised_at FROM job_flags f WHERE f.job_id = j.job_id ORDER BY f.id) AS flag_raised_at, \
            array(SELECT f.dedup_key FROM job_flags f WHERE f.job_id = j.job_id ORDER BY f.id) AS flag_keys, \
            coalesce((SELECT s.auto_assign FROM precinct_settings s WHERE s.precinct = j.precinct), false) \
                AS auto_assign, \
            (SELECT coalesce(json_agg(json_build_object('sr_id', r.sr_id, 'sr_number', r.sr_number, \
                'complainant_consented', r.complainant_consented, 'origin_traceparent', r.origin_traceparent) \
                ORDER BY r.linked_at, r.sr_number), '[]') FROM job_reports r WHERE r.job_id = j.job_id AND r.unlinked_at IS NULL) AS reports_json, "
    };
}

/// Most changes need no more than the job, its units and flags.
const READ_FOR_CHANGE: &str = concat!(
    read_job_and_units!(),
    "false AS closer_viewed_evidence, 0::int8 AS closer_recent_closures, NULL::json AS duplicate_json, \
        false AS message_unanswered \
     FROM jobs j WHERE j.job_id = $1"
);

/// A closure also needs what its rules know of the closer and of the job it
/// duplicates, and an answer whether its question is still open.
const READ_FOR_CHANGE_WITH_FACTS: &str = concat!(
    read_job_and_units!(),
    "CASE WHEN $3::text IS NOT NULL AND j.photo_count > 0 THEN EXISTS ( \
        SELECT 1 FROM job_events e WHERE e.job_id = j.job_id AND e.event_type = 'EVIDENCE_VIEWED' \
            AND e.actor = $3 AND e.sequence > coalesce((SELECT max(r.sequence) FROM job_events r \
                WHERE r.job_id = j.job_id AND r.event_type = 'REOPENED'), 0)) \
        ELSE false END AS closer_viewed_evidence, \
    CASE WHEN $3::text IS NOT NULL THEN (SELECT count(*) FROM job_events c \
        WHERE c.event_type = 'CLOSED' AND c.actor = $3 AND c.occurred_at > $4) ELSE 0 END \
        AS closer_recent_closures, \
    CASE WHEN $5::text IS NOT NULL THEN (SELECT json_build_object('job_id', d.job_id, \
        'complaint_type', d.complaint_type, 'precinct', d.precinct, 'latitude', d.latitude, \
        'longitude', d.longitude) FROM jobs d WHERE d.sr_number = $5) END AS duplicate_json, \
    CASE WHEN $6::uuid IS NOT NULL THEN EXISTS (SELECT 1 FROM complainant_messages m \
        WHERE m.message_id = $6 AND m.job_id = j.job_id AND m.answered_at IS NULL) ELSE false END \
        AS message_unanswered \
     FROM jobs j WHERE j.job_id = $1"
);

/// The write: everything hangs on the job's row being updated (`FROM job`),
/// so a job that changed since it was read writes nothing; a unit that
/// changed makes the statement fail (SQLSTATE 40001) after the job's row was
/// updated, which undoes all of it.
const WRITE_CHANGE: &str = "\
WITH job AS ( \
    UPDATE jobs SET state = $3, unit_id = $4, assignment_number = $5, assigned_at = $6, \
        acknowledged_at = $7, en_route_at = $8, on_scene_at = $9, on_scene_latitude = $10, \
        on_scene_longitude = $11, closed_at = $12, closed_by = $13, resolution_code = $14, \
        resolution_notes = $15, summons_number = $16, closure_count = $17, reopen_count = $18, \
        priority = $19, priority_rank = $20, queued_at = $21, rerouted_to = $22, \
        last_event_sequence = $23, last_event_hash = $24, updated_at = $25 \
    WHERE job_id = $1 AND last_event_sequence = $2 \
    RETURNING *), \
unit_input AS ( \
    SELECT * FROM unnest($26::uuid[], $27::text[], $28::uuid[], $29::text[], $30::uuid[], \
        $31::float8[], $32::float8[], $33::timestamptz[], $34::text[]) WITH ORDINALITY \
    AS i(unit_id, seen_status, seen_job_id, status, current_job_id, latitude, longitude, \
        position_reported_at, feed_change, ord)), \
unit AS ( \
    UPDATE units SET status = i.status, current_job_id = i.current_job_id, latitude = i.latitude, \
        longitude = i.longitude, position_reported_at = i.position_reported_at, updated_at = $25 \
    FROM unit_input i, job \
    WHERE units.unit_id = i.unit_id AND units.status = i.seen_status \
        AND units.current_job_id IS NOT DISTINCT FROM i.seen_job_id \
    RETURNING units.unit_id), \
feed AS ( \
    INSERT INTO unit_feed (unit_id, job_id, change, occurred_at, job_snapshot) \
    SELECT i.unit_id, $1, i.feed_change, $25, to_jsonb(job) FROM job, unit JOIN unit_input i USING (unit_id) \
    WHERE i.feed_change IS NOT NULL ORDER BY i.ord \
    RETURNING unit_id), \
event AS ( \
    INSERT INTO job_events (job_id, sequence, event_type, occurred_at, actor, actor_role, latitude, \
        longitude, unit_id, reason, previous_hash, hash, trace_id) \
    SELECT $1, e.sequence, e.event_type, e.occurred_at, e.actor, e.actor_role, e.latitude, \
        e.longitude, e.unit_id, e.reason, e.previous_hash, e.hash, $57 \
    FROM job, unnest($35::int8[], $36::text[], $37::timestamptz[], $38::text[], $39::text[], \
        $40::float8[], $41::float8[], $42::uuid[], $43::text[], $44::text[], $45::text[]) \
        AS e(sequence, event_type, occurred_at, actor, actor_role, latitude, longitude, unit_id, \
            reason, previous_hash, hash) \
    ORDER BY e.sequence), \
flag AS ( \
    INSERT INTO job_flags (job_id, kind, detail, raised_at, dedup_key) \
    SELECT $1, f.kind, f.detail, $25, f.dedup_key \
    FROM job, unnest($46::text[], $47::text[], $48::text[]) WITH ORDINALITY AS f(kind, detail, dedup_key, ord) \
    ORDER BY f.ord), \
sent AS ( \
    INSERT INTO outbox (queue, envelope) SELECT o.queue, o.envelope \
    FROM job, unnest($49::text[], $50::bytea[]) WITH ORDINALITY AS o(queue, envelope, ord) ORDER BY o.ord), \
asked AS ( \
    INSERT INTO complainant_messages (message_id, job_id, asked_by, asked_at) \
    SELECT $51, $1, $52, $25 FROM job WHERE $51::uuid IS NOT NULL), \
answered AS ( \
    UPDATE complainant_messages m SET answered_at = $25 FROM job \
    WHERE m.message_id = $53 AND m.job_id = $1 AND m.answered_at IS NULL \
    RETURNING m.message_id) \
SELECT job.*, (SELECT call_sign FROM units u WHERE u.unit_id = job.unit_id) AS unit_call_sign, \
    CASE WHEN (SELECT count(*) FROM unit) <> $54 OR (SELECT count(*) FROM answered) <> $55 \
        THEN job_write_conflict() ELSE false END AS conflict, \
    (SELECT count(pg_notify($56, unit_id::text)) FROM feed) AS notified \
FROM job";

impl Store {
    /// The job and what a change to it needs, as they are now; `None` when
    /// there is no such job. Nothing is locked.
    pub async fn read_for_change(
        &self,
        job_id: Uuid,
        read: &ReadFor<'_>,
    ) -> StoreResult<Option<JobSnapshot>> {
        let (closer, since) = read.closer.unzip();
        let with_facts =
            closer.is_some() || read.duplicate_sr_number.is_some() || read.message_id.is_some();
        let query = if with_facts {
            sqlx::query(READ_FOR_CHANGE_WITH_FACTS)
                .bind(job_id)
                .bind(read.unit_ids)
                .bind(closer)
                .bind(since)
                .bind(read.duplicate_sr_number)
                .bind(read.message_id)
        } else {
            sqlx::query(READ_FOR_CHANGE)
                .bind(job_id)
                .bind(read.unit_ids)
        };
        let Some(row) = query
            .fetch_optional(self.pool())
            .instrument(dispatch311_db::statement_span("SELECT", "jobs"))
            .await?
        else {
            return Ok(None);
        };
        let units: sqlx::types::Json<Vec<UnitJson>> = row.try_get("units_json")?;
        let units = units
            .0
            .into_iter()
            .map(|u| UnitRow {
                unit_id: u.unit_id,
                call_sign: u.call_sign,
                precinct: u.precinct,
                officer_ids: u.officer_ids,
                status: UnitStatus::from_str_name(&format!("UNIT_STATUS_{}", u.status))
                    .unwrap_or_default(),
                position: u.latitude.zip(u.longitude),
                position_reported_at: u.position_reported_at,
                current_job_id: u.current_job_id,
            })
            .collect();
        let kinds: Vec<String> = row.try_get("flag_kinds")?;
        let details: Vec<String> = row.try_get("flag_details")?;
        let raised_at: Vec<DateTime<Utc>> = row.try_get("flag_raised_at")?;
        let flags = kinds
            .iter()
            .zip(details)
            .zip(raised_at)
            .map(|((kind, detail), at)| Flag {
                kind: FlagKind::from_str_name(&format!("FLAG_KIND_{kind}")).unwrap_or_default()
                    as i32,
                detail,
                raised_at: Some(to_timestamp(at)),
            })
            .collect();
        let duplicate: Option<sqlx::types::Json<Option<DuplicateJson>>> =
            row.try_get("duplicate_json")?;
        let duplicate_target = duplicate.and_then(|d| d.0).map(|d| DuplicateTarget {
            job_id: d.job_id,
            sr_number: read.duplicate_sr_number.unwrap_or_default().to_string(),
            complaint_type: d.complaint_type,
            precinct: d.precinct,
            location: d.latitude.zip(d.longitude),
        });
        let recent: i64 = row.try_get("closer_recent_closures")?;
        let mut job = job_row(&row);
        let reports: sqlx::types::Json<Vec<super::LinkedReport>> = row.try_get("reports_json")?;
        job.reports = reports.0;
        // whatever changes the job is a trace of its own: it links back to
        // the one that queued it, and names the request
        propagation::link_current_to_request(&job.origin_traceparent, &job.sr_number);
        Ok(Some(JobSnapshot {
            job,
            units,
            flags,
            flag_keys: row.try_get("flag_keys")?,
            photo_ids: row.try_get("photo_ids")?,
            auto_assign: row.try_get("auto_assign")?,
            closer_viewed_evidence: row.try_get("closer_viewed_evidence")?,
            closer_recent_closures: u32::try_from(recent).unwrap_or(u32::MAX),
            duplicate_target,
            message_unanswered: row.try_get("message_unanswered")?,
        }))
    }

    /// Writes `change` in one statement and answers with the job as written
    /// (`flags_as_read` and the flags the change raised). Nothing is written,
    /// and [`StoreError::Conflict`] returned, when the job or one of its units
    /// changed since they were read.
    pub async fn write_change(
        &self,
        change: &JobChange,
        flags_as_read: &[Flag],
    ) -> Result<dispatch::Job, StoreError> {
        let job = &change.after;
        let now = change.now;

        let mut unit_ids = Vec::new();
        let mut seen_status = Vec::new();
        let mut seen_job = Vec::new();
        let mut status = Vec::new();
        let mut current_job = Vec::new();
        let mut latitude = Vec::new();
        let mut longitude = Vec::new();
        let mut reported_at = Vec::new();
        let mut feed_change = Vec::new();
        for unit in &change.units {
            unit_ids.push(unit.before.unit_id);
            seen_status.push(status_name(unit.before.status));
            seen_job.push(unit.before.current_job_id);
            status.push(status_name(unit.after.status));
            current_job.push(unit.after.current_job_id);
            latitude.push(unit.after.position.map(|p| p.0));
            longitude.push(unit.after.position.map(|p| p.1));
            reported_at.push(unit.after.position_reported_at);
            feed_change.push(unit.feed.map(change_name));
        }

        let mut sequence = Vec::new();
        let mut event_type = Vec::new();
        let mut occurred_at = Vec::new();
        let mut actor = Vec::new();
        let mut actor_role = Vec::new();
        let mut event_latitude = Vec::new();
        let mut event_longitude = Vec::new();
        let mut event_unit = Vec::new();
        let mut reason = Vec::new();
        let mut previous_hash = Vec::new();
        let mut hash = Vec::new();
        for chained in &change.events {
            let event = &chained.event;
            sequence.push(chained.sequence);
            event_type.push(event_type_name(event.event_type));
            occurred_at.push(event.occurred_at);
            actor.push(event.actor.id.as_str());
            actor_role.push(role_name(event.actor.role));
            event_latitude.push(event.position.map(|p| p.0));
            event_longitude.push(event.position.map(|p| p.1));
            event_unit.push(event.unit_id);
            reason.push(event.reason.as_str());
            previous_hash.push(chained.previous_hash.as_str());
            hash.push(chained.hash.as_str());
        }

        let flag_kinds: Vec<&str> = change.flags.iter().map(|f| kind_name(f.kind)).collect();
        let flag_details: Vec<&str> = change.flags.iter().map(|f| f.detail.as_str()).collect();
        let flag_keys: Vec<&str> = change.flags.iter().map(|f| f.dedup_key.as_str()).collect();
        let (outbox_queues, outbox_envelopes) = dispatch311_queue::outbox::columns(&change.outbox);
        let (asked_id, asked_by) = change
            .asked
            .as_ref()
            .map(|a| (a.message_id, a.asked_by.as_str()))
            .unzip();
        let (on_scene_latitude, on_scene_longitude) = job.on_scene_position.unzip();

        let row = sqlx::query(WRITE_CHANGE)
            .bind(change.before.job_id)
            .bind(change.before.last_event_sequence)
            .bind(state_name(job.state))
            .bind(job.unit_id)
            .bind(job.assignment_number)
            .bind(job.assigned_at)
            .bind(job.acknowledged_at)
            .bind(job.en_route_at)
            .bind(job.on_scene_at)
            .bind(on_scene_latitude)
            .bind(on_scene_longitude)
            .bind(job.closed_at)
            .bind(&job.closed_by)
            .bind(&job.resolution_code)
            .bind(&job.resolution_notes)
            .bind(&job.summons_number)
            .bind(job.closure_count)
            .bind(job.reopen_count)
            .bind(priority_name(job.priority))
            .bind(job.priority as i16)
            .bind(job.queued_at)
            .bind(&job.rerouted_to)
            .bind(job.last_event_sequence)
            .bind(&job.last_event_hash)
            .bind(now)
            .bind(&unit_ids)
            .bind(&seen_status)
            .bind(&seen_job)
            .bind(&status)
            .bind(&current_job)
            .bind(&latitude)
            .bind(&longitude)
            .bind(&reported_at)
            .bind(&feed_change)
            .bind(&sequence)
            .bind(&event_type)
            .bind(&occurred_at)
            .bind(&actor)
            .bind(&actor_role)
            .bind(&event_latitude)
            .bind(&event_longitude)
            .bind(&event_unit)
            .bind(&reason)
            .bind(&previous_hash)
            .bind(&hash)
            .bind(&flag_kinds)
            .bind(&flag_details)
            .bind(&flag_keys)
            .bind(&outbox_queues)
            .bind(&outbox_envelopes)
            .bind(asked_id)
            .bind(asked_by)
            .bind(change.answered)
            .bind(change.units.len() as i64)
            .bind(i64::from(change.answered.is_some()))
            .bind(feed::CHANNEL)
            // the events are the call's: its trace is where their story is
            .bind(propagation::trace_id_of(&tracing::Span::current()).unwrap_or_default())
            .fetch_optional(self.pool())
            .instrument(dispatch311_db::statement_span("UPDATE", "jobs"))
            .await
            .map_err(conflict_or_error)?
            .ok_or(StoreError::Conflict)?;
        let mut view = job_from_row(&row);
        view.linked_sr_numbers = change
            .before
            .reports
            .iter()
            .map(|r| r.sr_number.clone())
            .collect();
        view.flags = flags_as_read.to_vec();
        view.flags.extend(change.flags.iter().map(|f| Flag {
            kind: f.kind as i32,
            detail: f.detail.clone(),
            raised_at: Some(to_timestamp(now)),
        }));
        Ok(view)
    }
}

impl Store {
    /// The job of request `sr_id`, if it has one.
    pub async fn job_of_request(&self, sr_id: Uuid) -> StoreResult<Option<Uuid>> {
        Ok(
            // a linked report's request finds the job it is a report of
            sqlx::query_scalar(
                "SELECT job_id FROM jobs WHERE sr_id = $1 \
                 UNION ALL SELECT job_id FROM job_reports WHERE sr_id = $1 AND unlinked_at IS NULL LIMIT 1",
            )
            .bind(sr_id)
            .fetch_optional(self.pool())
            .instrument(dispatch311_db::statement_span("SELECT", "jobs"))
            .await?,
        )
    }

    /// The available units of `precinct` with a known position.
    pub async fn available_units(&self, precinct: &str) -> StoreResult<Vec<UnitRow>> {
        let mut conn = self.pool().acquire().await?;
        Ok(super::units::available_in(&mut conn, precinct).await?)
    }

    /// A unit as it is, and whether its precinct assigns automatically.
    pub async fn unit_for_auto_assign(
        &self,
        unit_id: Uuid,
    ) -> StoreResult<Option<(UnitRow, bool)>> {
        let row = sqlx::query(
            "SELECT u.*, coalesce((SELECT s.auto_assign FROM precinct_settings s \
                WHERE s.precinct = u.precinct), false) AS auto_assign \
             FROM units u WHERE u.unit_id = $1",
        )
        .bind(unit_id)
        .fetch_optional(self.pool())
        .instrument(dispatch311_db::statement_span(
            "SELECT",
            "precinct_settings",
        ))
        .await?;
        Ok(row.map(|row| (unit_row(&row), row.get("auto_assign"))))
    }

    /// The precinct's most urgent, oldest queued job.
    pub async fn next_queued_job(&self, precinct: &str) -> StoreResult<Option<Uuid>> {
        Ok(sqlx::query_scalar(
            "SELECT job_id FROM jobs WHERE precinct = $1 AND state = 'QUEUED' \
             ORDER BY priority_rank DESC, queued_at, job_id LIMIT 1",
        )
        .bind(precinct)
        .fetch_optional(self.pool())
        .instrument(dispatch311_db::statement_span("SELECT", "jobs"))
        .await?)
    }
}

/// SQLSTATE 40001 (raised by `job_write_conflict`, or a serialization
/// failure) and 40P01 (a deadlock between two changes locking the same
/// units) mean: read again and decide again.
fn conflict_or_error(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e
        && matches!(db.code().as_deref(), Some("40001" | "40P01"))
    {
        return StoreError::Conflict;
    }
    StoreError::Database(e)
}
