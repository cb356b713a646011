//! A consumer's metrics, per queue and consumer group: deliveries, handler
//! durations by outcome, reclaims; and, read from Redis every few seconds,
//! the stream's length, the group's lag and pending count, the age of its
//! oldest pending entry, the delayed set and the dead letters. Two replicas
//! report the same queue figures (Prometheus keeps them apart by instance).

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use opentelemetry::{
    KeyValue,
    metrics::{Counter, Histogram},
};
use redis::Value;
use tokio_util::sync::CancellationToken;

use super::Shared;

/// How often the queue's figures are read from Redis.
const OBSERVE_INTERVAL: Duration = Duration::from_secs(5);

/// Seconds: a handler's work, from a millisecond to a minute.
const DURATION_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

/// What a delivery's handling ended in, as a label.
#[derive(Debug, Clone, Copy)]
pub(super) enum Settled {
    Done,
    Retry,
    DeadLetter,
}

impl Settled {
    fn name(self) -> &'static str {
        match self {
            Settled::Done => "done",
            Settled::Retry => "retry",
            Settled::DeadLetter => "dead_letter",
        }
    }
}

/// The figures read from Redis, kept for the gauges' callbacks.
#[derive(Debug, Clone, Copy, Default)]
struct QueueFigures {
    length: i64,
    lag: i64,
    pending: i64,
    oldest_pending_seconds: f64,
    delayed: i64,
    dead_letters: i64,
}

pub(super) struct ConsumerMetrics {
    labels: [KeyValue; 2],
    consumed: Counter<u64>,
    process_duration: Histogram<f64>,
    reclaimed: Counter<u64>,
    figures: Arc<Mutex<Option<QueueFigures>>>,
}

impl ConsumerMetrics {
    pub(super) fn new(queue: &str, group: &str) -> Self {
        let meter = dispatch311_telemetry::metrics::meter();
        let labels = [
            KeyValue::new("messaging.destination.name", queue.to_owned()),
            KeyValue::new("messaging.consumer.group.name", group.to_owned()),
        ];
        let figures: Arc<Mutex<Option<QueueFigures>>> = Arc::default();
        let gauge = |name: &'static str,
                     unit: &'static str,
                     description: &'static str,
                     read: fn(&QueueFigures) -> f64| {
            let figures = Arc::clone(&figures);
            let labels = labels.clone();
            meter
                .f64_observable_gauge(name)
                .with_unit(unit)
                .with_description(description)
                .with_callback(move |observer| {
                    let figures = *figures.lock().unwrap_or_else(PoisonError::into_inner);
                    if let Some(figures) = figures {
                        observer.observe(read(&figures), &labels);
                    }
                })
                .build();
        };
        gauge(
            "dispatch311.queue.length",
            "{job}",
            "Entries in the queue's stream (delivered or not, until acknowledged and trimmed)",
            |f| f.length as f64,
        );
        gauge(
            "dispatch311.queue.lag",
            "{job}",
            "Entries not yet delivered to the consumer group",
            |f| f.lag as f64,
        );
        gauge(
            "dispatch311.queue.pending",
            "{job}",
            "Entries delivered to the group and not yet acknowledged",
            |f| f.pending as f64,
        );
        gauge(
            "dispatch311.queue.oldest_pending.age",
            "s",
            "How long the oldest unacknowledged delivery has waited",
            |f| f.oldest_pending_seconds,
        );
        gauge(
            "dispatch311.queue.delayed",
            "{job}",
            "Scheduled jobs and retries waiting for their time",
            |f| f.delayed as f64,
        );
        gauge(
            "dispatch311.queue.dead_letters",
            "{job}",
            "Jobs in the queue's dead-letter stream",
            |f| f.dead_letters as f64,
        );
        Self {
            consumed: meter
                .u64_counter("messaging.client.consumed.messages")
                .with_unit("{message}")
                .with_description("Deliveries of jobs to this consumer, reclaimed ones included")
                .build(),
            process_duration: meter
                .f64_histogram("messaging.process.duration")
                .with_unit("s")
                .with_description("Handling of one delivery, by outcome (done, retry, dead_letter)")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            reclaimed: meter
                .u64_counter("dispatch311.queue.reclaimed")
                .with_unit("{message}")
                .with_description("Jobs taken over from a consumer that stopped answering")
                .build(),
            labels,
            figures,
        }
    }

    pub(super) fn delivered(&self) {
        self.consumed.add(1, &self.labels);
    }

    pub(super) fn reclaimed(&self, count: usize) {
        self.reclaimed.add(count as u64, &self.labels);
    }

    pub(super) fn settled(&self, outcome: Settled, started: Instant) {
        let [queue, group] = self.labels.clone();
        self.process_duration.record(
            started.elapsed().as_secs_f64(),
            &[queue, group, KeyValue::new("outcome", outcome.name())],
        );
    }
}

impl Shared {
    /// Reads the queue's figures from Redis.
    async fn queue_figures(&self) -> redis::RedisResult<QueueFigures> {
        let mut connection = self.queue.connection();
        let (length, delayed, dead_letters, groups, oldest): (i64, i64, i64, Value, Value) =
            redis::pipe()
                .cmd("XLEN")
                .arg(&self.keys.stream)
                .cmd("ZCARD")
                .arg(&self.keys.delayed)
                .cmd("XLEN")
                .arg(&self.keys.dead)
                .cmd("XINFO")
                .arg("GROUPS")
                .arg(&self.keys.stream)
                .cmd("XPENDING")
                .arg(&self.keys.stream)
                .arg(&self.group)
                .arg("-")
                .arg("+")
                .arg(1)
                .query_async(&mut connection)
                .await?;
        let (lag, pending) = group_figures(&groups, &self.group);
        Ok(QueueFigures {
            length,
            lag,
            pending,
            oldest_pending_seconds: oldest_idle_ms(&oldest) as f64 / 1_000.0,
            delayed,
            dead_letters,
        })
    }
}

/// Reads the queue's figures every few seconds until stopped.
pub(super) async fn observe_loop(shared: Arc<Shared>, stop: CancellationToken) {
    let mut interval = tokio::time::interval(OBSERVE_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = stop.cancelled() => return,
        }
        match shared.queue_figures().await {
            Ok(figures) => {
                *shared
                    .metrics
                    .figures
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(figures);
            }
            Err(error) => {
                tracing::debug!(queue = %shared.queue_name, %error, "reading the queue's figures failed");
            }
        }
    }
}

/// `lag` and `pending` of `group` in an XINFO GROUPS reply (0 when absent).
fn group_figures(groups: &Value, group: &str) -> (i64, i64) {
    let Value::Array(groups) = groups else {
        return (0, 0);
    };
    for entry in groups {
        let fields = match entry {
            Value::Array(items) => items
                .chunks(2)
                .filter_map(|pair| match pair {
                    [key, value] => Some((text(key)?, value)),
                    _ => None,
                })
                .collect::<Vec<_>>(),
            Value::Map(pairs) => pairs
                .iter()
                .filter_map(|(key, value)| Some((text(key)?, value)))
                .collect(),
            _ => continue,
        };
        let field = |name: &str| fields.iter().find(|(key, _)| key == name).map(|(_, v)| *v);
        if field("name").and_then(text).as_deref() != Some(group) {
            continue;
        }
        let number = |name: &str| match field(name) {
            Some(Value::Int(n)) => *n,
            _ => 0,
        };
        return (number("lag"), number("pending"));
    }
    (0, 0)
}

/// The idle time, in ms, of the first entry of an extended XPENDING reply.
fn oldest_idle_ms(reply: &Value) -> i64 {
    match reply {
        Value::Array(entries) => match entries.first() {
            Some(Value::Array(entry)) => match entry.get(2) {
                Some(Value::Int(idle)) => *idle,
                _ => 0,
            },
            _ => 0,
        },
        _ => 0,
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(text) => Some(text.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    #[test]
    fn reads_the_groups_lag_and_pending_and_the_oldest_idle_time() {
        let groups = Value::Array(vec![
            Value::Array(vec![
                bulk("name"),
                bulk("other"),
                bulk("lag"),
                Value::Int(9),
            ]),
            Value::Array(vec![
                bulk("name"),
                bulk("routing"),
                bulk("consumers"),
                Value::Int(2),
                bulk("pending"),
                Value::Int(3),
                bulk("lag"),
                Value::Int(7),
            ]),
        ]);
        assert_eq!(group_figures(&groups, "routing"), (7, 3));
        assert_eq!(group_figures(&groups, "absent"), (0, 0));
        let pending = Value::Array(vec![Value::Array(vec![
            bulk("1-0"),
            bulk("consumer"),
            Value::Int(1_500),
            Value::Int(1),
        ])]);
        assert_eq!(oldest_idle_ms(&pending), 1_500);
        assert_eq!(oldest_idle_ms(&Value::Array(vec![])), 0);
    }
}
