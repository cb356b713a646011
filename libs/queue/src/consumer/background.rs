//! The background tasks of a consumer: promoting due delayed jobs, and keeping its own
//! jobs while reclaiming abandoned ones.

use std::sync::{Arc, PoisonError};
use std::time::{Duration, SystemTime};

use redis::streams::{StreamClaimReply, StreamPendingCountReply};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::settle::Settle;
use super::{ERROR_BACKOFF_MAX, ERROR_BACKOFF_MIN, Outcome, Shared, decode_entry};
use crate::backoff::Backoff;
use crate::envelope::{now_millis, queue_wait};
use crate::scripts;

/// Longest wait of the promoter between two checks of the delayed set.
const PROMOTE_INTERVAL: Duration = Duration::from_millis(250);
/// Delayed jobs moved per promotion script call; bounds the time the script blocks Redis.
const PROMOTE_BATCH: usize = 200;
/// Abandoned entries examined per reclaim round.
const RECLAIM_BATCH: usize = 100;

impl Shared {
    /// Moves due delayed jobs to the stream; returns how many moved and when the next
    /// one is due.
    async fn promote(&self) -> redis::RedisResult<(usize, Option<i64>)> {
        let (moved, next_due): (usize, i64) = scripts::PROMOTE
            .key(&self.keys.delayed)
            .key(&self.keys.stream)
            .arg(now_millis())
            .arg(PROMOTE_BATCH)
            .invoke_async(&mut self.queue.connection())
            .await?;
        Ok((moved, (next_due >= 0).then_some(next_due)))
    }

    /// Resets the idle time of the jobs this consumer is working on, so nobody takes
    /// them for abandoned while a slow handler runs.
    async fn refresh_in_flight(&self) -> redis::RedisResult<()> {
        let ids: Vec<String> = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        redis::cmd("XCLAIM")
            .arg(&self.keys.stream)
            .arg(&self.group)
            .arg(&self.name)
            .arg(0)
            .arg(&ids)
            .arg("JUSTID")
            .query_async::<()>(&mut self.queue.connection())
            .await
    }

    /// Claims jobs idle longer than `claim_idle` (their consumer died or lost them)
    /// and settles each as a failed attempt. Returns how many were reclaimed.
    async fn reclaim_abandoned(&self, shutdown: &CancellationToken) -> redis::RedisResult<usize> {
        let claim_idle_ms = self.queue.config().claim_idle.as_millis() as u64;
        let mut connection = self.queue.connection();
        // XPENDING first, rather than XAUTOCLAIM, to learn who abandoned each job
        let pending: StreamPendingCountReply = redis::cmd("XPENDING")
            .arg(&self.keys.stream)
            .arg(&self.group)
            .arg("IDLE")
            .arg(claim_idle_ms)
            .arg("-")
            .arg("+")
            .arg(RECLAIM_BATCH)
            .query_async(&mut connection)
            .await?;
        let abandoned: Vec<_> = {
            let in_flight = self
                .in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            pending
                .ids
                .into_iter()
                .filter(|pending| !in_flight.contains(&pending.id))
                .collect()
        };
        if abandoned.is_empty() {
            return Ok(0);
        }
        let ids: Vec<&str> = abandoned
            .iter()
            .map(|pending| pending.id.as_str())
            .collect();
        // the minimum idle time makes the claim atomic: a consumer that claimed an
        // entry first has reset its idle time, so nobody else gets it
        let claimed: StreamClaimReply = redis::cmd("XCLAIM")
            .arg(&self.keys.stream)
            .arg(&self.group)
            .arg(&self.name)
            .arg(claim_idle_ms)
            .arg(&ids)
            .query_async(&mut connection)
            .await?;
        for entry in &claimed.ids {
            let previous_owner = abandoned
                .iter()
                .find(|pending| pending.id == entry.id)
                .map_or("unknown", |pending| pending.consumer.as_str());
            let error = format!("abandoned by consumer {previous_owner}");
            match decode_entry(entry) {
                Ok(envelope) => {
                    // the lost delivery gets a consumer span of its own, so the trace of
                    // the request shows the attempt and why it failed
                    let span =
                        self.consumer_span(&envelope, queue_wait(&envelope, SystemTime::now()));
                    span.in_scope(|| {
                        tracing::warn!(
                            queue = %self.queue_name,
                            job_id = %envelope.job_id,
                            attempt = envelope.attempt,
                            previous_owner = %previous_owner,
                            "reclaimed an abandoned job"
                        );
                    });
                    self.metrics.delivered();
                    let started = std::time::Instant::now();
                    let settled = self
                        .conclude(shutdown, &entry.id, envelope, Outcome::retry(error))
                        .instrument(span)
                        .await;
                    self.metrics.settled(settled, started);
                }
                Err((bytes, decode_error)) => {
                    let reason = format!("{error}; {decode_error}");
                    let fields = self.dead_letter_fields(&bytes, None, &reason);
                    self.settle(shutdown, &entry.id, Settle::DeadLetter(fields))
                        .await;
                }
            }
        }
        self.metrics.reclaimed(claimed.ids.len());
        Ok(claimed.ids.len())
    }
}

/// Promotes due delayed jobs until stopped.
pub(super) async fn promote_loop(shared: Arc<Shared>, stop: CancellationToken) {
    let mut backoff = Backoff::new(ERROR_BACKOFF_MIN, ERROR_BACKOFF_MAX);
    loop {
        let wait = match shared.promote().await {
            Ok((moved, next_due)) => {
                backoff.reset();
                if moved > 0 {
                    tracing::debug!(queue = %shared.queue_name, moved, "promoted due jobs");
                }
                if moved == PROMOTE_BATCH {
                    Duration::ZERO
                } else {
                    next_due.map_or(PROMOTE_INTERVAL, |due| {
                        let until_due = u64::try_from(due - now_millis()).unwrap_or(0);
                        Duration::from_millis(until_due.max(1)).min(PROMOTE_INTERVAL)
                    })
                }
            }
            Err(error) => {
                let delay = backoff.next_delay();
                tracing::warn!(queue = %shared.queue_name, error = %error, retry_in_ms = delay.as_millis() as u64, "promoting delayed jobs failed");
                delay
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shared.promote_now.notified() => {}
            () = stop.cancelled() => return,
        }
    }
}

/// How often a consumer refreshes its jobs and looks for abandoned ones: three times
/// per `claim_idle`, which leaves room for a slow or failed round.
fn keeper_interval(shared: &Shared) -> tokio::time::Interval {
    let period = (shared.queue.config().claim_idle / 3)
        .clamp(Duration::from_millis(20), Duration::from_secs(10));
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval
}

/// Refreshes this consumer's jobs in flight until stopped. Separate from reclaiming,
/// so a slow reclaim round never delays a refresh.
pub(super) async fn refresh_loop(shared: Arc<Shared>, stop: CancellationToken) {
    let mut interval = keeper_interval(&shared);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = stop.cancelled() => return,
        }
        if let Err(error) = shared.refresh_in_flight().await {
            tracing::warn!(queue = %shared.queue_name, error = %error, "refreshing jobs in flight failed");
        }
    }
}

/// Reclaims jobs abandoned by dead consumers until stopped or shutting down (a
/// stopping consumer takes on no more work).
pub(super) async fn reclaim_loop(
    shared: Arc<Shared>,
    stop: CancellationToken,
    shutdown: CancellationToken,
) {
    let mut interval = keeper_interval(&shared);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = stop.cancelled() => return,
            () = shutdown.cancelled() => return,
        }
        if let Err(error) = shared.reclaim_abandoned(&shutdown).await {
            tracing::warn!(queue = %shared.queue_name, error = %error, "reclaiming abandoned jobs failed");
        }
    }
}
