//! The transactional outbox against real PostgreSQL and Redis.

mod common;

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use common::{connect, delete_keys, route_job, test_config, wait_until};
use dispatch311_queue::outbox::{self, OUTBOX_TABLE_DDL, OutboxRelay};
use dispatch311_queue::{JobEnvelope, JobQueue, QueueConfig, new_envelope};
use prost::Message;
use redis::streams::StreamRangeReply;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

const QUEUE: &str = "route";

async fn outbox_rows(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Job ids of the entries in the queue's stream.
async fn published_job_ids(config: &QueueConfig, queue: &JobQueue) -> HashSet<String> {
    let mut redis = common::redis_connection(config).await;
    let entries: StreamRangeReply = redis::cmd("XRANGE")
        .arg(queue.keys(QUEUE).unwrap().stream)
        .arg("-")
        .arg("+")
        .query_async(&mut redis)
        .await
        .unwrap();
    entries
        .ids
        .iter()
        .map(|entry| {
            let bytes: Vec<u8> = entry.get("envelope").unwrap();
            JobEnvelope::decode(bytes.as_slice()).unwrap().job_id
        })
        .collect()
}

/// Runs a relay in the background until the returned token is cancelled.
fn start_relay(
    pool: &PgPool,
    queue: &JobQueue,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let relay = OutboxRelay::new(pool.clone(), queue.clone());
    relay.notifier().notify_one();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(relay.run(shutdown.clone()));
    (shutdown, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_publishes_committed_jobs_only_and_keeps_them_through_a_redis_outage() {
    let database_url = dispatch311_db::testing::create_database().await.unwrap();
    let pool = PgPool::connect(&database_url).await.unwrap();
    sqlx::raw_sql(OUTBOX_TABLE_DDL)
        .execute(&pool)
        .await
        .unwrap();
    let config = test_config();
    let queue = connect(config.clone()).await;

    // committed jobs are published, rolled-back ones are not
    let mut tx = pool.begin().await.unwrap();
    let mut committed = HashSet::new();
    for n in 0..3 {
        let sr_id = format!("sr-commit-{n}");
        committed.insert(
            outbox::enqueue(&mut tx, QUEUE, "route", &sr_id, &route_job(&sr_id))
                .await
                .unwrap(),
        );
    }
    tx.commit().await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    for n in 0..2 {
        let sr_id = format!("sr-rollback-{n}");
        outbox::enqueue(&mut tx, QUEUE, "route", &sr_id, &route_job(&sr_id))
            .await
            .unwrap();
    }
    tx.rollback().await.unwrap();

    let (relay_stop, relay_task) = start_relay(&pool, &queue);
    wait_until(
        "the committed jobs to be published",
        Duration::from_secs(10),
        || async {
            outbox_rows(&pool).await == 0 && queue.stats(QUEUE).await.unwrap().stream_len == 3
        },
    )
    .await;
    assert_eq!(published_job_ids(&config, &queue).await, committed);
    relay_stop.cancel();
    relay_task.await.unwrap();

    // Redis unreachable: the rows stay
    let mut tx = pool.begin().await.unwrap();
    let mut during_outage = HashSet::new();
    for n in 0..2 {
        let sr_id = format!("sr-outage-{n}");
        during_outage.insert(
            outbox::enqueue(&mut tx, QUEUE, "route", &sr_id, &route_job(&sr_id))
                .await
                .unwrap(),
        );
    }
    tx.commit().await.unwrap();
    let unreachable = JobQueue::connect_lazy(QueueConfig {
        redis_url: "redis://127.0.0.1:1".to_owned(),
        ..config.clone()
    })
    .unwrap();
    let failing_relay = OutboxRelay::new(pool.clone(), unreachable);
    assert!(failing_relay.relay_once().await.is_err());
    assert_eq!(
        outbox_rows(&pool).await,
        2,
        "rows were lost while Redis was unreachable"
    );
    assert_eq!(queue.stats(QUEUE).await.unwrap().stream_len, 3);

    // Redis is back: a relay publishes what was kept
    let (relay_stop, relay_task) = start_relay(&pool, &queue);
    wait_until(
        "the kept jobs to be published",
        Duration::from_secs(10),
        || async {
            outbox_rows(&pool).await == 0 && queue.stats(QUEUE).await.unwrap().stream_len == 5
        },
    )
    .await;
    let published = published_job_ids(&config, &queue).await;
    assert!(during_outage.is_subset(&published));
    relay_stop.cancel();
    relay_task.await.unwrap();

    pool.close().await;
    dispatch311_db::testing::drop_database(&database_url)
        .await
        .unwrap();
    delete_keys(&config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_puts_a_timer_envelope_in_the_delayed_set() {
    let database_url = dispatch311_db::testing::create_database().await.unwrap();
    let pool = PgPool::connect(&database_url).await.unwrap();
    sqlx::raw_sql(OUTBOX_TABLE_DDL)
        .execute(&pool)
        .await
        .unwrap();
    let config = test_config();
    let queue = connect(config.clone()).await;

    let mut timer = new_envelope(
        "sla_timer",
        "sr-timer",
        &route_job("sr-timer"),
        Default::default(),
    );
    timer.deliver_at = Some((SystemTime::now() + Duration::from_secs(3600)).into());
    let mut conn = pool.acquire().await.unwrap();
    outbox::enqueue_envelope(&mut conn, QUEUE, &timer)
        .await
        .unwrap();
    drop(conn);

    let relay = OutboxRelay::new(pool.clone(), queue.clone());
    assert_eq!(relay.relay_once().await.unwrap(), 1);
    let stats = queue.stats(QUEUE).await.unwrap();
    assert_eq!((stats.stream_len, stats.delayed), (0, 1));
    assert_eq!(outbox_rows(&pool).await, 0);

    pool.close().await;
    dispatch311_db::testing::drop_database(&database_url)
        .await
        .unwrap();
    delete_keys(&config).await;
}

/// With `wait_replicas`, a row is deleted only once that many replicas hold
/// its job: the test's Redis has none, so the relay fails and keeps the rows
/// (their jobs reached the primary: at least once, as after any failed relay).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_stay_until_a_replica_holds_their_jobs() {
    let database_url = dispatch311_db::testing::create_database().await.unwrap();
    let pool = PgPool::connect(&database_url).await.unwrap();
    sqlx::raw_sql(OUTBOX_TABLE_DDL)
        .execute(&pool)
        .await
        .unwrap();
    let config = test_config();
    let mut tx = pool.begin().await.unwrap();
    for n in 0..2 {
        let sr_id = format!("sr-unreplicated-{n}");
        outbox::enqueue(&mut tx, QUEUE, "route", &sr_id, &route_job(&sr_id))
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();

    let waiting = connect(QueueConfig {
        wait_replicas: 1,
        ..config.clone()
    })
    .await;
    let error = OutboxRelay::new(pool.clone(), waiting)
        .relay_once()
        .await
        .expect_err("no replica confirms the publish");
    assert!(
        matches!(
            error,
            dispatch311_queue::QueueError::NotReplicated { wanted: 1, .. }
        ),
        "{error}"
    );
    assert_eq!(outbox_rows(&pool).await, 2, "the rows were deleted");

    // not waiting, the same rows go
    let queue = connect(config.clone()).await;
    assert_eq!(
        OutboxRelay::new(pool.clone(), queue)
            .relay_once()
            .await
            .unwrap(),
        2
    );
    assert_eq!(outbox_rows(&pool).await, 0);

    pool.close().await;
    dispatch311_db::testing::drop_database(&database_url)
        .await
        .unwrap();
    delete_keys(&config).await;
}
