//! Reopen requests from the survey path, end to end with the real binaries:
//! a `ReopenRequest` on the `reopen` queue puts a closed job back in its
//! precinct queue one step more urgent, with a REOPENED event by the survey,
//! on the review list when asked, and public in intake; an answer about an
//! older closure, a redelivery, or a request for an unknown request changes
//! nothing.

use std::time::Duration;

use dispatch311_domain::jobs::{kinds, queues};
use dispatch311_proto::{
    common::v1::{Priority, ResolutionCode, ServiceRequestStatus},
    dispatch::v1::{
        EventType, FlagKind, Job, JobState, ListQueueRequest, ListReviewItemsRequest,
        ReopenJobRequest, Role, Unit,
    },
    jobs::v1::ReopenRequest,
};
use dispatch311_queue::{JobQueue, QueueConfig};
use dispatch311_tests::{
    cad::{
        Dispatch, EMPIRE_STATE, actor, close, close_request, drive_to_scene, get_job, has_flag,
        hydrant_at, register_unit, snapshot, supervisor, timeline, wait_for_closures,
        wait_for_sr_status,
    },
    suite::{Service, Suite, SuiteOptions, eventually},
};

/// Closing within seconds of assignment is what these tests do; the flags
/// for it are tested in dispatch_rules.rs, so they are off here.
fn without_closure_flags() -> SuiteOptions {
    SuiteOptions {
        env: vec![
            ("DISPATCH311_FAST_CLOSURE_SECS".into(), "0".into()),
            ("DISPATCH311_MIN_ON_SCENE_SECS".into(), "0".into()),
        ],
        ..SuiteOptions::default()
    }
}

/// The survey service's side of the queue, on the suite's Redis prefix.
async fn survey_queue(suite: &Suite) -> anyhow::Result<JobQueue> {
    Ok(JobQueue::connect(QueueConfig {
        redis_url: suite.redis_url.clone(),
        key_prefix: suite.redis_prefix.clone(),
        ..QueueConfig::default()
    })
    .await?)
}

async fn ask_to_reopen(queue: &JobQueue, request: &ReopenRequest) -> anyhow::Result<()> {
    queue
        .publish(queues::REOPEN, kinds::REOPEN, &request.sr_id, request)
        .await?;
    Ok(())
}

/// Waits until dispatch has settled every reopen request published so far
/// (done or dead-lettered); returns how many were dead-lettered.
async fn settled(queue: &JobQueue) -> anyhow::Result<u64> {
    eventually(
        Duration::from_secs(20),
        "dispatch to settle the reopen requests",
        || async move {
            let stats = queue.stats(queues::REOPEN).await?;
            let idle = stats.stream_len == 0 && stats.pending == 0 && stats.delayed == 0;
            Ok(idle.then_some(stats.dead))
        },
    )
    .await
}

/// Drives `job` to the scene with `unit` and closes it; returns the closure
/// number dispatch published for the survey.
async fn close_on_scene(
    suite: &Suite,
    dispatch: &Dispatch,
    job: &Job,
    unit: &Unit,
    closures_so_far: usize,
) -> anyhow::Result<u32> {
    let job = get_job(dispatch, &job.job_id).await?;
    drive_to_scene(dispatch, &job, unit, "O-1", EMPIRE_STATE).await?;
    close(
        dispatch,
        close_request(
            &job.job_id,
            "O-1",
            ResolutionCode::ConditionGoneOnArrival,
            EMPIRE_STATE,
        ),
    )
    .await?;
    let closures = wait_for_closures(suite, &job.sr_id, closures_so_far + 1).await?;
    Ok(closures.last().expect("a closure").event.closure_number)
}

async fn precinct_queue(dispatch: &Dispatch) -> anyhow::Result<Vec<String>> {
    Ok(dispatch
        .clone()
        .list_queue(ListQueueRequest {
            precinct: "14".into(),
            page_size: 100,
            page_token: String::new(),
        })
        .await?
        .into_inner()
        .jobs
        .into_iter()
        .map(|job| job.job_id)
        .collect())
}

#[tokio::test]
async fn a_complainant_who_says_nothing_was_done_reopens_the_job() -> anyhow::Result<()> {
    let mut suite = Suite::start(without_closure_flags()).await?;
    // the test plays the survey service; the closed events stay on the queue
    suite.kill(Service::Survey)?;
    let dispatch = suite.dispatch().await?;
    let queue = survey_queue(&suite).await?;
    let unit = register_unit(&dispatch, "14-ADAM-1", "14", &["O-1"], EMPIRE_STATE).await?;

    let job = hydrant_at(&suite, EMPIRE_STATE).await?;
    assert_eq!(job.priority, Priority::High as i32);
    let closure_number = close_on_scene(&suite, &dispatch, &job, &unit, 0).await?;
    assert_eq!(closure_number, 1);
    wait_for_sr_status(&suite, &job.sr_number, ServiceRequestStatus::Closed).await?;

    let reason = "survey answer: the van is still on the hydrant";
    let request = ReopenRequest {
        sr_id: job.sr_id.clone(),
        sr_number: job.sr_number.clone(),
        closure_number,
        reason: reason.into(),
        review: true,
    };
    ask_to_reopen(&queue, &request).await?;
    let reopened = eventually(Duration::from_secs(20), "the job to be reopened", || {
        let dispatch = dispatch.clone();
        let job_id = job.job_id.clone();
        async move {
            let job = get_job(&dispatch, &job_id).await?;
            Ok((job.state == JobState::Queued as i32).then_some(job))
        }
    })
    .await?;
    assert_eq!(reopened.reopen_count, 1);
    assert_eq!(
        reopened.priority,
        Priority::Urgent as i32,
        "one step up from high"
    );
    assert!(reopened.unit_id.is_empty());
    assert!(
        has_flag(&reopened, FlagKind::ReopenedByComplainant),
        "{:?}",
        reopened.flags
    );
    assert_eq!(precinct_queue(&dispatch).await?, [job.job_id.as_str()]);

    let last = timeline(&dispatch, &job.job_id).await?.pop().unwrap();
    assert_eq!(last.r#type, EventType::Reopened as i32);
    assert_eq!(last.actor, actor("survey", Role::System));
    assert_eq!(last.reason, reason);

    let review = dispatch
        .clone()
        .list_review_items(ListReviewItemsRequest {
            precinct: "14".into(),
            page_size: 10,
            page_token: String::new(),
        })
        .await?
        .into_inner();
    assert!(
        review.items.iter().any(|item| {
            item.job.as_ref().is_some_and(|j| j.job_id == job.job_id)
                && item
                    .flag
                    .as_ref()
                    .is_some_and(|f| f.kind == FlagKind::ReopenedByComplainant as i32)
        }),
        "on the review list: {review:?}"
    );

    // public: the reopening follows the closure, with the new priority
    let public = wait_for_sr_status(&suite, &job.sr_number, ServiceRequestStatus::Reopened).await?;
    let statuses: Vec<i32> = public.timeline.iter().map(|entry| entry.status).collect();
    assert_eq!(
        statuses[statuses.len() - 2..],
        [
            ServiceRequestStatus::Closed as i32,
            ServiceRequestStatus::Reopened as i32
        ],
        "{:?}",
        public.timeline
    );
    assert_eq!(public.priority, Priority::Urgent as i32);
    assert!(
        public.resolution.is_none(),
        "a reopened request is unresolved"
    );

    // the same request again (a redelivery) finds the job no longer closed
    let before = snapshot(&dispatch, &job.job_id).await?;
    ask_to_reopen(&queue, &request).await?;
    assert_eq!(settled(&queue).await?, 0);
    assert_eq!(snapshot(&dispatch, &job.job_id).await?, before);

    // the complainant's words are in the event log, never in a log line
    let log = std::fs::read_to_string(suite.log_path(Service::Dispatch))?;
    assert!(
        log.contains("job reopened at the complainant's request"),
        "{}",
        suite.log_tail(Service::Dispatch, 20)
    );
    assert!(!log.contains(reason), "dispatch logged the survey's reason");

    suite.stop().await
}

#[tokio::test]
async fn an_answer_about_an_earlier_closure_changes_nothing() -> anyhow::Result<()> {
    let mut suite = Suite::start(without_closure_flags()).await?;
    suite.kill(Service::Survey)?;
    let dispatch = suite.dispatch().await?;
    let queue = survey_queue(&suite).await?;
    let unit = register_unit(&dispatch, "14-ADAM-1", "14", &["O-1"], EMPIRE_STATE).await?;

    // closed, reopened by a supervisor (no priority change), closed again
    let job = hydrant_at(&suite, EMPIRE_STATE).await?;
    let first = close_on_scene(&suite, &dispatch, &job, &unit, 0).await?;
    dispatch
        .clone()
        .reopen_job(ReopenJobRequest {
            actor: supervisor(),
            job_id: job.job_id.clone(),
            reason: "audit sample".into(),
            raise_priority: false,
        })
        .await?;
    let second = close_on_scene(&suite, &dispatch, &job, &unit, 1).await?;
    assert_eq!((first, second), (1, 2));

    // the complainant answers the first survey late: the job stays closed
    let before = snapshot(&dispatch, &job.job_id).await?;
    assert_eq!(before.job.state, JobState::Closed as i32);
    let stale = ReopenRequest {
        sr_id: job.sr_id.clone(),
        sr_number: job.sr_number.clone(),
        closure_number: first,
        reason: "nothing was done".into(),
        review: true,
    };
    ask_to_reopen(&queue, &stale).await?;
    assert_eq!(settled(&queue).await?, 0, "an old answer is not an error");
    assert_eq!(snapshot(&dispatch, &job.job_id).await?, before);

    // the answer about the latest closure reopens it; without review, no flag
    let current = ReopenRequest {
        closure_number: second,
        review: false,
        ..stale
    };
    ask_to_reopen(&queue, &current).await?;
    let reopened = eventually(Duration::from_secs(20), "the job to be reopened", || {
        let dispatch = dispatch.clone();
        let job_id = job.job_id.clone();
        async move {
            let job = get_job(&dispatch, &job_id).await?;
            Ok((job.state == JobState::Queued as i32).then_some(job))
        }
    })
    .await?;
    assert_eq!(reopened.reopen_count, 2);
    assert_eq!(reopened.priority, Priority::Urgent as i32);
    assert!(
        !has_flag(&reopened, FlagKind::ReopenedByComplainant),
        "{:?}",
        reopened.flags
    );
    let last = timeline(&dispatch, &job.job_id).await?.pop().unwrap();
    assert_eq!(last.r#type, EventType::Reopened as i32);
    assert_eq!(last.actor, actor("survey", Role::System));
    wait_for_sr_status(&suite, &job.sr_number, ServiceRequestStatus::Reopened).await?;

    // a request dispatch never had a job for is dead-lettered
    let unknown = ReopenRequest {
        sr_id: uuid::Uuid::now_v7().to_string(),
        sr_number: "SR-2026-9999999".into(),
        closure_number: 1,
        reason: "nothing was done".into(),
        review: false,
    };
    ask_to_reopen(&queue, &unknown).await?;
    assert_eq!(settled(&queue).await?, 1);
    let dead = queue.dead_letters(queues::REOPEN, 10).await?;
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].envelope.as_ref().map(|e| e.sr_id.as_str()),
        Some(unknown.sr_id.as_str())
    );

    suite.stop().await
}
