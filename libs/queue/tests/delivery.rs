//! Delivery guarantees against a real Redis: redelivery after a consumer dies, dead
//! letters, scheduled jobs.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use common::{
    Recorder, Running, connect, delete_keys, redis_connection, route_job, test_config, wait_until,
};
use dispatch311_proto::jobs::v1::RouteJob;
use dispatch311_queue::{Delivery, Outcome, QueueStats};
use redis::streams::StreamReadReply;
use tokio_util::sync::CancellationToken;

const QUEUE: &str = "route";
const GROUP: &str = "routing";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_read_by_a_consumer_that_never_acks_is_redelivered_after_claim_idle() {
    let config = test_config();
    let queue = connect(config.clone()).await;
    let job_id = queue
        .publish(QUEUE, "route", "sr-1", &route_job("sr-1"))
        .await
        .unwrap();

    // consumer A reads the job and then disappears without acknowledging it
    let stream = queue.keys(QUEUE).unwrap().stream;
    let mut redis = redis_connection(&config).await;
    redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg(GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query_async::<()>(&mut redis)
        .await
        .unwrap();
    let read: StreamReadReply = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(GROUP)
        .arg("consumer-a")
        .arg("COUNT")
        .arg(10)
        .arg("STREAMS")
        .arg(&stream)
        .arg(">")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(read.keys[0].ids.len(), 1);
    let abandoned_at = Instant::now();

    let recorder = Recorder::default();
    let consumer_b = Running::start(&queue, QUEUE, GROUP, recorder.handler(Outcome::Done));
    wait_until("the redelivery", Duration::from_secs(10), || async {
        recorder.len() == 1
    })
    .await;
    assert!(
        abandoned_at.elapsed() >= config.claim_idle,
        "redelivered before the job was idle for claim_idle"
    );

    let redelivery = &recorder.all()[0].delivery;
    assert_eq!(redelivery.envelope.job_id, job_id);
    assert_eq!(
        redelivery.envelope.attempt, 2,
        "the lost delivery counts as an attempt"
    );
    assert_eq!(
        redelivery.envelope.last_error,
        "abandoned by consumer consumer-a"
    );
    assert_eq!(redelivery.payload::<RouteJob>().unwrap(), route_job("sr-1"));

    wait_until("the job to be settled", Duration::from_secs(5), || async {
        queue.stats(QUEUE).await.unwrap() == QueueStats::default()
    })
    .await;
    consumer_b.stop().await;
    assert_eq!(
        recorder.len(),
        1,
        "the job was handled again after it was done"
    );
    delete_keys(&config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_of_a_consumer_aborted_mid_handler_is_redelivered_to_another_consumer() {
    let config = test_config();
    let queue = connect(config.clone()).await;

    // consumer A starts the job and hangs; then its task is aborted, as if the process died
    let started = Arc::new(AtomicUsize::new(0));
    let consumer_a = queue.consumer(QUEUE, GROUP).unwrap();
    let consumer_a_name = consumer_a.name().to_owned();
    let hanging = {
        let started = Arc::clone(&started);
        move |_delivery: Delivery| {
            started.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<Outcome>()
        }
    };
    let task_a = tokio::spawn(consumer_a.run(Arc::new(hanging), CancellationToken::new()));
    let job_id = queue
        .publish(QUEUE, "route", "sr-2", &route_job("sr-2"))
        .await
        .unwrap();
    wait_until(
        "consumer A to start the job",
        Duration::from_secs(5),
        || async { started.load(Ordering::SeqCst) == 1 },
    )
    .await;

    // while A is alive it keeps the job, however long its handler takes: waiting is
    // the only way to show that B does not take it
    let recorder = Recorder::default();
    let consumer_b = Running::start(&queue, QUEUE, GROUP, recorder.handler(Outcome::Done));
    tokio::time::sleep(config.claim_idle * 3).await;
    assert_eq!(recorder.len(), 0, "a live consumer's job was taken from it");

    task_a.abort();
    assert!(task_a.await.unwrap_err().is_cancelled());
    wait_until("the redelivery", Duration::from_secs(10), || async {
        recorder.len() == 1
    })
    .await;
    let redelivery = &recorder.all()[0].delivery;
    assert_eq!(redelivery.envelope.job_id, job_id);
    assert_eq!(redelivery.envelope.attempt, 2);
    assert_eq!(
        redelivery.envelope.last_error,
        format!("abandoned by consumer {consumer_a_name}")
    );
    wait_until("the job to be settled", Duration::from_secs(5), || async {
        queue.stats(QUEUE).await.unwrap() == QueueStats::default()
    })
    .await;
    consumer_b.stop().await;
    assert_eq!(started.load(Ordering::SeqCst), 1);
    delete_keys(&config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_job_is_dead_lettered_with_its_last_error_after_max_attempts() {
    let config = dispatch311_queue::QueueConfig {
        max_attempts: 3,
        ..test_config()
    };
    let queue = connect(config.clone()).await;
    let recorder = Recorder::default();
    let consumer = Running::start(
        &queue,
        QUEUE,
        GROUP,
        recorder.handler(Outcome::retry("boom")),
    );
    let job_id = queue
        .publish(QUEUE, "route", "sr-3", &route_job("sr-3"))
        .await
        .unwrap();

    wait_until("the dead letter", Duration::from_secs(10), || async {
        !queue.dead_letters(QUEUE, 10).await.unwrap().is_empty()
    })
    .await;
    let dead = queue.dead_letters(QUEUE, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    let envelope = dead[0]
        .envelope
        .as_ref()
        .expect("dead letter keeps the envelope");
    assert_eq!(envelope.job_id, job_id);
    assert_eq!(envelope.attempt, 3);
    assert_eq!(envelope.last_error, "boom");
    assert_eq!(dead[0].error, "gave up after 3 attempts, last error: boom");
    assert!(dead[0].failed_at.is_some());

    let attempts: Vec<u32> = recorder
        .all()
        .iter()
        .map(|seen| seen.delivery.envelope.attempt)
        .collect();
    assert_eq!(attempts, [1, 2, 3]);
    let last_errors: Vec<String> = recorder
        .all()
        .iter()
        .map(|seen| seen.delivery.envelope.last_error.clone())
        .collect();
    assert_eq!(last_errors, ["", "boom", "boom"]);

    // nowhere left to be delivered from
    let stats = queue.stats(QUEUE).await.unwrap();
    assert_eq!(
        stats,
        QueueStats {
            dead: 1,
            ..QueueStats::default()
        }
    );
    consumer.stop().await;
    assert_eq!(recorder.len(), 3);
    delete_keys(&config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_dead_letter_and_undecodable_entries_go_to_the_dead_letter_stream() {
    let config = test_config();
    let queue = connect(config.clone()).await;
    let recorder = Recorder::default();
    let consumer = Running::start(
        &queue,
        QUEUE,
        GROUP,
        recorder.handler(Outcome::dead_letter("unknown complaint type")),
    );
    let job_id = queue
        .publish(QUEUE, "route", "sr-4", &route_job("sr-4"))
        .await
        .unwrap();
    // bytes that are not an envelope must not stop the consumer
    let mut redis = redis_connection(&config).await;
    redis::cmd("XADD")
        .arg(queue.keys(QUEUE).unwrap().stream)
        .arg("*")
        .arg("envelope")
        .arg(&[0xff_u8, 0xff, 0xff][..])
        .query_async::<()>(&mut redis)
        .await
        .unwrap();
    let after_id = queue
        .publish(QUEUE, "route", "sr-5", &route_job("sr-5"))
        .await
        .unwrap();

    wait_until("three dead letters", Duration::from_secs(10), || async {
        queue.dead_letters(QUEUE, 10).await.unwrap().len() == 3
    })
    .await;
    let dead = queue.dead_letters(QUEUE, 10).await.unwrap();
    let by_handler = dead
        .iter()
        .find(|d| d.envelope.as_ref().is_some_and(|e| e.job_id == job_id))
        .unwrap();
    assert_eq!(by_handler.error, "unknown complaint type");
    assert_eq!(
        by_handler.envelope.as_ref().unwrap().attempt,
        1,
        "dead-lettered without retries"
    );
    let malformed = dead.iter().find(|d| d.envelope.is_none()).unwrap();
    assert!(
        malformed.error.starts_with("undecodable envelope"),
        "{}",
        malformed.error
    );
    assert!(
        dead.iter()
            .any(|d| d.envelope.as_ref().is_some_and(|e| e.job_id == after_id))
    );
    assert_eq!(recorder.len(), 2, "the malformed entry reached the handler");
    consumer.stop().await;
    delete_keys(&config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_job_is_delivered_after_its_time_and_not_before() {
    let config = test_config();
    let queue = connect(config.clone()).await;
    let recorder = Recorder::default();
    let consumer = Running::start(&queue, QUEUE, GROUP, recorder.handler(Outcome::Done));

    let deliver_at = SystemTime::now() + Duration::from_millis(1500);
    let job_id = queue
        .schedule(QUEUE, "sla_timer", "sr-6", &route_job("sr-6"), deliver_at)
        .await
        .unwrap();
    let immediate_id = queue
        .publish(QUEUE, "route", "sr-7", &route_job("sr-7"))
        .await
        .unwrap();
    wait_until("the immediate job", Duration::from_secs(5), || async {
        recorder.len() == 1
    })
    .await;
    assert_eq!(recorder.all()[0].delivery.envelope.job_id, immediate_id);
    assert_eq!(queue.stats(QUEUE).await.unwrap().delayed, 1);

    wait_until("the scheduled job", Duration::from_secs(10), || async {
        recorder.len() == 2
    })
    .await;
    let scheduled = &recorder.all()[1];
    assert_eq!(scheduled.delivery.envelope.job_id, job_id);
    assert_eq!(scheduled.delivery.envelope.kind, "sla_timer");
    assert!(scheduled.at >= deliver_at, "delivered before its time");
    let late = scheduled.at.duration_since(deliver_at).unwrap();
    assert!(late < Duration::from_secs(2), "delivered {late:?} late");
    assert_eq!(
        scheduled.delivery.envelope.deliver_at,
        Some(prost_types::Timestamp::from(deliver_at))
    );

    wait_until("the queue to be empty", Duration::from_secs(5), || async {
        queue.stats(QUEUE).await.unwrap() == QueueStats::default()
    })
    .await;
    consumer.stop().await;
    delete_keys(&config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_retry_after_delays_the_next_attempt() {
    let config = test_config();
    let queue = connect(config.clone()).await;
    let recorder = Recorder::default();
    let handler = {
        let recorder = recorder.clone();
        move |delivery: Delivery| {
            recorder.record(&delivery);
            let outcome = if delivery.envelope.attempt == 1 {
                Outcome::retry_after("precinct table busy", Duration::from_millis(700))
            } else {
                Outcome::Done
            };
            std::future::ready(outcome)
        }
    };
    let consumer = Running::start(&queue, QUEUE, GROUP, handler);
    queue
        .publish(QUEUE, "route", "sr-8", &route_job("sr-8"))
        .await
        .unwrap();

    wait_until("the second attempt", Duration::from_secs(5), || async {
        recorder.len() == 2
    })
    .await;
    let seen = recorder.all();
    let gap = seen[1].at.duration_since(seen[0].at).unwrap();
    assert!(gap >= Duration::from_millis(700), "retried after {gap:?}");
    assert_eq!(seen[1].delivery.envelope.last_error, "precinct table busy");
    consumer.stop().await;
    delete_keys(&config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_jobs_in_flight_finish_and_settles_them() {
    let config = test_config();
    let queue = connect(config.clone()).await;
    let started = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let handler = {
        let started = Arc::clone(&started);
        let finished = Arc::clone(&finished);
        move |_delivery: Delivery| {
            let started = Arc::clone(&started);
            let finished = Arc::clone(&finished);
            async move {
                started.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(500)).await;
                finished.fetch_add(1, Ordering::SeqCst);
                Outcome::Done
            }
        }
    };
    let consumer = Running::start(&queue, QUEUE, GROUP, handler);
    for n in 0..5 {
        let sr_id = format!("sr-shutdown-{n}");
        queue
            .publish(QUEUE, "route", &sr_id, &route_job(&sr_id))
            .await
            .unwrap();
    }
    wait_until("all jobs to start", Duration::from_secs(5), || async {
        started.load(Ordering::SeqCst) == 5
    })
    .await;
    consumer.stop().await;
    assert_eq!(
        finished.load(Ordering::SeqCst),
        5,
        "shutdown cut handlers short"
    );
    assert_eq!(
        queue.stats(QUEUE).await.unwrap(),
        QueueStats::default(),
        "jobs left unsettled"
    );
    delete_keys(&config).await;
}
