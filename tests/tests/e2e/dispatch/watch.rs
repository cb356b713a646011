//! A unit's assignment feed (WatchAssignments), end to end with the real
//! binaries: a device sees its assignments and their changes as they happen,
//! and a device that drops the connection and reconnects with the last
//! sequence it saw gets exactly what it missed — nothing lost, nothing twice —
//! then the live feed.

use std::time::Duration;

use dispatch311_proto::{
    common::v1::ResolutionCode,
    dispatch::v1::{
        AssignJobRequest, AssignmentChange, JobState, WatchAssignmentsRequest,
        WatchAssignmentsResponse,
    },
};
use dispatch311_tests::{
    cad::{
        Dispatch, EMPIRE_STATE, acknowledge, assign, close, close_request, dispatcher,
        drive_to_scene, en_route, hydrant_at, offset, on_scene, register_unit,
    },
    suite::{Service, Suite, SuiteOptions},
};
use tonic::{Code, Streaming};

type Feed = Streaming<WatchAssignmentsResponse>;

/// What a device sees of one message.
type Seen = (i64, i32, String, i32);

fn seen(message: &WatchAssignmentsResponse) -> Seen {
    let job = message.job.clone().unwrap_or_default();
    (message.sequence, message.change, job.job_id, job.state)
}

async fn watch(dispatch: &Dispatch, unit_id: &str, after_sequence: i64) -> anyhow::Result<Feed> {
    Ok(dispatch
        .clone()
        .watch_assignments(WatchAssignmentsRequest {
            unit_id: unit_id.into(),
            after_sequence,
        })
        .await?
        .into_inner())
}

async fn next(feed: &mut Feed) -> anyhow::Result<WatchAssignmentsResponse> {
    match tokio::time::timeout(Duration::from_secs(10), feed.message()).await {
        Err(_) => anyhow::bail!("no assignment change within 10s"),
        Ok(Err(status)) => anyhow::bail!("the feed failed: {status:?}"),
        Ok(Ok(None)) => anyhow::bail!("the feed ended"),
        Ok(Ok(Some(message))) => {
            anyhow::ensure!(message.occurred_at.is_some(), "{message:?} has no time");
            Ok(message)
        }
    }
}

async fn take(feed: &mut Feed, count: usize) -> anyhow::Result<Vec<Seen>> {
    let mut messages = Vec::new();
    for _ in 0..count {
        messages.push(seen(&next(feed).await?));
    }
    Ok(messages)
}

fn options() -> SuiteOptions {
    SuiteOptions {
        env: vec![
            ("DISPATCH311_FAST_CLOSURE_SECS".into(), "0".into()),
            ("DISPATCH311_MIN_ON_SCENE_SECS".into(), "0".into()),
        ],
        ..SuiteOptions::default()
    }
}

#[tokio::test]
async fn a_device_that_reconnects_with_its_last_sequence_loses_nothing() -> anyhow::Result<()> {
    let suite = Suite::start(options()).await?;
    let dispatch = suite.dispatch().await?;
    let unit = register_unit(&dispatch, "14-ADAM-1", "14", &["O-1"], EMPIRE_STATE).await?;
    let partner = register_unit(&dispatch, "14-ADAM-2", "14", &["O-2"], EMPIRE_STATE).await?;

    // one device stays connected throughout, for reference
    let mut reference = watch(&dispatch, &unit.unit_id, 0).await?;
    let mut device = watch(&dispatch, &unit.unit_id, 0).await?;

    let first = hydrant_at(&suite, EMPIRE_STATE).await?;
    assign(&dispatch, &first.job_id, &unit.unit_id).await?;
    acknowledge(&dispatch, &first.job_id, "O-1", EMPIRE_STATE).await?;
    let before_drop = take(&mut device, 2).await?;
    assert_eq!(
        before_drop
            .iter()
            .map(|(_, change, job, state)| (*change, job.clone(), *state))
            .collect::<Vec<_>>(),
        [
            (
                AssignmentChange::Assigned as i32,
                first.job_id.clone(),
                JobState::Assigned as i32
            ),
            (
                AssignmentChange::Updated as i32,
                first.job_id.clone(),
                JobState::Acknowledged as i32
            ),
        ]
    );
    let last_seen = before_drop[1].0;
    assert!(before_drop[0].0 < last_seen, "sequences increase");
    drop(device);

    // while the device is out of coverage: the job is worked and closed, a
    // second one is given and taken away again
    en_route(
        &dispatch,
        &first.job_id,
        "O-1",
        offset(EMPIRE_STATE, -200.0, 0.0),
    )
    .await?;
    on_scene(&dispatch, &first.job_id, "O-1", EMPIRE_STATE).await?;
    close(
        &dispatch,
        close_request(
            &first.job_id,
            "O-1",
            ResolutionCode::ActionTaken,
            EMPIRE_STATE,
        ),
    )
    .await?;
    let second = hydrant_at(&suite, offset(EMPIRE_STATE, 100.0, 0.0)).await?;
    assign(&dispatch, &second.job_id, &unit.unit_id).await?;
    dispatch
        .clone()
        .assign_job(AssignJobRequest {
            actor: dispatcher(),
            job_id: second.job_id.clone(),
            unit_id: partner.unit_id.clone(),
            reason: "14-ADAM-2 is closer".into(),
        })
        .await?;

    let everything = take(&mut reference, 7).await?;
    assert_eq!(
        everything[..2],
        before_drop[..],
        "both devices saw the same start"
    );
    let missed = &everything[2..];
    let changes: Vec<(i32, &str)> = missed
        .iter()
        .map(|(_, change, job, _)| (*change, job.as_str()))
        .collect();
    assert_eq!(
        changes,
        [
            (AssignmentChange::Updated as i32, first.job_id.as_str()),
            (AssignmentChange::Updated as i32, first.job_id.as_str()),
            (AssignmentChange::Closed as i32, first.job_id.as_str()),
            (AssignmentChange::Assigned as i32, second.job_id.as_str()),
            (AssignmentChange::Unassigned as i32, second.job_id.as_str()),
        ]
    );
    assert_eq!(missed[0].3, JobState::EnRoute as i32);
    assert_eq!(missed[1].3, JobState::OnScene as i32);
    assert_eq!(missed[2].3, JobState::Closed as i32);
    assert!(
        everything.windows(2).all(|w| w[0].0 < w[1].0),
        "sequences increase: {everything:?}"
    );

    // reconnecting with the last sequence seen replays exactly what was missed
    let mut device = watch(&dispatch, &unit.unit_id, last_seen).await?;
    assert_eq!(take(&mut device, 5).await?, missed);
    // ... and then carries on live
    let third = hydrant_at(&suite, offset(EMPIRE_STATE, 200.0, 0.0)).await?;
    assign(&dispatch, &third.job_id, &unit.unit_id).await?;
    let live = seen(&next(&mut device).await?);
    assert_eq!(live, seen(&next(&mut reference).await?));
    assert_eq!(
        (live.1, live.2.as_str()),
        (AssignmentChange::Assigned as i32, third.job_id.as_str())
    );
    assert!(live.0 > missed[4].0);

    // a device starting fresh is told the unit's current assignment first
    let mut partner_device = watch(&dispatch, &partner.unit_id, 0).await?;
    let current = next(&mut partner_device).await?;
    let job = current.job.expect("the current job");
    assert_eq!(job.job_id, second.job_id);
    assert_eq!(job.state, JobState::Assigned as i32);
    assert_eq!(job.unit_id, partner.unit_id);

    suite.stop().await
}

#[tokio::test]
async fn reconnecting_again_and_again_while_jobs_change_loses_and_repeats_nothing()
-> anyhow::Result<()> {
    const JOBS: usize = 5;
    let suite = Suite::start(options()).await?;
    let dispatch = suite.dispatch().await?;
    let unit = register_unit(&dispatch, "14-ADAM-1", "14", &["O-1"], EMPIRE_STATE).await?;
    let mut jobs = Vec::new();
    for n in 0..JOBS {
        jobs.push(hydrant_at(&suite, offset(EMPIRE_STATE, 20.0 * n as f64, 0.0)).await?);
    }
    let last_job = jobs[JOBS - 1].job_id.clone();
    let mut reference = watch(&dispatch, &unit.unit_id, 0).await?;
    let mut feed = watch(&dispatch, &unit.unit_id, 0).await?;

    // the unit works its jobs as fast as it can ...
    let worker = {
        let dispatch = dispatch.clone();
        let unit = unit.clone();
        tokio::spawn(async move {
            for job in &jobs {
                let place = job.location.unwrap();
                drive_to_scene(&dispatch, job, &unit, "O-1", place).await?;
                close(
                    &dispatch,
                    close_request(&job.job_id, "O-1", ResolutionCode::NoEvidence, place),
                )
                .await?;
            }
            anyhow::Ok(())
        })
    };

    // ... while its device keeps losing the connection after two messages
    let mut device_saw: Vec<Seen> = Vec::new();
    let mut reconnections = 0;
    'device: loop {
        for _ in 0..2 {
            let message = seen(&next(&mut feed).await?);
            let done = message.1 == AssignmentChange::Closed as i32 && message.2 == last_job;
            device_saw.push(message);
            if done {
                break 'device;
            }
        }
        drop(feed);
        let after = device_saw.last().expect("two messages seen").0;
        feed = watch(&dispatch, &unit.unit_id, after).await?;
        reconnections += 1;
    }
    worker.await??;

    let mut reference_saw: Vec<Seen> = Vec::new();
    loop {
        let message = seen(&next(&mut reference).await?);
        let done = message.1 == AssignmentChange::Closed as i32 && message.2 == last_job;
        reference_saw.push(message);
        if done {
            break;
        }
    }
    assert!(
        reference_saw.len() >= JOBS * 5,
        "assigned, acknowledged, en route, on scene, closed for each job: {}",
        reference_saw.len()
    );
    assert!(reconnections >= 10, "{reconnections} reconnections");
    assert_eq!(
        device_saw, reference_saw,
        "the reconnecting device saw every change once, in order"
    );

    suite.stop().await
}

#[tokio::test]
async fn a_device_follows_changes_made_through_another_dispatch_process() -> anyhow::Result<()> {
    let suite = Suite::start(options()).await?;
    let replica = suite.spawn_replica(Service::Dispatch).await?;
    let here = suite.dispatch().await?;
    let there = replica.dispatch().await?;
    let unit = register_unit(&here, "14-ADAM-1", "14", &["O-1"], EMPIRE_STATE).await?;

    let unknown = watch(&here, &uuid::Uuid::new_v4().to_string(), 0)
        .await
        .unwrap_err();
    let status = unknown.downcast::<tonic::Status>()?;
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    // the device is connected to one process; the dispatcher works through the other
    let mut device = watch(&here, &unit.unit_id, 0).await?;
    let job = hydrant_at(&suite, EMPIRE_STATE).await?;
    assign(&there, &job.job_id, &unit.unit_id).await?;
    acknowledge(&there, &job.job_id, "O-1", EMPIRE_STATE).await?;
    let seen_here = take(&mut device, 2).await?;
    assert_eq!(
        seen_here.iter().map(|s| (s.1, s.3)).collect::<Vec<_>>(),
        [
            (AssignmentChange::Assigned as i32, JobState::Assigned as i32),
            (
                AssignmentChange::Updated as i32,
                JobState::Acknowledged as i32
            )
        ]
    );

    // the device loses that process and resumes on the other one
    drop(device);
    en_route(&here, &job.job_id, "O-1", EMPIRE_STATE).await?;
    on_scene(&there, &job.job_id, "O-1", EMPIRE_STATE).await?;
    let mut device = watch(&there, &unit.unit_id, seen_here[1].0).await?;
    let resumed = take(&mut device, 2).await?;
    assert_eq!(
        resumed.iter().map(|s| (s.1, s.3)).collect::<Vec<_>>(),
        [
            (AssignmentChange::Updated as i32, JobState::EnRoute as i32),
            (AssignmentChange::Updated as i32, JobState::OnScene as i32)
        ]
    );
    close(
        &here,
        close_request(
            &job.job_id,
            "O-1",
            ResolutionCode::ActionTaken,
            EMPIRE_STATE,
        ),
    )
    .await?;
    let closed = seen(&next(&mut device).await?);
    assert_eq!(
        (closed.1, closed.3),
        (AssignmentChange::Closed as i32, JobState::Closed as i32)
    );

    drop(replica);
    suite.stop().await
}
