//! PostgreSQL is the source of truth, Redis is transport: when every key in
//! Redis is lost (a restart without persistence), the reconciler publishes
//! again what had not been handled, and every accepted request still reaches
//! its precinct queue exactly once.

use std::time::Duration;

use dispatch311_proto::{
    common::v1::{Channel, GeoPoint},
    intake::v1::CreateServiceRequestRequest,
};
use dispatch311_tests::suite::{Service, Suite, SuiteOptions, eventually};
use redis::AsyncCommands;

const REQUESTS: usize = 40;

#[tokio::test]
async fn losing_every_redis_key_loses_no_request() -> anyhow::Result<()> {
    let mut suite = Suite::start(SuiteOptions {
        env: vec![("DISPATCH311_RECONCILE_AFTER_SECS".into(), "2".into())],
        ..SuiteOptions::default()
    })
    .await?;
    let pool = suite.database().await?;

    // routing is down, so the route jobs wait in Redis
    suite.terminate(Service::Routing).await?;
    let mut intake = suite.intake().await?;
    for i in 0..REQUESTS {
        intake
            .create_service_request(CreateServiceRequestRequest {
                request_id: format!("loss-{i}"),
                complaint_type: "Illegal Parking".into(),
                descriptor: "Double Parked Blocking Traffic".into(),
                location: Some(GeoPoint {
                    latitude: 40.7505,
                    longitude: -73.9934,
                }),
                channel: Channel::Web as i32,
                ..Default::default()
            })
            .await?;
    }
    eventually(
        Duration::from_secs(10),
        "intake's outbox to be published",
        || {
            let pool = pool.clone();
            async move {
                let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM intake.outbox")
                    .fetch_one(&pool)
                    .await?;
                Ok((pending == 0).then_some(()))
            }
        },
    )
    .await?;

    // Redis forgets everything of this suite: jobs, consumer groups, all
    let client = redis::Client::open(suite.redis_url.as_str())?;
    let mut redis = client.get_multiplexed_async_connection().await?;
    let keys: Vec<String> = redis.keys(format!("{}*", suite.redis_prefix)).await?;
    assert!(!keys.is_empty(), "the route jobs were in Redis");
    let _: () = redis.del(&keys).await?;

    suite.restart(Service::Routing).await?;
    eventually(
        Duration::from_secs(60),
        "every request to reach a dispatch queue",
        || {
            let pool = pool.clone();
            async move {
                let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM dispatch.jobs")
                    .fetch_one(&pool)
                    .await?;
                Ok((jobs == REQUESTS as i64).then_some(()))
            }
        },
    )
    .await?;
    eventually(
        Duration::from_secs(30),
        "intake to show every request queued",
        || {
            let pool = pool.clone();
            async move {
                let queued: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM intake.service_requests WHERE status = 'QUEUED'",
                )
                .fetch_one(&pool)
                .await?;
                Ok((queued == REQUESTS as i64).then_some(()))
            }
        },
    )
    .await?;
    let decisions: i64 = sqlx::query_scalar("SELECT count(*) FROM routing.route_decisions")
        .fetch_one(&pool)
        .await?;
    assert_eq!(decisions, REQUESTS as i64, "one decision per request");

    suite.stop().await
}
