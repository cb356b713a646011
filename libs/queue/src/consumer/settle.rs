//! Settling a job: turning the handler's outcome into one atomic change in Redis.

use std::time::{Duration, SystemTime};

use dispatch311_proto::jobs::v1::JobEnvelope;
use prost::Message;
use prost_types::Timestamp;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, Span};

use super::metrics::Settled;
use super::{Outcome, Shared};
use crate::backoff::Backoff;
use crate::envelope::{delayed_member, due_millis};
use crate::scripts;

/// Failed attempts to settle a job before giving up during shutdown; the job then
/// stays pending and is redelivered after `claim_idle`.
const SETTLE_TRIES_AT_SHUTDOWN: u32 = 5;

impl Shared {
    /// Turns an outcome into the settle operation and runs it; called inside the
    /// consumer span so the log lines and the span status belong to the job's trace.
    pub(super) async fn conclude(
        &self,
        shutdown: &CancellationToken,
        stream_id: &str,
        mut envelope: JobEnvelope,
        outcome: Outcome,
    ) -> Settled {
        let config = self.queue.config();
        let settle = match outcome {
            Outcome::Done => Settle::Ack,
            Outcome::Retry { error, after } if envelope.attempt < config.max_attempts => {
                let delay = after.unwrap_or_else(|| {
                    retry_backoff(envelope.attempt, config.base_backoff, config.max_backoff)
                });
                tracing::warn!(
                    error = %error,
                    attempt = envelope.attempt,
                    retry_in_ms = delay.as_millis() as u64,
                    "job failed, retrying"
                );
                record_error(&error);
                // a handler asking for an absurd delay gets the longest configured one
                let due = SystemTime::now()
                    .checked_add(delay)
                    .unwrap_or_else(|| SystemTime::now() + config.max_backoff);
                envelope.attempt += 1;
                envelope.last_error = error;
                envelope.deliver_at = Some(Timestamp::from(due));
                Settle::Retry {
                    due_ms: due_millis(due),
                    member: delayed_member(&envelope),
                }
            }
            Outcome::Retry { error, .. } => {
                let reason = format!(
                    "gave up after {} attempts, last error: {error}",
                    envelope.attempt
                );
                tracing::error!(error = %error, attempt = envelope.attempt, "job failed on its last attempt, dead-lettering");
                record_error(&reason);
                envelope.last_error = error;
                Settle::DeadLetter(self.dead_letter_fields(
                    &envelope.encode_to_vec(),
                    Some(&envelope),
                    &reason,
                ))
            }
            Outcome::DeadLetter { reason } => {
                tracing::error!(reason = %reason, attempt = envelope.attempt, "job dead-lettered by its handler");
                record_error(&reason);
                envelope.last_error.clone_from(&reason);
                Settle::DeadLetter(self.dead_letter_fields(
                    &envelope.encode_to_vec(),
                    Some(&envelope),
                    &reason,
                ))
            }
        };
        let settled = match settle {
            Settle::Ack => Settled::Done,
            Settle::Retry { .. } => Settled::Retry,
            Settle::DeadLetter(_) => Settled::DeadLetter,
        };
        self.settle(shutdown, stream_id, settle).await;
        if matches!(settled, Settled::Retry) {
            self.promote_now.notify_one();
        }
        settled
    }

    /// Field/value pairs of a dead-letter entry.
    pub(super) fn dead_letter_fields(
        &self,
        envelope_bytes: &[u8],
        envelope: Option<&JobEnvelope>,
        error: &str,
    ) -> Vec<(&'static str, Vec<u8>)> {
        let failed_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut fields = vec![
            ("envelope", envelope_bytes.to_vec()),
            ("error", error.as_bytes().to_vec()),
            ("queue", self.queue_name.as_bytes().to_vec()),
            ("failed_at", failed_at.into_bytes()),
            ("consumer", self.name.as_bytes().to_vec()),
        ];
        if let Some(envelope) = envelope {
            fields.push(("job_id", envelope.job_id.as_bytes().to_vec()));
            fields.push(("kind", envelope.kind.as_bytes().to_vec()));
            fields.push(("attempt", envelope.attempt.to_string().into_bytes()));
        }
        fields
    }

    /// Applies a settle operation, retrying Redis errors: a job is never dropped
    /// silently. During shutdown it gives up after a few tries; the job then stays
    /// pending and another consumer reclaims it.
    pub(super) async fn settle(
        &self,
        shutdown: &CancellationToken,
        stream_id: &str,
        settle: Settle,
    ) {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let mut failures = 0;
        loop {
            match self.try_settle(stream_id, &settle).await {
                Ok(true) => return,
                Ok(false) => {
                    // by a consumer that reclaimed it, or by an earlier try whose
                    // reply was lost
                    tracing::info!(stream_id = %stream_id, "job was already settled");
                    return;
                }
                Err(error) => {
                    failures += 1;
                    if shutdown.is_cancelled() && failures >= SETTLE_TRIES_AT_SHUTDOWN {
                        tracing::error!(
                            stream_id = %stream_id,
                            error = %error,
                            "giving up settling job at shutdown, it will be redelivered"
                        );
                        return;
                    }
                    let delay = backoff.next_delay();
                    tracing::warn!(
                        stream_id = %stream_id,
                        error = %error,
                        retry_in_ms = delay.as_millis() as u64,
                        "settling job failed"
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// Runs the settle script; `Ok(false)` when the entry was no longer pending.
    async fn try_settle(&self, stream_id: &str, settle: &Settle) -> redis::RedisResult<bool> {
        let mut connection = self.queue.connection();
        let span = crate::envelope::redis_span(settle.operation(), &self.queue_name, 1);
        let settled: i64 = async {
            match settle {
                Settle::Ack => {
                    scripts::ACK
                        .key(&self.keys.stream)
                        .arg(&self.group)
                        .arg(stream_id)
                        .invoke_async(&mut connection)
                        .await
                }
                Settle::Retry { due_ms, member } => {
                    scripts::RETRY
                        .key(&self.keys.stream)
                        .key(&self.keys.delayed)
                        .arg(&self.group)
                        .arg(stream_id)
                        .arg(*due_ms)
                        .arg(member.as_slice())
                        .invoke_async(&mut connection)
                        .await
                }
                Settle::DeadLetter(fields) => {
                    let mut invocation = scripts::DEAD_LETTER.key(&self.keys.stream);
                    invocation
                        .key(&self.keys.dead)
                        .arg(&self.group)
                        .arg(stream_id);
                    for (field, value) in fields {
                        invocation.arg(*field).arg(value.as_slice());
                    }
                    invocation.invoke_async(&mut connection).await
                }
            }
        }
        .instrument(span)
        .await?;
        Ok(settled == 1)
    }
}

/// How a job leaves the stream.
pub(super) enum Settle {
    Ack,
    Retry { due_ms: i64, member: Vec<u8> },
    DeadLetter(Vec<(&'static str, Vec<u8>)>),
}

impl Settle {
    /// The name its script's span has.
    fn operation(&self) -> &'static str {
        match self {
            Settle::Ack => "ack",
            Settle::Retry { .. } => "retry",
            Settle::DeadLetter(_) => "dead_letter",
        }
    }
}

fn record_error(message: &str) {
    let span = Span::current();
    span.record("otel.status_code", "ERROR");
    span.record("otel.status_message", message);
}

/// Delay before retrying after failed attempt `attempt` (1-based): `base * 2^(attempt-1)`,
/// capped at `max`, then scaled by a random factor in [0.5, 1] so jobs that failed
/// together do not all come back at the same instant.
fn retry_backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    let exponent = attempt.saturating_sub(1).min(31);
    let delay = base.saturating_mul(1 << exponent).min(max);
    delay.mul_f64(0.5 + fastrand::f64() * 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_backoff_grows_and_is_capped() {
        let base = Duration::from_secs(1);
        let max = Duration::from_secs(60);
        for _ in 0..100 {
            let first = retry_backoff(1, base, max);
            assert!(first >= Duration::from_millis(500) && first <= base);
            let fourth = retry_backoff(4, base, max);
            assert!(fourth >= Duration::from_secs(4) && fourth <= Duration::from_secs(8));
            assert!(retry_backoff(40, base, max) <= max);
        }
    }
}
