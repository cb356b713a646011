//! Dispatch's timers, end to end with the real binaries and TWO dispatch
//! processes sharing the database and the queue: an assignment not
//! acknowledged in time goes back to the precinct queue with an ACK_TIMEOUT
//! event and flag; a job past its SLA gets an SLA_BREACHED event and flag and
//! shows as overdue. Each fires exactly once per job, whichever process
//! handles it, and a timer made moot by what happened since does nothing.

use std::time::Duration;

use dispatch311_proto::{
    common::v1::ResolutionCode,
    dispatch::v1::{
        AssignJobRequest, EventType, FlagKind, GetPrecinctStatsRequest, Job, JobFilter, JobState,
        ListJobsRequest, ListQueueRequest, ListReviewItemsRequest, Role, UnitStatus,
    },
};
use dispatch311_tests::{
    cad::{
        Dispatch, EMPIRE_STATE, PIPELINE, acknowledge, assign, close, close_request, dispatcher,
        drive_to_scene, flag_kinds, get_job, get_unit, hydrant_at, offset, register_unit,
        seconds_between, timeline, timestamp_of, verify,
    },
    suite::{Service, Suite, SuiteOptions, eventually},
};

const ACK_TIMEOUT_SECS: u64 = 3;
const SLA_SECS: i64 = 8;

fn options(extra: &[(&str, &str)]) -> SuiteOptions {
    let mut env = vec![
        ("DISPATCH311_FAST_CLOSURE_SECS".to_string(), "0".to_string()),
        ("DISPATCH311_MIN_ON_SCENE_SECS".to_string(), "0".to_string()),
    ];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    SuiteOptions {
        env,
        ..SuiteOptions::default()
    }
}

async fn count_events(dispatch: &Dispatch, job_id: &str, kind: EventType) -> anyhow::Result<usize> {
    Ok(timeline(dispatch, job_id)
        .await?
        .iter()
        .filter(|e| e.r#type == kind as i32)
        .count())
}

fn count_flags(job: &Job, kind: FlagKind) -> usize {
    job.flags.iter().filter(|f| f.kind == kind as i32).count()
}

async fn list_jobs(dispatch: &Dispatch, filter: JobFilter) -> anyhow::Result<Vec<String>> {
    let mut ids: Vec<String> = dispatch
        .clone()
        .list_jobs(ListJobsRequest {
            precinct: "14".into(),
            filter: filter as i32,
            unit_id: String::new(),
            page_size: 100,
            page_token: String::new(),
        })
        .await?
        .into_inner()
        .jobs
        .into_iter()
        .map(|j| j.job_id)
        .collect();
    ids.sort();
    Ok(ids)
}

#[tokio::test]
async fn an_unacknowledged_assignment_returns_to_the_queue_once_with_two_dispatch_processes()
-> anyhow::Result<()> {
    let suite = Suite::start(options(&[(
        "DISPATCH311_ACK_TIMEOUT_SECS",
        &ACK_TIMEOUT_SECS.to_string(),
    )]))
    .await?;
    let replica = suite.spawn_replica(Service::Dispatch).await?;
    let processes = [suite.dispatch().await?, replica.dispatch().await?];
    let dispatch = &processes[0];

    // six assignments nobody acknowledges, made through both processes
    let mut ignored = Vec::new();
    for n in 0..6 {
        let job = hydrant_at(&suite, offset(EMPIRE_STATE, 30.0 * n as f64, 0.0)).await?;
        let unit = register_unit(
            dispatch,
            &format!("14-ADAM-{n}"),
            "14",
            &[format!("O-{n}").as_str()],
            EMPIRE_STATE,
        )
        .await?;
        let through = &processes[n % 2];
        let assigned = assign(through, &job.job_id, &unit.unit_id).await?;
        assert_eq!(assigned.state, JobState::Assigned as i32);
        ignored.push((job, unit));
    }
    // one acknowledged in time
    let answered = hydrant_at(&suite, EMPIRE_STATE).await?;
    let answering = register_unit(dispatch, "14-BOY-1", "14", &["O-10"], EMPIRE_STATE).await?;
    assign(&processes[1], &answered.job_id, &answering.unit_id).await?;
    acknowledge(&processes[0], &answered.job_id, "O-10", EMPIRE_STATE).await?;
    // and one reassigned while its first timer is pending, then not acknowledged
    // either: only the second assignment's timer may act, and only once
    let moved = hydrant_at(&suite, EMPIRE_STATE).await?;
    let slow = register_unit(dispatch, "14-BOY-2", "14", &["O-11"], EMPIRE_STATE).await?;
    let second = register_unit(dispatch, "14-BOY-3", "14", &["O-12"], EMPIRE_STATE).await?;
    assign(&processes[0], &moved.job_id, &slow.unit_id).await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let reassigned = processes[1]
        .clone()
        .assign_job(AssignJobRequest {
            actor: dispatcher(),
            job_id: moved.job_id.clone(),
            unit_id: second.unit_id.clone(),
            reason: "14-BOY-2 does not answer the radio".into(),
        })
        .await?
        .into_inner()
        .job
        .expect("the reassigned job");
    assert_eq!(reassigned.unit_id, second.unit_id);

    let mut back_in_queue: Vec<&Job> = ignored.iter().map(|(job, _)| job).collect();
    back_in_queue.push(&moved);
    for job in back_in_queue {
        eventually(
            Duration::from_secs(20),
            "the unacknowledged job back in the queue",
            || async {
                let job = get_job(dispatch, &job.job_id).await?;
                Ok((job.state == JobState::Queued as i32).then_some(()))
            },
        )
        .await?;
    }
    // long enough for a second delivery of any timer to have fired
    tokio::time::sleep(Duration::from_secs(ACK_TIMEOUT_SECS + 2)).await;

    for (job, unit) in &ignored {
        let now = get_job(dispatch, &job.job_id).await?;
        assert_eq!(now.state, JobState::Queued as i32, "{}", job.sr_number);
        assert!(now.unit_id.is_empty(), "no unit holds a timed-out job");
        assert_eq!(
            count_events(dispatch, &job.job_id, EventType::AckTimeout).await?,
            1,
            "exactly one ACK_TIMEOUT for {}",
            job.sr_number
        );
        assert_eq!(
            count_flags(&now, FlagKind::AckTimeout),
            1,
            "{:?}",
            flag_kinds(&now)
        );
        let event = timeline(dispatch, &job.job_id)
            .await?
            .into_iter()
            .find(|e| e.r#type == EventType::AckTimeout as i32)
            .unwrap();
        assert_eq!(event.actor.map(|a| a.role), Some(Role::System as i32));
        let report = verify(&processes[1], &job.job_id).await?;
        assert!(report.intact, "two processes kept one chain: {report:?}");
        let freed = get_unit(dispatch, "14", &unit.unit_id).await?;
        assert_eq!(
            freed.status,
            UnitStatus::Available as i32,
            "{}",
            unit.call_sign
        );
        assert!(freed.current_job_id.is_empty());
    }
    let queue = dispatch
        .clone()
        .list_queue(ListQueueRequest {
            precinct: "14".into(),
            page_size: 100,
            page_token: String::new(),
        })
        .await?
        .into_inner();
    assert_eq!(
        queue.total_queued, 7,
        "the seven are back in the precinct queue"
    );
    let review = dispatch
        .clone()
        .list_review_items(ListReviewItemsRequest {
            precinct: "14".into(),
            page_size: 100,
            page_token: String::new(),
        })
        .await?
        .into_inner()
        .items;
    let timeouts = review
        .iter()
        .filter(|i| {
            i.flag
                .as_ref()
                .is_some_and(|f| f.kind == FlagKind::AckTimeout as i32)
        })
        .count();
    assert_eq!(timeouts, 7, "each timeout is up for review once");

    let now = get_job(dispatch, &answered.job_id).await?;
    assert_eq!(
        now.state,
        JobState::Acknowledged as i32,
        "acknowledged in time"
    );
    assert_eq!(now.unit_id, answering.unit_id);
    assert_eq!(
        count_events(dispatch, &answered.job_id, EventType::AckTimeout).await?,
        0
    );
    assert!(now.flags.is_empty(), "{:?}", flag_kinds(&now));

    let events = timeline(dispatch, &moved.job_id).await?;
    let timeouts: Vec<_> = events
        .iter()
        .filter(|e| e.r#type == EventType::AckTimeout as i32)
        .collect();
    assert_eq!(
        timeouts.len(),
        1,
        "one timeout for the reassigned job: {timeouts:?}"
    );
    assert_eq!(
        timeouts[0].unit_id, second.unit_id,
        "the second unit's assignment timed out"
    );
    let waited = seconds_between(
        reassigned.assigned_at.as_ref().expect("reassigned at"),
        timeouts[0].occurred_at.as_ref().unwrap(),
    );
    assert!(
        waited >= ACK_TIMEOUT_SECS as f64 - 0.1,
        "the first assignment's timer must not time out the second assignment ({waited:.1}s after it)"
    );
    assert_eq!(
        get_job(dispatch, &moved.job_id).await?.state,
        JobState::Queued as i32
    );

    drop(replica);
    suite.stop().await
}

#[tokio::test]
async fn an_sla_breach_is_raised_once_with_two_dispatch_processes() -> anyhow::Result<()> {
    let window_start = chrono::Utc::now() - chrono::Duration::minutes(1);
    let suite = Suite::start(options(&[(
        "DISPATCH311_SLA_OVERRIDE_SECS",
        &SLA_SECS.to_string(),
    )]))
    .await?;
    let replica = suite.spawn_replica(Service::Dispatch).await?;
    let dispatch = &suite.dispatch().await?;
    let other = &replica.dispatch().await?;

    // closed well before it is due: never breached
    let prompt = hydrant_at(&suite, EMPIRE_STATE).await?;
    let unit = register_unit(dispatch, "14-ADAM-1", "14", &["O-1"], EMPIRE_STATE).await?;
    drive_to_scene(other, &prompt, &unit, "O-1", EMPIRE_STATE).await?;
    close(
        dispatch,
        close_request(
            &prompt.job_id,
            "O-1",
            ResolutionCode::ActionTaken,
            EMPIRE_STATE,
        ),
    )
    .await?;

    // four left open (one of them assigned and acknowledged)
    let mut open = Vec::new();
    for n in 0..4 {
        let job = hydrant_at(&suite, offset(EMPIRE_STATE, 25.0 * n as f64, 0.0)).await?;
        let due = seconds_between(
            job.queued_at.as_ref().unwrap(),
            job.sla_due_at.as_ref().unwrap(),
        );
        assert!(
            (due - SLA_SECS as f64).abs() < 1.0,
            "the SLA override sets due = queued + {SLA_SECS}s, got {due}s"
        );
        open.push(job);
    }
    let assigned_unit = register_unit(dispatch, "14-ADAM-2", "14", &["O-2"], EMPIRE_STATE).await?;
    assign(other, &open[0].job_id, &assigned_unit.unit_id).await?;
    acknowledge(dispatch, &open[0].job_id, "O-2", EMPIRE_STATE).await?;
    assert!(
        list_jobs(dispatch, JobFilter::Overdue).await?.is_empty(),
        "nothing is overdue yet"
    );

    for job in &open {
        eventually(PIPELINE, "the SLA breach", || async {
            let job = get_job(dispatch, &job.job_id).await?;
            Ok(job.sla_breached.then_some(()))
        })
        .await?;
    }
    // long enough for a second delivery of any timer to have fired
    tokio::time::sleep(Duration::from_secs(3)).await;

    for job in &open {
        let now = get_job(dispatch, &job.job_id).await?;
        assert!(
            now.sla_remaining_seconds < 0,
            "overdue: {}",
            now.sla_remaining_seconds
        );
        assert_eq!(
            count_events(dispatch, &job.job_id, EventType::SlaBreached).await?,
            1,
            "exactly one SLA_BREACHED for {}",
            job.sr_number
        );
        assert_eq!(
            count_flags(&now, FlagKind::SlaBreach),
            1,
            "{:?}",
            flag_kinds(&now)
        );
        assert_ne!(now.state, JobState::Closed as i32);
        let report = verify(other, &job.job_id).await?;
        assert!(report.intact, "two processes kept one chain: {report:?}");
    }
    let mut expected: Vec<String> = open.iter().map(|j| j.job_id.clone()).collect();
    expected.sort();
    assert_eq!(
        list_jobs(dispatch, JobFilter::Overdue).await?,
        expected,
        "the open jobs past due, not the one closed in time"
    );
    assert_eq!(list_jobs(other, JobFilter::Flagged).await?, expected);
    assert_eq!(
        get_job(dispatch, &open[0].job_id).await?.state,
        JobState::Acknowledged as i32,
        "a breach escalates, it does not take the job from its unit"
    );

    let closed_in_time = get_job(dispatch, &prompt.job_id).await?;
    assert!(!closed_in_time.sla_breached);
    assert_eq!(
        count_events(dispatch, &prompt.job_id, EventType::SlaBreached).await?,
        0
    );

    let stats = dispatch
        .clone()
        .get_precinct_stats(GetPrecinctStatsRequest {
            precinct: "14".into(),
            window_start: Some(timestamp_of(window_start)),
            window_end: Some(timestamp_of(
                chrono::Utc::now() + chrono::Duration::minutes(1),
            )),
        })
        .await?
        .into_inner();
    assert_eq!(stats.jobs_received, 5);
    assert_eq!(stats.sla_breaches, 4);

    drop(replica);
    suite.stop().await
}

/// PostgreSQL is the source of truth for timers too: Redis restarting empty
/// loses every scheduled check, and dispatch arms them again from its own
/// tables, so each still fires, once, and not before its time.
#[tokio::test]
async fn timers_lost_with_redis_are_armed_again_from_the_database_and_fire_once()
-> anyhow::Result<()> {
    let suite = Suite::start(options(&[
        ("DISPATCH311_SLA_OVERRIDE_SECS", "10"),
        ("DISPATCH311_ACK_TIMEOUT_SECS", "8"),
        ("DISPATCH311_TIMER_RECONCILE_SECS", "1"),
    ]))
    .await?;
    let dispatch = suite.dispatch().await?;
    let pool = suite.database().await?;
    let mut jobs = Vec::new();
    for n in 0..3 {
        jobs.push(hydrant_at(&suite, offset(EMPIRE_STATE, 40.0 * n as f64, 0.0)).await?);
    }
    let unit = register_unit(&dispatch, "14-ADAM-1", "14", &["O-1"], EMPIRE_STATE).await?;
    assign(&dispatch, &jobs[0].job_id, &unit.unit_id).await?;

    // every timer reached Redis, then Redis forgets everything of this suite
    eventually(
        Duration::from_secs(10),
        "dispatch's outbox to be published",
        || {
            let pool = pool.clone();
            async move {
                let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM dispatch.outbox")
                    .fetch_one(&pool)
                    .await?;
                Ok((pending == 0).then_some(()))
            }
        },
    )
    .await?;
    let client = redis::Client::open(suite.redis_url.as_str())?;
    let mut redis = client.get_multiplexed_async_connection().await?;
    let keys: Vec<String> =
        redis::AsyncCommands::keys(&mut redis, format!("{}*", suite.redis_prefix)).await?;
    assert!(
        keys.iter().any(|k| k.contains("dispatch-timers")),
        "the timers were in Redis: {keys:?}"
    );
    let _: () = redis::AsyncCommands::del(&mut redis, &keys).await?;

    // the unacknowledged assignment times out, every SLA breaches, once each
    eventually(
        Duration::from_secs(40),
        "every timer to fire after the wipe",
        || {
            let dispatch = dispatch.clone();
            let jobs = jobs.clone();
            async move {
                let timed_out =
                    count_events(&dispatch, &jobs[0].job_id, EventType::AckTimeout).await?;
                let mut breached = 0;
                for job in &jobs {
                    breached +=
                        count_events(&dispatch, &job.job_id, EventType::SlaBreached).await?;
                }
                Ok((timed_out == 1 && breached == jobs.len()).then_some(()))
            }
        },
    )
    .await?;
    // a few reconciliations later, still once each, and none before its time
    tokio::time::sleep(Duration::from_secs(3)).await;
    for job in &jobs {
        let events = timeline(&dispatch, &job.job_id).await?;
        let breaches: Vec<_> = events
            .iter()
            .filter(|e| e.r#type == EventType::SlaBreached as i32)
            .collect();
        assert_eq!(breaches.len(), 1, "{}: {events:?}", job.sr_number);
        let due = get_job(&dispatch, &job.job_id).await?.sla_due_at.unwrap();
        assert!(
            seconds_between(&due, breaches[0].occurred_at.as_ref().unwrap()) >= 0.0,
            "{} breached before its due time",
            job.sr_number
        );
    }
    assert_eq!(
        count_events(&dispatch, &jobs[0].job_id, EventType::AckTimeout).await?,
        1
    );

    suite.stop().await
}
