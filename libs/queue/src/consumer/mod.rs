//! The consuming side: a loop that reads jobs, runs a handler on each, and settles
//! each job according to the handler's [`Outcome`].
//!
//! Next to the read loop, every consumer runs three background tasks:
//!
//! - the **promoter** moves due jobs from the delayed set to the stream, at least every
//!   250 ms and sooner when the earliest delayed job is due sooner;
//! - the **refresher** resets the idle time of the jobs this consumer is still working
//!   on (`XCLAIM … JUSTID` to itself), so a slow handler is not taken for a dead one;
//! - the **reclaimer** claims jobs idle longer than `claim_idle`, which belong to a
//!   consumer that died, and settles each as a failed attempt.
//!
//! All are safe to run in every replica: promotion is one Lua script, and `XCLAIM`
//! with a minimum idle time lets only one consumer win an abandoned entry.
//!
//! Handling a job ends in one settle script (see `settle`): acknowledge and delete,
//! re-queue the next attempt in the delayed set, or move to the dead-letter stream.

mod background;
mod metrics;
mod settle;

use std::collections::HashSet;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use dispatch311_proto::jobs::v1::JobEnvelope;
use futures::FutureExt;
use prost::Message;
use redis::streams::{StreamId, StreamReadReply};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::backoff::Backoff;
use crate::connection::RedisConnection;
use crate::envelope::queue_wait;
use crate::error::Result;
use crate::keys::QueueKeys;
use crate::queue::JobQueue;
use settle::Settle;

/// Bounds of the back-off after a Redis error.
const ERROR_BACKOFF_MIN: Duration = Duration::from_millis(100);
const ERROR_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// One delivery of a job to a handler.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The job; `attempt` is 1 on the first delivery, `last_error` is the error of the
    /// previous attempt.
    pub envelope: JobEnvelope,
    /// Id of the stream entry carrying this delivery.
    pub stream_id: String,
    /// The queue it came from.
    pub queue: String,
    /// How long the job waited since it was enqueued or, for a scheduled job or a
    /// retry, since it became due.
    pub queue_wait: Duration,
}

impl Delivery {
    /// Decodes the payload as `M`. A payload that does not decode will never decode:
    /// answer it with [`Outcome::DeadLetter`].
    pub fn payload<M: Message + Default>(&self) -> Result<M, prost::DecodeError> {
        M::decode(self.envelope.payload.as_slice())
    }
}

/// What a handler made of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The job is done: acknowledge and delete it.
    Done,
    /// The job failed but may succeed later: deliver it again after `after`, or after
    /// the configured exponential backoff when `None`. Once `max_attempts` deliveries
    /// have failed the job is dead-lettered with this error.
    Retry {
        error: String,
        after: Option<Duration>,
    },
    /// The job can never succeed (e.g. its payload does not decode): move it to the
    /// dead-letter stream now.
    DeadLetter { reason: String },
}

impl Outcome {
    /// Retry with the configured backoff.
    pub fn retry(error: impl std::fmt::Display) -> Self {
        Self::Retry {
            error: error.to_string(),
            after: None,
        }
    }

    /// Retry after a delay chosen by the handler.
    pub fn retry_after(error: impl std::fmt::Display, after: Duration) -> Self {
        Self::Retry {
            error: error.to_string(),
            after: Some(after),
        }
    }

    pub fn dead_letter(reason: impl std::fmt::Display) -> Self {
        Self::DeadLetter {
            reason: reason.to_string(),
        }
    }
}

/// Handles the jobs of a queue. Handlers must be idempotent: a job may be delivered
/// more than once.
///
/// A service implements it on its worker struct and passes an `Arc` of it; any
/// `Fn(Delivery) -> impl Future<Output = Outcome>` closure is a handler too.
///
/// ```no_run
/// use std::sync::Arc;
///
/// use dispatch311_proto::jobs::v1::RouteJob;
/// use dispatch311_queue::{Delivery, JobHandler, JobQueue, Outcome, QueueConfig};
/// use tokio_util::sync::CancellationToken;
///
/// struct RouteWorker;
///
/// impl JobHandler for RouteWorker {
///     async fn handle(&self, delivery: Delivery) -> Outcome {
///         let Ok(job) = delivery.payload::<RouteJob>() else {
///             return Outcome::dead_letter("route job payload does not decode");
///         };
///         tracing::info!(sr_id = %job.sr_id, "routing");
///         Outcome::Done
///     }
/// }
///
/// # async fn start() -> dispatch311_queue::Result<()> {
/// let queue = JobQueue::connect(QueueConfig::default()).await?;
/// let shutdown = CancellationToken::new();
/// queue
///     .consumer("route", "routing")?
///     .run(Arc::new(RouteWorker), shutdown)
///     .await
/// # }
/// ```
pub trait JobHandler: Send + Sync + 'static {
    fn handle(&self, delivery: Delivery) -> impl Future<Output = Outcome> + Send;
}

impl<F, Fut> JobHandler for F
where
    F: Fn(Delivery) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send,
{
    fn handle(&self, delivery: Delivery) -> impl Future<Output = Outcome> + Send {
        self(delivery)
    }
}

/// A consumer of one queue in one consumer group; see [`Consumer::run`].
pub struct Consumer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.shared.fmt(f)
    }
}

/// State shared by the read loop, the job tasks and the background tasks.
struct Shared {
    queue: JobQueue,
    queue_name: String,
    group: String,
    name: String,
    keys: QueueKeys,
    /// Stream ids of the jobs whose handler is running: the refresher keeps them, the
    /// reclaimer leaves them alone.
    in_flight: Mutex<HashSet<String>>,
    /// Wakes the promoter early when a retry was just scheduled.
    promote_now: Notify,
    metrics: metrics::ConsumerMetrics,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("queue", &self.queue_name)
            .field("group", &self.group)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl JobQueue {
    /// A consumer of `queue` in consumer group `group` (the consuming service), with
    /// a name unique to this process.
    pub fn consumer(&self, queue: &str, group: &str) -> Result<Consumer> {
        crate::keys::validate_name("consumer group", group)?;
        let keys = self.keys(queue)?;
        Ok(Consumer::new(self.clone(), queue, group, keys))
    }
}

impl Consumer {
    pub(crate) fn new(queue: JobQueue, queue_name: &str, group: &str, keys: QueueKeys) -> Self {
        Self {
            shared: Arc::new(Shared {
                queue,
                queue_name: queue_name.to_owned(),
                group: group.to_owned(),
                name: consumer_name(),
                keys,
                in_flight: Mutex::new(HashSet::new()),
                promote_now: Notify::new(),
                metrics: metrics::ConsumerMetrics::new(queue_name, group),
            }),
        }
    }

    /// This consumer's name in the group: `<hostname>-<pid>-<random>`.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Reads and handles jobs until `shutdown` is cancelled, then stops reading, lets
    /// the jobs in flight finish and settles them, and returns. Shutdown waits at most
    /// `block` for a read in progress, plus the time the handlers in flight need.
    ///
    /// Redis errors are logged and retried with backoff; this returns an error only if
    /// the consumer cannot be set up at all.
    pub async fn run<H: JobHandler>(
        self,
        handler: Arc<H>,
        shutdown: CancellationToken,
    ) -> Result<()> {
        let shared = self.shared;
        let config = shared.queue.config().clone();
        let mut reader = shared.queue.blocking_connection()?;
        if !shared.ensure_group_until_ready(&shutdown).await {
            return Ok(());
        }
        tracing::info!(
            queue = %shared.queue_name,
            group = %shared.group,
            consumer = %shared.name,
            concurrency = config.concurrency,
            "consumer started"
        );

        // background tasks live in a JoinSet owned by this future: if the future is
        // dropped (the task running it aborted), they stop with it, as they would if
        // the process died
        let background_stop = CancellationToken::new();
        let mut background = JoinSet::new();
        background.spawn(background::promote_loop(
            Arc::clone(&shared),
            background_stop.clone(),
        ));
        background.spawn(background::refresh_loop(
            Arc::clone(&shared),
            background_stop.clone(),
        ));
        background.spawn(metrics::observe_loop(
            Arc::clone(&shared),
            background_stop.clone(),
        ));
        background.spawn(background::reclaim_loop(
            Arc::clone(&shared),
            background_stop.clone(),
            shutdown.clone(),
        ));

        let slots = Arc::new(Semaphore::new(config.concurrency));
        let mut jobs = JoinSet::new();
        let mut backoff = Backoff::new(ERROR_BACKOFF_MIN, ERROR_BACKOFF_MAX);
        while !shutdown.is_cancelled() {
            while let Some(finished) = jobs.try_join_next() {
                log_job_task_failure(finished);
            }
            let first_slot = tokio::select! {
                slot = Arc::clone(&slots).acquire_owned() => slot.expect("the semaphore is never closed"),
                () = shutdown.cancelled() => break,
            };
            let mut free_slots = vec![first_slot];
            while let Ok(slot) = Arc::clone(&slots).try_acquire_owned() {
                free_slots.push(slot);
            }
            // the read is not raced against shutdown: jobs Redis hands us are pending
            // for this consumer, and dropping them here would leave them to the
            // reclaimer, charged with a failed attempt
            match shared
                .read(&mut reader, free_slots.len(), config.block)
                .await
            {
                Ok(entries) => {
                    backoff.reset();
                    for (entry, slot) in entries.into_iter().zip(free_slots) {
                        let shared = Arc::clone(&shared);
                        let handler = Arc::clone(&handler);
                        let shutdown = shutdown.clone();
                        jobs.spawn(
                            async move { shared.process(handler, entry, slot, &shutdown).await },
                        );
                    }
                }
                Err(error) => {
                    if error.code() == Some("NOGROUP") {
                        // the stream or group vanished (e.g. Redis lost its data): recreate
                        shared.ensure_group_until_ready(&shutdown).await;
                    }
                    let delay = backoff.next_delay();
                    tracing::warn!(
                        queue = %shared.queue_name,
                        error = %error,
                        retry_in_ms = delay.as_millis() as u64,
                        "reading jobs failed"
                    );
                    drop(free_slots);
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = shutdown.cancelled() => {}
                    }
                }
            }
        }

        tracing::info!(
            queue = %shared.queue_name,
            consumer = %shared.name,
            in_flight = jobs.len(),
            "consumer stopping, waiting for jobs in flight"
        );
        while let Some(finished) = jobs.join_next().await {
            log_job_task_failure(finished);
        }
        background_stop.cancel();
        while background.join_next().await.is_some() {}
        tracing::info!(queue = %shared.queue_name, consumer = %shared.name, "consumer stopped");
        Ok(())
    }
}

fn log_job_task_failure(result: std::result::Result<(), tokio::task::JoinError>) {
    if let Err(error) = result {
        // handler panics are caught in `process`; this is a bug in the settling code
        tracing::error!(error = %error, "job task failed");
    }
}

impl Shared {
    /// Creates the consumer group (and the stream) if needed, retrying on Redis errors.
    /// Returns false if shutdown came first.
    async fn ensure_group_until_ready(&self, shutdown: &CancellationToken) -> bool {
        let mut backoff = Backoff::new(ERROR_BACKOFF_MIN, ERROR_BACKOFF_MAX);
        loop {
            match self.ensure_group().await {
                Ok(()) => return true,
                Err(error) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(
                        queue = %self.queue_name,
                        group = %self.group,
                        error = %error,
                        retry_in_ms = delay.as_millis() as u64,
                        "creating consumer group failed"
                    );
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = shutdown.cancelled() => return false,
                    }
                }
            }
        }
    }

    async fn ensure_group(&self) -> redis::RedisResult<()> {
        // start at 0, not $: jobs published before the service first started (e.g.
        // relayed from an outbox) belong to the group too
        let created = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.keys.stream)
            .arg(&self.group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async::<()>(&mut self.queue.connection())
            .await;
        match created {
            Err(error) if error.code() == Some("BUSYGROUP") => Ok(()),
            other => other,
        }
    }

    async fn read(
        &self,
        reader: &mut RedisConnection,
        count: usize,
        block: Duration,
    ) -> redis::RedisResult<Vec<StreamId>> {
        let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(&self.group)
            .arg(&self.name)
            .arg("COUNT")
            .arg(count)
            .arg("BLOCK")
            .arg(block.as_millis() as u64)
            .arg("STREAMS")
            .arg(&self.keys.stream)
            .arg(">")
            .query_async(reader)
            .await?;
        Ok(reply
            .map(|reply| reply.keys.into_iter().flat_map(|key| key.ids).collect())
            .unwrap_or_default())
    }

    /// Runs the handler on one delivered entry and settles it.
    async fn process<H: JobHandler>(
        self: Arc<Self>,
        handler: Arc<H>,
        entry: StreamId,
        _slot: OwnedSemaphorePermit,
        shutdown: &CancellationToken,
    ) {
        let _in_flight = InFlight::new(&self, &entry.id);
        let started = std::time::Instant::now();
        self.metrics.delivered();
        let envelope = match decode_entry(&entry) {
            Ok(envelope) => envelope,
            Err((bytes, error)) => {
                tracing::error!(queue = %self.queue_name, stream_id = %entry.id, error = %error, "dead-lettering a malformed job");
                let fields = self.dead_letter_fields(&bytes, None, &error);
                self.settle(shutdown, &entry.id, Settle::DeadLetter(fields))
                    .await;
                self.metrics.settled(metrics::Settled::DeadLetter, started);
                return;
            }
        };

        let queue_wait = queue_wait(&envelope, SystemTime::now());
        let span = self.consumer_span(&envelope, queue_wait);
        let delivery = Delivery {
            envelope: envelope.clone(),
            stream_id: entry.id.clone(),
            queue: self.queue_name.clone(),
            queue_wait,
        };
        let handled = span.in_scope(|| AssertUnwindSafe(handler.handle(delivery)).catch_unwind());
        let outcome = handled
            .instrument(span.clone())
            .await
            .unwrap_or_else(|panic| {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|text| (*text).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_owned());
                Outcome::retry(format!("handler panicked: {message}"))
            });
        let settled = self
            .conclude(shutdown, &entry.id, envelope, outcome)
            .instrument(span)
            .await;
        self.metrics.settled(settled, started);
    }

    /// The CONSUMER span `process <queue>` of one delivery, a child of the producer
    /// span whose context the envelope carries (retries keep that context).
    pub(super) fn consumer_span(&self, envelope: &JobEnvelope, queue_wait: Duration) -> Span {
        let span = tracing::info_span!(
            "process",
            otel.name = %format!("process {}", self.queue_name),
            otel.kind = "consumer",
            otel.status_code = tracing::field::Empty,
            otel.status_message = tracing::field::Empty,
            messaging.system = "redis",
            messaging.destination.name = %self.queue_name,
            messaging.operation.type = "process",
            messaging.message.id = %envelope.job_id,
            messaging.consumer.group.name = %self.group,
            dispatch311.sr.id = %envelope.sr_id,
            // i64, not u32/u64: tracing-opentelemetry exports unsigned integers as strings
            dispatch311.job.attempt = i64::from(envelope.attempt),
            dispatch311.queue.wait_ms = i64::try_from(queue_wait.as_millis()).unwrap_or(i64::MAX),
        );
        // the parent must be set before the span is first entered, or the span starts
        // a trace of its own; it fails only when no OpenTelemetry layer is installed
        let _ = span.set_parent(dispatch311_telemetry::propagation::extract_context(
            &envelope.trace_context,
        ));
        span
    }
}

/// Marks a stream id as in flight for as long as the guard lives (dropped also when
/// the job task is aborted).
struct InFlight<'a> {
    shared: &'a Shared,
    stream_id: String,
}

impl<'a> InFlight<'a> {
    fn new(shared: &'a Shared, stream_id: &str) -> Self {
        shared
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(stream_id.to_owned());
        Self {
            shared,
            stream_id: stream_id.to_owned(),
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.shared
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.stream_id);
    }
}

/// The envelope of a stream entry, or the raw bytes and what is wrong with them.
pub(super) fn decode_entry(
    entry: &StreamId,
) -> std::result::Result<JobEnvelope, (Vec<u8>, String)> {
    let Some(bytes) = entry.get::<Vec<u8>>("envelope") else {
        return Err((Vec::new(), "stream entry has no envelope field".to_owned()));
    };
    JobEnvelope::decode(bytes.as_slice())
        .map_err(|error| (bytes, format!("undecodable envelope: {error}")))
}
/// `<hostname>-<pid>-<random>`: unique per process, and readable in `XINFO CONSUMERS`.
fn consumer_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    let suffix: String = std::iter::repeat_with(fastrand::alphanumeric)
        .take(6)
        .collect();
    format!("{host}-{}-{suffix}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_names_differ_within_a_process() {
        let first = consumer_name();
        assert_ne!(first, consumer_name());
        assert!(first.contains(&format!("-{}-", std::process::id())));
    }
}
