//! The suite on a real Redis Cluster (three masters, a replica each, on
//! loopback): requests go from filing to closure and survey, and when the
//! master holding the dispatch queue is killed while requests are being
//! filed, its replica takes over and every request still reaches its precinct
//! queue once — one route decision, one job, one QUEUED event, one entry per
//! step in intake's timeline, nothing dead-lettered.

use std::time::Duration;

use dispatch311_proto::{
    common::v1::{ResolutionCode, ServiceRequestStatus},
    intake::v1::CreateServiceRequestRequest,
};
use dispatch311_queue::{JobQueue, QueueConfig};
use dispatch311_tests::{
    cad::{EMPIRE_STATE, complaint, offset, register_unit, wait_for_job, wait_for_public_status},
    redis_cluster::RedisCluster,
    suite::{Suite, SuiteOptions, eventually},
    survey::{Complainant, Poller, close_at_scene, closure_of, complaint_from},
};
use tonic::Code;

/// Requests filed while the master fails.
const UNDER_FAILOVER: usize = 150;
/// Filed before the kill, so the failover lands mid-stream.
const BEFORE_KILL: usize = 40;

#[tokio::test]
async fn a_redis_cluster_failover_loses_and_repeats_no_request() -> anyhow::Result<()> {
    let mut cluster = RedisCluster::start().await?;
    let suite = Suite::start(SuiteOptions {
        env: vec![
            ("REDIS_URL".into(), cluster.redis_url()),
            ("DISPATCH311_REDIS_CLUSTER".into(), "true".into()),
            // a published job is on the replica before its outbox row goes
            ("DISPATCH311_REDIS_WAIT_REPLICAS".into(), "1".into()),
            ("DISPATCH311_FAST_CLOSURE_SECS".into(), "0".into()),
            ("DISPATCH311_MIN_ON_SCENE_SECS".into(), "0".into()),
            // deliveries the dead master handed out, whose acknowledgement it
            // took down with it, are claimed again soon
            ("DISPATCH311_QUEUE_CLAIM_IDLE_MS".into(), "3000".into()),
        ],
        ..SuiteOptions::default()
    })
    .await?;
    let pool = suite.database().await?;
    let intake = suite.intake().await?;
    let dispatch = suite.dispatch().await?;
    let survey = suite.survey().await?;

    // end to end on the cluster: filed, routed, dispatched, closed, surveyed
    let unit = register_unit(&dispatch, "14-CLUSTER-1", "14", &["O-14-C"], EMPIRE_STATE).await?;
    let request = complaint_from(
        Complainant::Consenting,
        "Illegal Parking",
        "Blocked Hydrant",
        EMPIRE_STATE,
        "MANHATTAN",
    );
    let sr_number = intake
        .clone()
        .create_service_request(request)
        .await?
        .into_inner()
        .service_request
        .expect("intake answers with the request")
        .sr_number;
    let job = wait_for_job(&dispatch, &sr_number).await?;
    close_at_scene(
        &dispatch,
        &job,
        &unit,
        "O-14-C",
        ResolutionCode::ActionTaken,
    )
    .await?;
    wait_for_public_status(&intake, &sr_number, ServiceRequestStatus::Closed).await?;
    Poller::new(survey, 10)
        .wait_for(&sr_number, closure_of(&sr_number, 1))
        .await?;

    // a steady stream of requests, each retried with its own id as a careful
    // integrator does, while the dispatch queue's master dies
    let filer = tokio::spawn({
        let intake = intake.clone();
        async move {
            for n in 0..UNDER_FAILOVER {
                let mut request = complaint(
                    "Illegal Parking",
                    "Blocked Hydrant",
                    offset(EMPIRE_STATE, 5.0 * n as f64, 0.0),
                );
                request.request_id = format!("cluster-{n}");
                file_until_accepted(&mut intake.clone(), request).await?;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            anyhow::Ok(())
        }
    });
    eventually(
        Duration::from_secs(30),
        "the first requests of the stream",
        || {
            let pool = pool.clone();
            async move {
                let filed: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM intake.service_requests WHERE request_id LIKE 'cluster-%'",
                )
                .fetch_one(&pool)
                .await?;
                Ok((filed >= BEFORE_KILL as i64).then_some(()))
            }
        },
    )
    .await?;
    let (master, outage) = cluster.fail_master_of("dispatch").await?;
    eprintln!("killed the master on port {master}: its replica took over after {outage:?}");
    filer.await??;

    let total = UNDER_FAILOVER as i64 + 1;
    eventually(
        Duration::from_secs(60),
        "every request to show QUEUED in intake",
        || {
            let pool = pool.clone();
            async move {
                let queued: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM intake.service_requests
                     WHERE request_id LIKE 'cluster-%' AND status = 'QUEUED'",
                )
                .fetch_one(&pool)
                .await?;
                Ok((queued == UNDER_FAILOVER as i64).then_some(()))
            }
        },
    )
    .await?;
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool).await }
    };
    assert_eq!(
        count("SELECT count(*) FROM routing.route_decisions").await?,
        total,
        "one route decision per request"
    );
    assert_eq!(
        count("SELECT count(*) FROM dispatch.jobs").await?,
        total,
        "one job per request"
    );
    assert_eq!(
        count("SELECT count(*) FROM dispatch.job_events WHERE event_type = 'QUEUED'").await?,
        total,
        "one QUEUED event per job"
    );
    for status in ["ROUTED", "QUEUED"] {
        let repeated: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT sr_id FROM intake.timeline_entries
             WHERE status = $1 GROUP BY sr_id HAVING count(*) > 1) AS repeated",
        )
        .bind(status)
        .fetch_one(&pool)
        .await?;
        assert_eq!(repeated, 0, "no request has two {status} entries");
    }

    // nothing failed for good on any queue of the hop
    let queue = JobQueue::connect(QueueConfig {
        redis_url: cluster.redis_url(),
        cluster: true,
        key_prefix: suite.redis_prefix.clone(),
        ..QueueConfig::default()
    })
    .await?;
    for name in ["route", "dispatch", "status"] {
        let stats = eventually(
            Duration::from_secs(30),
            &format!("every delivery of {name} to be settled"),
            || {
                let queue = queue.clone();
                async move {
                    let stats = queue.stats(name).await?;
                    Ok((stats.pending == 0 && stats.stream_len == 0).then_some(stats))
                }
            },
        )
        .await?;
        assert_eq!(stats.dead, 0, "{name}: dead letters");
    }
    suite.stop().await
}

/// Files `request`, again with the same id while intake is unavailable or
/// slow; returns once it is accepted.
async fn file_until_accepted(
    intake: &mut dispatch311_proto::intake::v1::intake_service_client::IntakeServiceClient<
        dispatch311_tests::suite::AuthChannel,
    >,
    request: CreateServiceRequestRequest,
) -> anyhow::Result<()> {
    for _ in 0..50 {
        match intake.create_service_request(request.clone()).await {
            Ok(_) => return Ok(()),
            Err(status) if matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(status) => return Err(status.into()),
        }
    }
    anyhow::bail!("{} was never accepted", request.request_id)
}
