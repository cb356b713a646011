//! Helpers shared by the queue's integration tests (real Redis and PostgreSQL).

#![allow(dead_code)] // each test binary uses a different subset

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use dispatch311_proto::jobs::v1::RouteJob;
use dispatch311_queue::{Delivery, JobQueue, Outcome, QueueConfig};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Settings for a test: the local Redis, a key prefix no other test uses, and short
/// timings so redelivery and retries happen within a test's patience.
pub fn test_config() -> QueueConfig {
    QueueConfig {
        key_prefix: format!("test-{}:", uuid::Uuid::new_v4().simple()),
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(100),
        claim_idle: Duration::from_millis(300),
        block: Duration::from_millis(200),
        redis_url: std::env::var("REDIS_URL").unwrap_or_else(|_| QueueConfig::default().redis_url),
        ..QueueConfig::default()
    }
}

pub async fn connect(config: QueueConfig) -> JobQueue {
    JobQueue::connect(config)
        .await
        .expect("the test Redis is not reachable")
}

/// Deletes every key of the test's prefix.
pub async fn delete_keys(config: &QueueConfig) {
    let client = redis::Client::open(config.redis_url.as_str()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", config.key_prefix))
        .query_async(&mut connection)
        .await
        .unwrap();
    if !keys.is_empty() {
        redis::cmd("DEL")
            .arg(&keys)
            .query_async::<()>(&mut connection)
            .await
            .unwrap();
    }
}

pub async fn redis_connection(config: &QueueConfig) -> redis::aio::MultiplexedConnection {
    redis::Client::open(config.redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Polls `condition` every 20 ms until it holds; panics after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn route_job(sr_id: &str) -> RouteJob {
    RouteJob {
        sr_id: sr_id.to_owned(),
        sr_number: "SR-2026-0000042".to_owned(),
        complaint_type: "Illegal Parking".to_owned(),
        descriptor: "Blocked Bike Lane".to_owned(),
        ..RouteJob::default()
    }
}

/// A delivery as a test handler saw it, with the time it arrived.
#[derive(Debug, Clone)]
pub struct Seen {
    pub delivery: Delivery,
    pub at: SystemTime,
}

/// Deliveries recorded by a test handler.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Recorder {
    pub fn record(&self, delivery: &Delivery) {
        self.seen.lock().unwrap().push(Seen {
            delivery: delivery.clone(),
            at: SystemTime::now(),
        });
    }

    pub fn all(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn len(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// A handler that records every delivery and answers `outcome`.
    pub fn handler(
        &self,
        outcome: Outcome,
    ) -> impl Fn(Delivery) -> std::future::Ready<Outcome> + Send + Sync + 'static {
        let recorder = self.clone();
        move |delivery: Delivery| {
            recorder.record(&delivery);
            std::future::ready(outcome.clone())
        }
    }
}

/// A consumer running in the background, stopped by `stop`.
pub struct Running {
    pub shutdown: CancellationToken,
    pub task: JoinHandle<dispatch311_queue::Result<()>>,
}

impl Running {
    pub fn start<H: dispatch311_queue::JobHandler>(
        queue: &JobQueue,
        queue_name: &str,
        group: &str,
        handler: H,
    ) -> Self {
        let consumer = queue.consumer(queue_name, group).unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(consumer.run(Arc::new(handler), shutdown.clone()));
        Self { shutdown, task }
    }

    /// Requests shutdown and waits for the consumer to return.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("consumer did not stop within 10 s")
            .expect("consumer task panicked")
            .expect("consumer failed");
    }
}
