//! The publishing side of the queue and its inspection commands.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dispatch311_proto::jobs::v1::JobEnvelope;
use prost::Message;
use prost_types::Timestamp;
use redis::streams::{StreamInfoGroupsReply, StreamRangeReply};
use tracing::Instrument;

use crate::config::QueueConfig;
use crate::connection::{RedisClient, RedisConnection};
use crate::envelope::{delayed_member, due_millis, new_traced_envelope, to_system_time};
use crate::error::{QueueError, Result};
use crate::keys::{QueueKeys, validate_name};

/// Handle to the job queue; cheap to clone (one multiplexed Redis connection shared by
/// all clones, reconnected automatically; on a Redis Cluster, one per node).
#[derive(Clone)]
pub struct JobQueue {
    inner: Arc<Inner>,
}

struct Inner {
    config: QueueConfig,
    client: RedisClient,
    connection: RedisConnection,
}

/// Publishing commands grouped by queue. A Redis Cluster runs a pipeline only
/// when all its keys are in one slot, and each queue is one slot (its name is
/// the keys' hash tag); on one server the pipelines go out together.
#[derive(Default)]
pub(crate) struct PublishBatch {
    pipes: BTreeMap<String, redis::Pipeline>,
}

impl PublishBatch {
    fn pipe(&mut self, queue: &str) -> &mut redis::Pipeline {
        self.pipes.entry(queue.to_owned()).or_default()
    }
}

/// A job that failed for good, as kept in the dead-letter stream.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// Id of the entry in the dead-letter stream.
    pub stream_id: String,
    /// The envelope of the last attempt; `None` when the bytes that arrived on the
    /// queue were not a valid envelope (`error` says so).
    pub envelope: Option<JobEnvelope>,
    /// Why the job was given up.
    pub error: String,
    /// When it was dead-lettered.
    pub failed_at: Option<SystemTime>,
}

/// Sizes of one queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Entries in the stream: jobs waiting for delivery plus jobs in flight.
    pub stream_len: u64,
    /// Jobs delivered to a consumer and not yet settled.
    pub pending: u64,
    /// Scheduled jobs and retries waiting for their time.
    pub delayed: u64,
    /// Jobs in the dead-letter stream.
    pub dead: u64,
}

impl std::fmt::Debug for JobQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobQueue")
            .field("key_prefix", &self.inner.config.key_prefix)
            .finish_non_exhaustive()
    }
}

impl JobQueue {
    /// Connects to Redis, failing if it cannot be reached now.
    pub async fn connect(config: QueueConfig) -> Result<Self> {
        let queue = Self::connect_lazy(config)?;
        let mut connection = queue.connection();
        redis::cmd("PING")
            .query_async::<()>(&mut connection)
            .await?;
        Ok(queue)
    }

    /// A queue that connects on first use: a service can start, and its outbox can
    /// accept jobs, while Redis is down. Commands fail until Redis is reachable.
    pub fn connect_lazy(config: QueueConfig) -> Result<Self> {
        config.validate()?;
        let client = RedisClient::open(&config)?;
        let connection = client.connect_lazy(Duration::from_secs(5))?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                client,
                connection,
            }),
        })
    }

    /// The settings this queue was connected with.
    pub fn config(&self) -> &QueueConfig {
        &self.inner.config
    }

    /// The Redis keys of `queue` (for inspection and tests).
    pub fn keys(&self, queue: &str) -> Result<QueueKeys> {
        QueueKeys::new(&self.inner.config.key_prefix, queue)
    }

    pub(crate) fn connection(&self) -> RedisConnection {
        self.inner.connection.clone()
    }

    /// A separate connection for blocking reads: a blocked `XREADGROUP` holds its
    /// connection, and would stall every command multiplexed behind it.
    pub(crate) fn blocking_connection(&self) -> Result<RedisConnection> {
        let response_timeout = self.inner.config.block + Duration::from_secs(5);
        self.inner.client.connect_lazy(response_timeout)
    }

    /// Publishes a job for immediate delivery and returns its job id. The job carries
    /// the context of a PRODUCER span `publish <queue>` (a child of the current span),
    /// so its consumer joins the same trace.
    pub async fn publish(
        &self,
        queue: &str,
        kind: &str,
        sr_id: &str,
        payload: &impl Message,
    ) -> Result<String> {
        let (envelope, span) = new_traced_envelope(queue, kind, sr_id, payload)?;
        self.publish_envelope(queue, &envelope)
            .instrument(span)
            .await?;
        Ok(envelope.job_id)
    }

    /// Publishes a job that must not be delivered before `deliver_at` (e.g. an SLA
    /// timer) and returns its job id.
    pub async fn schedule(
        &self,
        queue: &str,
        kind: &str,
        sr_id: &str,
        payload: &impl Message,
        deliver_at: SystemTime,
    ) -> Result<String> {
        let (mut envelope, span) = new_traced_envelope(queue, kind, sr_id, payload)?;
        envelope.deliver_at = Some(Timestamp::from(deliver_at));
        self.publish_envelope(queue, &envelope)
            .instrument(span)
            .await?;
        Ok(envelope.job_id)
    }

    /// Publishes an envelope that is already built (by the outbox, or a reconciler
    /// re-publishing a job). No span is created: the envelope carries the context of
    /// the span that built it. An envelope whose `deliver_at` is in the future goes to
    /// the delayed set.
    pub async fn publish_envelope(&self, queue: &str, envelope: &JobEnvelope) -> Result<()> {
        self.publish_envelopes([(queue, envelope)]).await
    }

    /// Publishes many built envelopes in one pipeline (one round trip).
    pub async fn publish_envelopes<'a>(
        &self,
        jobs: impl IntoIterator<Item = (&'a str, &'a JobEnvelope)>,
    ) -> Result<()> {
        let mut batch = PublishBatch::default();
        let now = SystemTime::now();
        for (queue, envelope) in jobs {
            self.add_envelope(&mut batch, queue, envelope, now)?;
        }
        self.send_batch(&batch).await
    }

    /// Adds the commands publishing `envelope` to `batch`: `XADD` to the stream, or
    /// `ZADD` to the delayed set when it is not due yet.
    pub(crate) fn add_envelope(
        &self,
        batch: &mut PublishBatch,
        queue: &str,
        envelope: &JobEnvelope,
        now: SystemTime,
    ) -> Result<()> {
        validate_name("job kind", &envelope.kind)?;
        let keys = self.keys(queue)?;
        let pipe = batch.pipe(queue);
        match to_system_time(envelope.deliver_at.as_ref()).filter(|at| *at > now) {
            Some(deliver_at) => {
                pipe.zadd(
                    &keys.delayed,
                    delayed_member(envelope),
                    due_millis(deliver_at),
                )
                .ignore();
            }
            None => {
                pipe.xadd(
                    &keys.stream,
                    "*",
                    &[
                        ("job_id", envelope.job_id.as_bytes()),
                        ("kind", envelope.kind.as_bytes()),
                        ("envelope", envelope.encode_to_vec().as_slice()),
                    ],
                )
                .ignore();
            }
        }
        Ok(())
    }

    /// Adds bytes that are not a valid envelope to `batch` as they are, so the
    /// consumer dead-letters them where people look for failed jobs.
    pub(crate) fn add_raw(
        &self,
        batch: &mut PublishBatch,
        queue: &str,
        bytes: &[u8],
    ) -> Result<()> {
        let keys = self.keys(queue)?;
        batch
            .pipe(queue)
            .xadd(&keys.stream, "*", &[("envelope", bytes)])
            .ignore();
        Ok(())
    }

    /// Sends `batch`, a pipeline per queue (each in a span named after its
    /// queue), all at once. With `wait_replicas`, each pipeline ends in `WAIT`
    /// and counts as sent only when that many replicas hold it.
    pub(crate) async fn send_batch(&self, batch: &PublishBatch) -> Result<()> {
        let wait_replicas = self.inner.config.wait_replicas;
        let sends = batch.pipes.iter().map(|(queue, pipe)| async move {
            let mut pipe = pipe.clone();
            let commands = pipe.len();
            if wait_replicas > 0 {
                pipe.cmd("WAIT")
                    .arg(wait_replicas)
                    .arg(REPLICATION_WAIT.as_millis() as u64);
            }
            let replies: Vec<redis::Value> = pipe
                .query_async(&mut self.connection())
                .instrument(crate::envelope::redis_span("PIPELINE", queue, commands))
                .await?;
            if wait_replicas > 0 {
                let replicas = match replies.last() {
                    Some(redis::Value::Int(replicas)) => *replicas,
                    _ => 0,
                };
                if replicas < i64::from(wait_replicas) {
                    return Err(QueueError::NotReplicated {
                        queue: queue.clone(),
                        replicas,
                        wanted: wait_replicas,
                    });
                }
            }
            Ok(())
        });
        futures::future::try_join_all(sends).await?;
        Ok(())
    }

    /// The oldest `count` dead-lettered jobs of `queue`.
    pub async fn dead_letters(&self, queue: &str, count: usize) -> Result<Vec<DeadLetter>> {
        let keys = self.keys(queue)?;
        let reply: StreamRangeReply = redis::cmd("XRANGE")
            .arg(&keys.dead)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(count)
            .query_async(&mut self.connection())
            .await?;
        Ok(reply
            .ids
            .into_iter()
            .map(|entry| {
                let envelope = entry
                    .get::<Vec<u8>>("envelope")
                    .and_then(|bytes| JobEnvelope::decode(bytes.as_slice()).ok());
                let failed_at = entry
                    .get::<String>("failed_at")
                    .and_then(|text| chrono::DateTime::parse_from_rfc3339(&text).ok())
                    .map(SystemTime::from);
                DeadLetter {
                    envelope,
                    error: entry.get("error").unwrap_or_default(),
                    failed_at,
                    stream_id: entry.id,
                }
            })
            .collect())
    }

    /// Every job of `queue` that is still to be handled: scheduled ones (the
    /// delayed set) and published ones not yet settled (the stream). A
    /// reconciler compares this with its own tables to publish again what
    /// Redis lost. Reads the whole queue: for queues of bounded size, such as
    /// timers (about one per open job).
    pub async fn outstanding(&self, queue: &str) -> Result<Vec<JobEnvelope>> {
        let keys = self.keys(queue)?;
        let mut connection = self.connection();
        let members: Vec<Vec<u8>> = redis::cmd("ZRANGE")
            .arg(&keys.delayed)
            .arg(0)
            .arg(-1)
            .query_async(&mut connection)
            .await?;
        let mut envelopes: Vec<JobEnvelope> = members
            .iter()
            .filter_map(|member| {
                // `<job_id>\n<kind>\n<envelope>` (see `delayed_member`)
                let mut parts = member.splitn(3, |b| *b == b'\n');
                let envelope = parts.nth(2)?;
                JobEnvelope::decode(envelope).ok()
            })
            .collect();
        let reply: StreamRangeReply = redis::cmd("XRANGE")
            .arg(&keys.stream)
            .arg("-")
            .arg("+")
            .query_async(&mut connection)
            .await?;
        envelopes.extend(reply.ids.into_iter().filter_map(|entry| {
            entry
                .get::<Vec<u8>>("envelope")
                .and_then(|bytes| JobEnvelope::decode(bytes.as_slice()).ok())
        }));
        Ok(envelopes)
    }

    /// Current sizes of `queue`.
    pub async fn stats(&self, queue: &str) -> Result<QueueStats> {
        let keys = self.keys(queue)?;
        let mut connection = self.connection();
        let (stream_len, delayed, dead): (u64, u64, u64) = redis::pipe()
            .xlen(&keys.stream)
            .zcard(&keys.delayed)
            .xlen(&keys.dead)
            .query_async(&mut connection)
            .await?;
        // pending entries are still in the stream (they are deleted only when settled),
        // so an empty stream has none, and may not even exist for XINFO
        let pending = if stream_len == 0 {
            0
        } else {
            let groups: StreamInfoGroupsReply = redis::cmd("XINFO")
                .arg("GROUPS")
                .arg(&keys.stream)
                .query_async(&mut connection)
                .await?;
            groups.groups.iter().map(|group| group.pending as u64).sum()
        };
        Ok(QueueStats {
            stream_len,
            pending,
            delayed,
            dead,
        })
    }
}

/// How long a publish waits for the replicas (`WAIT`): on loopback or in one
/// data centre a replica answers in milliseconds, and a slower one means it is
/// gone, so the publish fails and is retried.
const REPLICATION_WAIT: Duration = Duration::from_secs(1);
