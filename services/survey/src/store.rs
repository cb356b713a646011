//! Survey's storage, all in the `survey` schema: closures, survey tokens
//! (hashes only), answers, and the outbox of reopen requests.

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, SubsecRound as _, Utc};
use dispatch311_domain::{
    jobs::{kinds, queues},
    resolution,
    status::{resolution_from_name, resolution_name},
    time::to_timestamp,
};
use dispatch311_proto::{
    common::v1::{ResolutionCode, ServiceRequestStatus},
    jobs::v1::{ReopenRequest, StatusUpdate},
    survey::v1::{ClosedRequest, ExportSurveyResultsResponse, SatisfactionGroup},
};
use dispatch311_queue::outbox;
use futures::TryStreamExt as _;
use sqlx::{PgPool, Row, postgres::PgRow};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tracing::Instrument;
use uuid::Uuid;

use crate::{
    answers::{self, Answer},
    feed::FeedPosition,
    tokens,
};

/// The reason dispatch records when a complainant's answer reopens a job.
pub const REOPEN_REASON: &str = "complainant says the problem was not fixed (survey)";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Queue(#[from] dispatch311_queue::QueueError),
    #[error("cannot draw a random survey token: {0}")]
    Random(getrandom::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl dispatch311_grpc::status::StorageFailure for StoreError {
    fn unreachable_dependency(&self) -> Option<&'static str> {
        match self {
            Self::Database(e) => e.unreachable_dependency(),
            Self::Queue(e) => e.unreachable_dependency(),
            Self::Random(_) => None,
        }
    }
}

/// A closure as the `closed` queue delivers it, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct NewClosure {
    pub sr_id: Uuid,
    pub sr_number: String,
    pub closure_number: i32,
    pub agency: String,
    pub precinct: String,
    pub borough: String,
    pub complaint_type: String,
    pub descriptor: String,
    pub resolution_code: ResolutionCode,
    pub resolution_text: String,
    pub closed_at: DateTime<Utc>,
    pub assigned_at: Option<DateTime<Utc>>,
    pub flagged: bool,
    pub summons_issued: bool,
    pub complainant_consented: bool,
    /// The request's own trace, which answers link to.
    pub origin_traceparent: String,
    /// The dispatch job closed (several linked reports share it).
    pub job_id: Option<Uuid>,
}

/// One closure of the feed with the position right after it.
#[derive(Debug, Clone)]
pub struct ListedClosure {
    pub position: FeedPosition,
    pub closed_request: ClosedRequest,
}

/// What a survey token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenLookup {
    Unknown,
    Expired { expires_at: DateTime<Utc> },
    Valid { sr_number: String },
}

/// What became of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// Stored now; `reopened` when a reopen request went to dispatch.
    Recorded(Recorded),
    /// The same answer was already stored: the first one.
    Repeated(Recorded),
    /// The closure already has a different answer.
    AlreadyAnswered {
        sr_number: String,
    },
    UnknownToken,
    Expired {
        expires_at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub sr_number: String,
    pub recorded_at: DateTime<Utc>,
    pub reopened: bool,
}

/// How `GetSatisfactionStats` groups, and what it looks at.
#[derive(Debug, Clone, Default)]
pub struct StatsQuery {
    /// `AGENCY`, `PRECINCT`, `COMPLAINT_TYPE`, `MONTH`, or `ALL` for one group.
    pub group_by: &'static str,
    /// Empty matches everything.
    pub agency: String,
    pub precinct: String,
    pub complaint_type: String,
    pub closed_from: Option<DateTime<Utc>>,
    pub closed_to: Option<DateTime<Utc>>,
}

/// The month of a closure as reported ("YYYY-MM"), in New York time: the
/// city's month, not UTC's.
macro_rules! closure_month {
    () => {
        "to_char(c.closed_at AT TIME ZONE 'America/New_York', 'YYYY-MM')"
    };
}

/// The group key of a closure `c` for the group name bound as `$1`.
macro_rules! group_key {
    () => {
        concat!(
            "CASE $1 WHEN 'AGENCY' THEN c.agency WHEN 'PRECINCT' THEN c.precinct \
             WHEN 'COMPLAINT_TYPE' THEN c.complaint_type WHEN 'MONTH' THEN ",
            closure_month!(),
            " ELSE 'all' END"
        )
    };
}

/// The closures `c` a stats query covers (`$2`..`$6`).
macro_rules! stats_filter {
    () => {
        "($2 = '' OR c.agency = $2) AND ($3 = '' OR c.precinct = $3) \
         AND ($4 = '' OR c.complaint_type = $4) \
         AND ($5::timestamptz IS NULL OR c.closed_at >= $5) \
         AND ($6::timestamptz IS NULL OR c.closed_at < $6)"
    };
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

    /// Stores a closure once; a repeat of the same `(sr_id, closure_number)`
    /// stores nothing and returns false.
    pub async fn record_closure(&self, closure: &NewClosure) -> StoreResult<bool> {
        let inserted = sqlx::query(
            "INSERT INTO closures (sr_id, sr_number, closure_number, agency, precinct, borough, \
                complaint_type, descriptor, resolution_code, resolution_text, closed_at, assigned_at, \
                flagged, summons_issued, complainant_consented, origin_traceparent, job_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
             ON CONFLICT (sr_id, closure_number) DO NOTHING",
        )
        .bind(closure.sr_id)
        .bind(&closure.sr_number)
        .bind(closure.closure_number)
        .bind(&closure.agency)
        .bind(&closure.precinct)
        .bind(&closure.borough)
        .bind(&closure.complaint_type)
        .bind(&closure.descriptor)
        .bind(resolution_name(closure.resolution_code))
        .bind(&closure.resolution_text)
        .bind(closure.closed_at)
        .bind(closure.assigned_at)
        .bind(closure.flagged)
        .bind(closure.summons_issued)
        .bind(closure.complainant_consented)
        .bind(&closure.origin_traceparent)
        .bind(closure.job_id)
        .execute(&self.pool)
        .instrument(dispatch311_db::statement_span("INSERT", "closures"))
        .await?
        .rows_affected();
        Ok(inserted == 1)
    }

    /// Up to `limit` closures after `after`, in feed order (see `feed`). A
    /// consenting complainant's closure comes with a new survey token valid
    /// for `token_ttl`; every listing hands out a new one and earlier ones
    /// stay valid until they expire.
    pub async fn closed_after(
        &self,
        after: FeedPosition,
        limit: usize,
        token_ttl: Duration,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<ListedClosure>> {
        // one statement: the rows and the snapshot horizon come from the same
        // snapshot, so every row below the horizon that ever commits is visible
        let rows = sqlx::query(
            "SELECT id, xid, sr_number, agency, precinct, borough, complaint_type, descriptor, \
                resolution_code, resolution_text, closed_at, complainant_consented, flagged, closure_number \
             FROM closures \
             WHERE (xid, id) > ($1, $2) \
               AND xid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint \
             ORDER BY xid, id \
             LIMIT $3",
        )
        .bind(after.xid)
        .bind(after.id)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .instrument(dispatch311_db::statement_span("SELECT", "closures"))
        .await?;

        let now = stored_precision(now);
        let expires_at =
            now + chrono::Duration::from_std(token_ttl).unwrap_or(chrono::Duration::days(30));
        let mut listed = Vec::with_capacity(rows.len());
        let mut token_hashes = Vec::new();
        let mut token_closures = Vec::new();
        for row in rows {
            let id: i64 = row.get("id");
            let mut closed_request = closed_request(&row);
            if closed_request.complainant_consented {
                let issued = tokens::issue().map_err(StoreError::Random)?;
                token_hashes.push(issued.hash);
                token_closures.push(id);
                closed_request.survey_token = issued.token;
                closed_request.survey_token_expires_at = Some(to_timestamp(expires_at));
            }
            listed.push(ListedClosure {
                position: FeedPosition {
                    xid: row.get("xid"),
                    id,
                },
                closed_request,
            });
        }
        if !token_hashes.is_empty() {
            sqlx::query(
                "INSERT INTO survey_tokens (token_hash, closure_id, issued_at, expires_at) \
                 SELECT hash, closure_id, $3, $4 FROM unnest($1::bytea[], $2::bigint[]) AS t(hash, closure_id)",
            )
            .bind(&token_hashes)
            .bind(&token_closures)
            .bind(now)
            .bind(expires_at)
            .execute(&self.pool)
            .instrument(dispatch311_db::statement_span("INSERT", "survey_tokens"))
            .await?;
        }
        Ok(listed)
    }

    /// The request behind a token, if the token is known and still valid.
    pub async fn token_target(&self, token: &str, now: DateTime<Utc>) -> StoreResult<TokenLookup> {
        let row = sqlx::query(
            "SELECT c.sr_number, t.expires_at FROM survey_tokens t \
             JOIN closures c ON c.id = t.closure_id WHERE t.token_hash = $1",
        )
        .bind(tokens::hash(token))
        .fetch_optional(&self.pool)
        .instrument(dispatch311_db::statement_span("SELECT", "survey_tokens"))
        .await?;
        let Some(row) = row else {
            return Ok(TokenLookup::Unknown);
        };
        let expires_at: DateTime<Utc> = row.get("expires_at");
        if expires_at <= now {
            return Ok(TokenLookup::Expired { expires_at });
        }
        Ok(TokenLookup::Valid {
            sr_number: row.get("sr_number"),
        })
    }

    /// Deletes the hashes of tokens that expired before `expired_before` and
    /// were never used (an answered token stays with its answer: repeats are
    /// recognised by it). Returns how many went.
    pub async fn purge_expired_tokens(&self, expired_before: DateTime<Utc>) -> StoreResult<u64> {
        let purged = sqlx::query(
            "DELETE FROM survey_tokens t WHERE t.expires_at < $1 \
             AND NOT EXISTS (SELECT 1 FROM responses r WHERE r.token_hash = t.token_hash)",
        )
        .bind(expired_before)
        .execute(&self.pool)
        .instrument(dispatch311_db::statement_span("DELETE", "survey_tokens"))
        .await?;
        Ok(purged.rows_affected())
    }

    /// Records the answer behind `token`, once per closure, and tells intake
    /// the request was surveyed (a `StatusUpdate` in the outbox, same
    /// transaction). An answer that asks to reopen writes a `ReopenRequest`
    /// to the outbox too, unless the request has been closed again since the
    /// closure it answers (dispatch would ignore it).
    pub async fn submit(
        &self,
        token: &str,
        answer: &Answer,
        now: DateTime<Utc>,
    ) -> StoreResult<Submitted> {
        let now = stored_precision(now);
        let token_hash = tokens::hash(token);
        let mut tx = self.pool.begin().await?;
        // the closure's row lock serialises answers to one closure
        let target = sqlx::query(
            "SELECT c.id, c.sr_id, c.sr_number, c.closure_number, c.resolution_code, c.flagged, \
                c.origin_traceparent, t.expires_at \
             FROM survey_tokens t JOIN closures c ON c.id = t.closure_id \
             WHERE t.token_hash = $1 \
             FOR UPDATE OF c",
        )
        .bind(&token_hash)
        .fetch_optional(&mut *tx)
        .instrument(dispatch311_db::statement_span("SELECT", "survey_tokens"))
        .await?;
        let Some(target) = target else {
            return Ok(Submitted::UnknownToken);
        };
        let closure_id: i64 = target.get("id");
        let sr_number: String = target.get("sr_number");
        // an answer is a trace of its own: it links to the request's
        dispatch311_telemetry::propagation::link_current_to_request(
            target.get("origin_traceparent"),
            &sr_number,
        );

        let earlier = sqlx::query(
            "SELECT agreement, reason, condition_corrected, comment, recorded_at, reopen_requested \
             FROM responses WHERE closure_id = $1",
        )
        .bind(closure_id)
        .fetch_optional(&mut *tx)
        .instrument(dispatch311_db::statement_span("SELECT", "responses"))
        .await?;
        if let Some(earlier) = earlier {
            let same = earlier.get::<String, _>("agreement")
                == answers::agreement_name(answer.agreement)
                && earlier.get::<String, _>("reason") == answer.reason_name()
                && earlier.get::<String, _>("condition_corrected") == answer.condition_name()
                && earlier.get::<String, _>("comment") == answer.comment;
            if !same {
                return Ok(Submitted::AlreadyAnswered { sr_number });
            }
            return Ok(Submitted::Repeated(Recorded {
                sr_number,
                recorded_at: earlier.get("recorded_at"),
                reopened: earlier.get("reopen_requested"),
            }));
        }

        let expires_at: DateTime<Utc> = target.get("expires_at");
        if expires_at <= now {
            return Ok(Submitted::Expired { expires_at });
        }

        let sr_id: Uuid = target.get("sr_id");
        let closure_number: i32 = target.get("closure_number");
        let reopen = answer.asks_to_reopen() && {
            let latest: i32 =
                sqlx::query_scalar("SELECT max(closure_number) FROM closures WHERE sr_id = $1")
                    .bind(sr_id)
                    .fetch_one(&mut *tx)
                    .instrument(dispatch311_db::statement_span("SELECT", "closures"))
                    .await?;
            latest == closure_number
        };
        sqlx::query(
            "INSERT INTO responses (closure_id, token_hash, agreement, reason, condition_corrected, \
                comment, reopen_requested, recorded_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(closure_id)
        .bind(&token_hash)
        .bind(answers::agreement_name(answer.agreement))
        .bind(answer.reason_name())
        .bind(answer.condition_name())
        .bind(&answer.comment)
        .bind(reopen)
        .bind(now)
        .execute(&mut *tx)
        .instrument(dispatch311_db::statement_span("INSERT", "responses"))
        .await?;
        // the public record ends where the lifecycle does: surveyed
        let surveyed = StatusUpdate {
            sr_id: sr_id.to_string(),
            status: ServiceRequestStatus::Surveyed as i32,
            occurred_at: Some(to_timestamp(now)),
            source: "survey".into(),
            message: "the complainant answered the satisfaction survey".into(),
            transition_key: format!("survey:surveyed:{closure_number}"),
            ..Default::default()
        };
        outbox::enqueue(
            &mut tx,
            queues::STATUS,
            kinds::STATUS_UPDATE,
            &surveyed.sr_id,
            &surveyed,
        )
        .await?;
        if reopen {
            let code = resolution_from_name(target.get("resolution_code"))
                .unwrap_or(ResolutionCode::Unspecified);
            let flagged: bool = target.get("flagged");
            let request = ReopenRequest {
                sr_id: sr_id.to_string(),
                sr_number: sr_number.clone(),
                closure_number: closure_number as u32,
                reason: REOPEN_REASON.to_string(),
                // a closure that claimed a visit, or that dispatch already
                // doubted, contradicted by the complainant deserves a look
                review: resolution::claims_visit(code) || flagged,
            };
            outbox::enqueue(
                &mut tx,
                queues::REOPEN,
                kinds::REOPEN,
                &request.sr_id,
                &request,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Submitted::Recorded(Recorded {
            sr_number,
            recorded_at: now,
            reopened: reopen,
        }))
    }

    /// Satisfaction and closure-quality figures per group, ordered by key
    /// (byte order).
    pub async fn stats(&self, query: &StatsQuery) -> StoreResult<Vec<SatisfactionGroup>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            group_key!(),
            " AS key, \
                count(DISTINCT (coalesce(c.job_id, c.sr_id), c.closure_number)) AS closures, \
                count(DISTINCT (coalesce(c.job_id, c.sr_id), c.closure_number)) \
                    FILTER (WHERE c.closed_at - c.assigned_at <= interval '5 minutes') AS closed_quickly, \
                count(DISTINCT (coalesce(c.job_id, c.sr_id), c.closure_number)) \
                    FILTER (WHERE c.summons_issued) AS with_summons, \
                count(DISTINCT (coalesce(c.job_id, c.sr_id), c.closure_number)) FILTER (WHERE c.flagged) AS flagged, \
                count(*) AS requests_closed, \
                count(r.id) AS responses, \
                count(*) FILTER (WHERE r.agreement = 'STRONGLY_AGREE') AS strongly_agree, \
                count(*) FILTER (WHERE r.agreement = 'AGREE') AS agree, \
                count(*) FILTER (WHERE r.agreement = 'NEITHER') AS neither, \
                count(*) FILTER (WHERE r.agreement = 'DISAGREE') AS disagree, \
                count(*) FILTER (WHERE r.agreement = 'STRONGLY_DISAGREE') AS strongly_disagree, \
                count(*) FILTER (WHERE r.reopen_requested) AS reopened \
             FROM closures c LEFT JOIN responses r ON r.closure_id = c.id \
             WHERE ",
            stats_filter!(),
            " GROUP BY 1"
        ))
        .bind(query.group_by)
        .bind(&query.agency)
        .bind(&query.precinct)
        .bind(&query.complaint_type)
        .bind(query.closed_from)
        .bind(query.closed_to)
        .fetch_all(&self.pool)
        .instrument(dispatch311_db::statement_span("SELECT", "closures"))
        .await?;
        // ordered here, not by the database's collation, so the order is the
        // same on every server
        let mut groups: BTreeMap<String, SatisfactionGroup> = rows
            .iter()
            .map(|row| {
                let group = satisfaction_group(row);
                (group.key.clone(), group)
            })
            .collect();

        let reasons = sqlx::query(concat!(
            "SELECT ",
            group_key!(),
            " AS key, r.reason, count(*) AS answers \
             FROM responses r JOIN closures c ON c.id = r.closure_id \
             WHERE r.reason <> '' AND ",
            stats_filter!(),
            " GROUP BY 1, 2"
        ))
        .bind(query.group_by)
        .bind(&query.agency)
        .bind(&query.precinct)
        .bind(&query.complaint_type)
        .bind(query.closed_from)
        .bind(query.closed_to)
        .fetch_all(&self.pool)
        .instrument(dispatch311_db::statement_span("SELECT", "responses"))
        .await?;
        for row in reasons {
            let key: String = row.get("key");
            // both queries group the same closures, so the key is there
            if let Some(group) = groups.get_mut(&key) {
                group.reasons.insert(row.get("reason"), row.get("answers"));
            }
        }
        Ok(groups.into_values().collect())
    }

    /// The anonymised answers of closures in `[from, to)`, streamed. Rows are
    /// sorted by their own fields, so not even their order says when an
    /// answer came in.
    pub fn export(
        &self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> ReceiverStream<StoreResult<ExportSurveyResultsResponse>> {
        let (sender, receiver) = mpsc::channel(256);
        let pool = self.pool.clone();
        tokio::spawn(async move {
            let mut rows = sqlx::query(concat!(
                "SELECT ",
                closure_month!(),
                " AS month, c.borough, c.agency, c.complaint_type, c.descriptor, \
                    r.agreement, r.reason, r.condition_corrected, c.resolution_code \
                 FROM responses r JOIN closures c ON c.id = r.closure_id \
                 WHERE ($1::timestamptz IS NULL OR c.closed_at >= $1) \
                   AND ($2::timestamptz IS NULL OR c.closed_at < $2) \
                 ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9"
            ))
            .bind(from)
            .bind(to)
            .fetch(&pool);
            loop {
                let next = match rows.try_next().await {
                    Ok(Some(row)) => Ok(export_row(&row)),
                    Ok(None) => return,
                    Err(e) => Err(StoreError::Database(e)),
                };
                let failed = next.is_err();
                // the caller went away: stop reading
                if sender.send(next).await.is_err() || failed {
                    return;
                }
            }
        });
        ReceiverStream::new(receiver)
    }
}

fn closed_request(row: &PgRow) -> ClosedRequest {
    let code = resolution_from_name(row.get("resolution_code")).unwrap_or_default();
    ClosedRequest {
        sr_number: row.get("sr_number"),
        agency: row.get("agency"),
        precinct: row.get("precinct"),
        complaint_type: row.get("complaint_type"),
        descriptor: row.get("descriptor"),
        resolution_code: code as i32,
        resolution_text: row.get("resolution_text"),
        closed_at: Some(to_timestamp(row.get("closed_at"))),
        complainant_consented: row.get("complainant_consented"),
        borough: row.get("borough"),
        closure_flagged: row.get("flagged"),
        closure_number: row.get::<i32, _>("closure_number") as u32,
        survey_token: String::new(),
        survey_token_expires_at: None,
    }
}

fn satisfaction_group(row: &PgRow) -> SatisfactionGroup {
    let closures: i64 = row.get("closures");
    let responses: i64 = row.get("responses");
    let strongly_agree: i64 = row.get("strongly_agree");
    let agree: i64 = row.get("agree");
    let disagree: i64 = row.get("disagree");
    let strongly_disagree: i64 = row.get("strongly_disagree");
    SatisfactionGroup {
        key: row.get("key"),
        responses,
        strongly_agree,
        agree,
        neither: row.get("neither"),
        disagree,
        strongly_disagree,
        share_satisfied: share(strongly_agree + agree, responses),
        share_dissatisfied: share(disagree + strongly_disagree, responses),
        reasons: Default::default(),
        reopened: row.get("reopened"),
        closures,
        share_closed_within_5_minutes: share(row.get("closed_quickly"), closures),
        share_with_summons: share(row.get("with_summons"), closures),
        flagged_closures: row.get("flagged"),
        requests_closed: row.get("requests_closed"),
        reports_per_job: share(row.get("requests_closed"), closures),
    }
}

fn export_row(row: &PgRow) -> ExportSurveyResultsResponse {
    ExportSurveyResultsResponse {
        month: row.get("month"),
        borough: row.get("borough"),
        agency: row.get("agency"),
        complaint_type: row.get("complaint_type"),
        descriptor: row.get("descriptor"),
        agreement: answers::agreement_from_name(row.get("agreement")) as i32,
        reason: answers::reason_from_name(row.get("reason")) as i32,
        condition_corrected: answers::condition_from_name(row.get("condition_corrected")) as i32,
        resolution_code: resolution_from_name(row.get("resolution_code")).unwrap_or_default()
            as i32,
    }
}

/// `at` as PostgreSQL keeps it (microseconds), so what an answer returns
/// now equals what a repeat reads back later.
fn stored_precision(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(6)
}

/// `part / whole`, 0 for an empty whole.
fn share(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}
