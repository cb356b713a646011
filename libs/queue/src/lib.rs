//! The shared job queue of dispatch311, built on Redis Streams.
//!
//! Services hand work to each other through named queues (`route`, `dispatch`,
//! `status`, …). Every job travels as a [`JobEnvelope`]: a job id that stays the same
//! across retries, the kind of payload, the service request it is about, the attempt
//! number, the W3C trace context of the span that published it, and the encoded payload.
//!
//! # Keys
//!
//! Each queue owns three keys. The queue name sits inside a `{…}` hash tag, so all keys
//! of one queue land in the same Redis Cluster slot and the Lua scripts below may touch
//! them together:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `<prefix>dispatch311:{<queue>}:stream` | stream | jobs ready for delivery and jobs in flight |
//! | `<prefix>dispatch311:{<queue>}:delayed` | sorted set | scheduled jobs and retries, scored by due time (ms since the epoch) |
//! | `<prefix>dispatch311:{<queue>}:dead` | stream | jobs that failed for good, with their last error |
//!
//! The prefix is empty in production and unique per test, so tests sharing one Redis
//! never see each other's jobs.
//!
//! On a Redis Cluster (`QueueConfig::cluster`) each queue therefore lives on one shard;
//! publishing sends a pipeline per queue (a cluster refuses a pipeline across slots), and
//! `wait_replicas` makes a publish count only once replicas hold it, so the failover of
//! a master loses no job the outbox has let go of.
//!
//! # Delivery guarantees
//!
//! Delivery is **at least once**; handlers make the effect exactly once by being
//! idempotent (DESIGN invariant 2). Concretely:
//!
//! - each queue has exactly one consumer group (the consuming service); replicas of that
//!   service are consumers in the group, so each job goes to one replica at a time;
//! - nothing is acknowledged before its handler returned;
//! - a consumer that dies leaves its jobs pending; after `claim_idle` another consumer
//!   claims them and counts the delivery as a failed attempt, so a job that crashes its
//!   consumer every time ends in the dead-letter stream instead of looping forever;
//! - a live consumer refreshes the idle time of the jobs it is still working on, so a
//!   slow handler is not mistaken for a dead one;
//! - retries wait in the delayed set with exponential backoff and keep the original
//!   job id, `enqueued_at` and trace context; their `deliver_at` is set to the time the
//!   retry becomes due, like a scheduled job's.
//!
//! Redis 6.2 or later is required (`XPENDING … IDLE`).
//!
//! # Why entries are deleted after acknowledgement
//!
//! A stream keeps acknowledged entries until they are trimmed, and trimming by length
//! (`MAXLEN`) could drop jobs nobody has processed yet. Since a queue has a single group,
//! an acknowledged entry is finished: the consumer acknowledges it and deletes it
//! (`XACK` then `XDEL`) in one step. The stream therefore holds only the backlog and the
//! jobs in flight, and its length is a meaningful figure.
//!
//! # Why Lua
//!
//! Every state change that touches more than one key runs as one Lua script, so it
//! happens entirely or not at all, and each script starts with `XACK`: only the caller
//! whose `XACK` removed the entry from the pending list goes on to retry or dead-letter
//! it. When a slow consumer and a reclaiming consumer race for the same entry, exactly
//! one of them re-queues it. Promotion of due jobs from the delayed set is also one
//! script (read due members, `XADD` each, `ZREM` each), so with many replicas promoting
//! at once each job is promoted once.
//!
//! # Tracing
//!
//! Publishing creates a PRODUCER span `publish <queue>` whose context goes into the
//! envelope; the consumer runs the handler inside a CONSUMER span `process <queue>` whose
//! parent is that context, so one trace covers both sides of every queue hop (DESIGN
//! invariant 6). Retries keep the original context.
//!
//! # Transactional outbox
//!
//! [`outbox`] lets a service record jobs in its own PostgreSQL transaction and have a
//! relay publish them after commit, so an accepted request survives a Redis outage
//! (DESIGN invariant 1).

mod backoff;
pub mod batch;
mod config;
mod connection;
mod consumer;
mod envelope;
mod error;
mod keys;
pub mod outbox;
mod queue;
mod scripts;

pub use config::{QueueArgs, QueueConfig};
pub use consumer::{Consumer, Delivery, JobHandler, Outcome};
pub use dispatch311_proto::jobs::v1::JobEnvelope;
pub use envelope::{new_envelope, new_traced_envelope, producer_span};
pub use error::{QueueError, Result};
pub use keys::QueueKeys;
pub use queue::{DeadLetter, JobQueue, QueueStats};
