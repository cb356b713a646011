//! Crash safety: routing is killed with SIGKILL while a batch of requests is
//! in flight and started again; every request still reaches its precinct's
//! dispatch queue exactly once.

use std::time::Duration;

use dispatch311_proto::{
    common::v1::{Channel, GeoPoint},
    intake::v1::CreateServiceRequestRequest,
};
use dispatch311_tests::suite::{Service, Suite, SuiteOptions, eventually};

const BATCH: usize = 300;

#[tokio::test]
async fn killing_routing_mid_batch_loses_and_duplicates_nothing() -> anyhow::Result<()> {
    let mut suite = Suite::start(SuiteOptions {
        // a killed consumer's jobs are reclaimed after this idle time
        env: vec![("DISPATCH311_QUEUE_CLAIM_IDLE_MS".into(), "1500".into())],
        ..SuiteOptions::default()
    })
    .await?;
    let pool = suite.database().await?;
    let intake = suite.intake().await?;

    // file the batch from several concurrent clients
    let mut filers = Vec::new();
    for worker in 0..8 {
        let mut intake = intake.clone();
        filers.push(tokio::spawn(async move {
            let mut numbers = Vec::new();
            for i in (worker..BATCH).step_by(8) {
                let request = CreateServiceRequestRequest {
                    request_id: format!("crash-{i}"),
                    complaint_type: "Noise - Residential".into(),
                    descriptor: "Loud Music/Party".into(),
                    // spread over a few blocks of Midtown South
                    location: Some(GeoPoint {
                        latitude: 40.7484 + (i % 10) as f64 * 0.0002,
                        longitude: -73.9880,
                    }),
                    channel: Channel::Phone as i32,
                    ..Default::default()
                };
                let sr = intake
                    .create_service_request(request)
                    .await?
                    .into_inner()
                    .service_request
                    .unwrap();
                numbers.push(sr.sr_number);
            }
            anyhow::Ok(numbers)
        }));
    }

    // kill routing once it is part-way through the batch
    eventually(Duration::from_secs(30), "routing to start deciding", || {
        let pool = pool.clone();
        async move {
            let decided: i64 = sqlx::query_scalar("SELECT count(*) FROM routing.route_decisions")
                .fetch_one(&pool)
                .await?;
            Ok((decided >= 20).then_some(()))
        }
    })
    .await?;
    suite.kill(Service::Routing)?;
    let decided_at_kill: i64 = sqlx::query_scalar("SELECT count(*) FROM routing.route_decisions")
        .fetch_one(&pool)
        .await?;

    let mut filed = Vec::new();
    for filer in filers {
        filed.extend(filer.await??);
    }
    assert_eq!(
        filed.len(),
        BATCH,
        "intake accepted every request while routing was down"
    );

    suite.restart(Service::Routing).await?;
    eventually(
        Duration::from_secs(60),
        "every request in a dispatch queue",
        || {
            let pool = pool.clone();
            async move {
                let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM dispatch.jobs")
                    .fetch_one(&pool)
                    .await?;
                Ok((jobs == BATCH as i64).then_some(()))
            }
        },
    )
    .await?;

    // exactly once: one job and one QUEUED event per request, one decision each
    let (jobs, distinct_requests): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT sr_number) FROM dispatch.jobs")
            .fetch_one(&pool)
            .await?;
    assert_eq!((jobs, distinct_requests), (BATCH as i64, BATCH as i64));
    let queued_events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM dispatch.job_events WHERE event_type = 'QUEUED'")
            .fetch_one(&pool)
            .await?;
    assert_eq!(queued_events, BATCH as i64);
    let decisions: i64 = sqlx::query_scalar("SELECT count(*) FROM routing.route_decisions")
        .fetch_one(&pool)
        .await?;
    assert_eq!(decisions, BATCH as i64);
    let mut in_dispatch: Vec<String> = sqlx::query_scalar("SELECT sr_number FROM dispatch.jobs")
        .fetch_all(&pool)
        .await?;
    in_dispatch.sort();
    filed.sort();
    assert_eq!(
        in_dispatch, filed,
        "the jobs are exactly the filed requests"
    );
    assert!(
        decided_at_kill < BATCH as i64,
        "routing was killed with work left ({decided_at_kill} decided)"
    );

    // intake's public timelines show each request queued once
    eventually(
        Duration::from_secs(20),
        "intake to record every request as queued",
        || {
            let pool = pool.clone();
            async move {
                let n: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM intake.service_requests WHERE status = 'QUEUED'",
                )
                .fetch_one(&pool)
                .await?;
                Ok((n == BATCH as i64).then_some(()))
            }
        },
    )
    .await?;
    let queued_entries: i64 =
        sqlx::query_scalar("SELECT count(*) FROM intake.timeline_entries WHERE status = 'QUEUED'")
            .fetch_one(&pool)
            .await?;
    assert_eq!(queued_entries, BATCH as i64);

    suite.stop().await
}
