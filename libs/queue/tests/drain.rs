//! A large backlog drains completely with two consumers. Prints the drain rate.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Running, connect, delete_keys, route_job, test_config, wait_until};
use dispatch311_queue::{Delivery, Outcome, QueueStats, new_envelope};

const QUEUE: &str = "route";
const GROUP: &str = "routing";
const JOBS: usize = 100_000;

#[derive(Default)]
struct Tally {
    job_ids: HashSet<String>,
    deliveries: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backlog_of_100k_jobs_drains_completely_with_two_consumers() {
    let config = dispatch311_queue::QueueConfig {
        // the default: a busy consumer must not be mistaken for a dead one here
        claim_idle: Duration::from_secs(30),
        ..test_config()
    };
    let queue = connect(config.clone()).await;

    let publish_started = Instant::now();
    let payload = route_job("sr-backlog");
    let envelopes: Vec<_> = (0..JOBS)
        .map(|_| new_envelope("route", "sr-backlog", &payload, Default::default()))
        .collect();
    for chunk in envelopes.chunks(1_000) {
        queue
            .publish_envelopes(chunk.iter().map(|envelope| (QUEUE, envelope)))
            .await
            .unwrap();
    }
    let publish_time = publish_started.elapsed();
    assert_eq!(queue.stats(QUEUE).await.unwrap().stream_len, JOBS as u64);

    let tallies: Vec<Arc<Mutex<Tally>>> = (0..2).map(|_| Arc::default()).collect();
    let drain_started = Instant::now();
    let consumers: Vec<Running> = tallies
        .iter()
        .map(|tally| {
            let tally = Arc::clone(tally);
            let handler = move |delivery: Delivery| {
                let mut tally = tally.lock().unwrap();
                tally.deliveries += 1;
                tally.job_ids.insert(delivery.envelope.job_id);
                std::future::ready(Outcome::Done)
            };
            Running::start(&queue, QUEUE, GROUP, handler)
        })
        .collect();

    let distinct = || {
        let mut all = HashSet::new();
        for tally in &tallies {
            all.extend(tally.lock().unwrap().job_ids.iter().cloned());
        }
        all.len()
    };
    wait_until("the backlog to drain", Duration::from_secs(600), || async {
        distinct() == JOBS
    })
    .await;
    let drain_time = drain_started.elapsed();
    wait_until(
        "the last jobs to be settled",
        Duration::from_secs(10),
        || async { queue.stats(QUEUE).await.unwrap() == QueueStats::default() },
    )
    .await;
    for consumer in consumers {
        consumer.stop().await;
    }

    let per_consumer: Vec<usize> = tallies
        .iter()
        .map(|t| t.lock().unwrap().deliveries)
        .collect();
    let deliveries: usize = per_consumer.iter().sum();
    println!(
        "published {JOBS} jobs in {publish_time:.2?} ({:.0} jobs/s); drained in {drain_time:.2?} ({:.0} jobs/s) by two consumers handling {per_consumer:?}",
        JOBS as f64 / publish_time.as_secs_f64(),
        JOBS as f64 / drain_time.as_secs_f64(),
    );
    assert_eq!(distinct(), JOBS);
    assert_eq!(
        deliveries, JOBS,
        "jobs were delivered more than once without any failure"
    );
    assert!(
        per_consumer.iter().all(|&n| n > 0),
        "one consumer did all the work: {per_consumer:?}"
    );
    delete_keys(&config).await;
}
