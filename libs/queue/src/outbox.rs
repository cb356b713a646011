//! The transactional outbox (DESIGN invariant 1): a job is recorded in the service's
//! own PostgreSQL transaction, next to the state change that caused it, and a relay
//! publishes it to Redis after commit.
//!
//! - a rolled-back transaction publishes nothing;
//! - a committed one is published even if Redis is down at the time: the rows stay
//!   until a relay manages to publish them;
//! - a row is deleted in the same transaction that selected it, after its job was
//!   published, so a crash in between publishes the job again (at-least-once, like
//!   every delivery on the queue) and never loses it; for the same reason that
//!   transaction commits without waiting for the disk;
//! - several relays can run at once (one per replica): `FOR UPDATE SKIP LOCKED` gives
//!   each its own rows.
//!
//! Each service schema has an `outbox` table ([`OUTBOX_TABLE_DDL`]), created by the
//! service's migrations. Queries use the unqualified name: the service's pool sets
//! `search_path` to its schema.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dispatch311_proto::jobs::v1::JobEnvelope;
use prost::Message;
use sqlx::{PgConnection, PgPool};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::backoff::Backoff;
use crate::envelope::new_traced_envelope;
use crate::error::Result;
use crate::keys::validate_name;
use crate::queue::{JobQueue, PublishBatch};

/// The outbox table every service schema has.
pub const OUTBOX_TABLE_DDL: &str = "CREATE TABLE outbox (
    id BIGSERIAL PRIMARY KEY,
    queue TEXT NOT NULL,
    envelope BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
)";

/// Rows published per relay transaction.
const RELAY_BATCH: i64 = 500;
/// Longest wait between two looks at the table when nobody notifies the relay.
const RELAY_INTERVAL: Duration = Duration::from_millis(500);
const RELAY_BACKOFF_MIN: Duration = Duration::from_millis(200);
const RELAY_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Records a job in the caller's transaction (`conn` is usually `&mut *tx`) and
/// returns its job id. The job gets the same envelope and PRODUCER span as
/// [`JobQueue::publish`]; the span is a child of the current span, and the consumer
/// of the job will be its child. Notify the relay after commit for low latency.
pub async fn enqueue(
    conn: &mut PgConnection,
    queue: &str,
    kind: &str,
    sr_id: &str,
    payload: &impl Message,
) -> Result<String> {
    let (envelope, span) = new_traced_envelope(queue, kind, sr_id, payload)?;
    insert(conn, queue, &envelope).instrument(span).await?;
    Ok(envelope.job_id)
}

/// A job ready for the outbox, for a caller that writes it with its own
/// statement (one round trip for the change and its jobs, e.g.
/// `INSERT INTO outbox (queue, envelope) SELECT * FROM unnest($1::text[], $2::bytea[])`).
/// Built exactly as [`enqueue`] builds it, PRODUCER span included.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub queue: String,
    pub envelope: Vec<u8>,
    pub job_id: String,
}

/// Builds the outbox row of a job without writing it; see [`OutboxRow`].
pub fn prepare(queue: &str, kind: &str, sr_id: &str, payload: &impl Message) -> Result<OutboxRow> {
    let (envelope, _span) = new_traced_envelope(queue, kind, sr_id, payload)?;
    Ok(OutboxRow {
        queue: queue.to_string(),
        envelope: envelope.encode_to_vec(),
        job_id: envelope.job_id,
    })
}

/// The queue names and envelopes of `rows` as two arrays, to bind to
/// `unnest($1::text[], $2::bytea[])`.
pub fn columns(rows: &[OutboxRow]) -> (Vec<&str>, Vec<&[u8]>) {
    rows.iter()
        .map(|r| (r.queue.as_str(), r.envelope.as_slice()))
        .unzip()
}

/// Records an envelope that is already built, e.g. one with `deliver_at` set for a
/// timer (the relay puts such jobs in the delayed set).
pub async fn enqueue_envelope(
    conn: &mut PgConnection,
    queue: &str,
    envelope: &JobEnvelope,
) -> Result<()> {
    validate_name("queue name", queue)?;
    validate_name("job kind", &envelope.kind)?;
    insert(conn, queue, envelope).await
}

async fn insert(conn: &mut PgConnection, queue: &str, envelope: &JobEnvelope) -> Result<()> {
    sqlx::query("INSERT INTO outbox (queue, envelope) VALUES ($1, $2)")
        .bind(queue)
        .bind(envelope.encode_to_vec())
        .execute(conn)
        .instrument(dispatch311_db::statement_span("INSERT", "outbox"))
        .await?;
    Ok(())
}

/// Publishes committed outbox rows to the queue; see the module docs.
#[derive(Debug)]
pub struct OutboxRelay {
    pool: PgPool,
    queue: JobQueue,
    notify: Arc<Notify>,
}

impl OutboxRelay {
    pub fn new(pool: PgPool, queue: JobQueue) -> Self {
        Self {
            pool,
            queue,
            notify: Arc::new(Notify::new()),
        }
    }

    /// Call `notify_one()` on this after committing a transaction that enqueued jobs,
    /// so the relay publishes them now rather than at its next poll.
    pub fn notifier(&self) -> Arc<Notify> {
        Arc::clone(&self.notify)
    }

    /// Publishes rows until `shutdown` is cancelled. Database and Redis errors are
    /// logged and retried with backoff; the rows stay until they are published.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Backoff::new(RELAY_BACKOFF_MIN, RELAY_BACKOFF_MAX);
        let backlog = Backlog::observed();
        let mut backlog_read_at: Option<std::time::Instant> = None;
        while !shutdown.is_cancelled() {
            if backlog_read_at.is_none_or(|at| at.elapsed() >= BACKLOG_INTERVAL) {
                backlog_read_at = Some(std::time::Instant::now());
                backlog.read(&self.pool).await;
            }
            let wait = match self.relay_once().await {
                // a full batch means there are probably more rows: go again at once
                Ok(published) if published as i64 == RELAY_BATCH => {
                    backoff.reset();
                    continue;
                }
                Ok(_) => {
                    backoff.reset();
                    RELAY_INTERVAL
                }
                Err(error) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %error, retry_in_ms = delay.as_millis() as u64, "outbox relay failed, rows kept");
                    delay
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.notify.notified() => {}
                () = shutdown.cancelled() => {}
            }
        }
    }

    /// Publishes one batch of rows (oldest first) and deletes them; returns how many
    /// rows were handled. On error nothing is deleted.
    pub async fn relay_once(&self) -> Result<usize> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<(i64, String, Vec<u8>)> = sqlx::query_as(
            "SELECT id, queue, envelope FROM outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(RELAY_BATCH)
        .fetch_all(&mut *tx)
        .instrument(dispatch311_db::statement_span("SELECT", "outbox"))
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }

        let mut ids = Vec::with_capacity(rows.len());
        let mut batch = PublishBatch::default();
        let now = SystemTime::now();
        // one span per row, in the trace of the work that enqueued it: how long
        // the row waited for the relay and how long publishing it took
        let mut relay_spans = Vec::with_capacity(rows.len());
        for (id, queue, bytes) in &rows {
            ids.push(*id);
            if let Err(error) = validate_name("queue name", queue) {
                // no key can be built for it, so it can never be published; keeping it
                // would only make every batch trip over it
                tracing::error!(outbox_id = id, error = %error, "dropping outbox row with an unusable queue name");
                continue;
            }
            let envelope = JobEnvelope::decode(bytes.as_slice())
                .ok()
                .filter(|envelope| validate_name("job kind", &envelope.kind).is_ok());
            match envelope {
                Some(envelope) => {
                    relay_spans.push(relay_span(queue, &envelope, now));
                    self.queue.add_envelope(&mut batch, queue, &envelope, now)?;
                }
                // published as it is: the consumer dead-letters it where people look
                // for failed jobs, instead of it blocking the outbox
                None => self.queue.add_raw(&mut batch, queue, bytes)?,
            }
        }
        let published = self.queue.send_batch(&batch);
        match relay_spans.first() {
            Some(span) => published.instrument(span.clone()).await?,
            None => published.await?,
        }
        drop(relay_spans);

        // The delete need not wait for the disk: a crash that loses it
        // leaves the rows, which are published again (at-least-once, as
        // above). Half of a busy suite's commits are relays; this spares
        // PostgreSQL their WAL flushes.
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM outbox WHERE id = ANY($1)")
            .bind(&ids)
            .execute(&mut *tx)
            .instrument(dispatch311_db::statement_span("DELETE", "outbox"))
            .await?;
        tx.commit().await?;
        tracing::debug!(published = rows.len(), "outbox rows published");
        Ok(rows.len())
    }
}

/// The span `relay <queue>` of one outbox row: a child of the span that
/// enqueued it, with how long the row waited.
fn relay_span(queue: &str, envelope: &JobEnvelope, now: SystemTime) -> tracing::Span {
    if !dispatch311_telemetry::detail_spans() {
        return tracing::Span::none();
    }
    let span = tracing::info_span!(
        "relay",
        otel.name = %format_args!("relay {queue}"),
        otel.kind = "producer",
        messaging.system = "redis",
        messaging.destination.name = %queue,
        messaging.message.id = %envelope.job_id,
        dispatch311.outbox.wait_ms = crate::envelope::to_system_time(envelope.enqueued_at.as_ref())
            .and_then(|at| now.duration_since(at).ok())
            .map_or(0, |wait| i64::try_from(wait.as_millis()).unwrap_or(i64::MAX)),
    );
    // set before the span is entered, or it would start a trace of its own
    let _ = span.set_parent(dispatch311_telemetry::propagation::extract_context(
        &envelope.trace_context,
    ));
    span
}

/// How often the relay counts the rows waiting, for the metrics.
const BACKLOG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// `dispatch311.outbox.rows` and `dispatch311.outbox.oldest.age`: the rows
/// waiting for the relay and how long the oldest has waited, as last counted.
struct Backlog {
    figures: Arc<std::sync::Mutex<Option<(i64, f64)>>>,
}

impl Backlog {
    fn observed() -> Self {
        let figures: Arc<std::sync::Mutex<Option<(i64, f64)>>> = Arc::default();
        let meter = dispatch311_telemetry::metrics::meter();
        let rows = Arc::clone(&figures);
        meter
            .i64_observable_gauge("dispatch311.outbox.rows")
            .with_unit("{row}")
            .with_description("Rows of the outbox waiting for the relay")
            .with_callback(move |observer| {
                if let Some((count, _)) = *rows.lock().unwrap_or_else(|e| e.into_inner()) {
                    observer.observe(count, &[]);
                }
            })
            .build();
        let age = Arc::clone(&figures);
        meter
            .f64_observable_gauge("dispatch311.outbox.oldest.age")
            .with_unit("s")
            .with_description("How long the oldest row of the outbox has waited for the relay")
            .with_callback(move |observer| {
                if let Some((_, seconds)) = *age.lock().unwrap_or_else(|e| e.into_inner()) {
                    observer.observe(seconds, &[]);
                }
            })
            .build();
        Self { figures }
    }

    async fn read(&self, pool: &PgPool) {
        let counted: std::result::Result<(i64, f64), sqlx::Error> = sqlx::query_as(
            "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at))::float8, 0) \
             FROM outbox",
        )
        .fetch_one(pool)
        .await;
        match counted {
            Ok(figures) => {
                *self.figures.lock().unwrap_or_else(|e| e.into_inner()) = Some(figures);
            }
            Err(error) => tracing::debug!(%error, "counting the outbox failed"),
        }
    }
}
