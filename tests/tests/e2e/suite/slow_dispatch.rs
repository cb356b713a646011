//! What an SRE does with an SR number: finds the slow dispatches
//! (`dispatch311-cli slow`), opens their traces, and sees where the time
//! went; follows a request from its timeline to every step's trace; and
//! finds, in the trace of a later step, the link back to the request's own.

use std::time::Duration;

use dispatch311_auth::Role;
use dispatch311_proto::{
    common::v1::{ResolutionCode, ServiceRequestStatus},
    dispatch::v1::{
        LifecycleStep, ListSlowJobsRequest, dispatch_service_client::DispatchServiceClient,
    },
    intake::v1::{GetServiceRequestRequest, get_service_request_request::Key},
    survey::v1::{Agreement, ConditionCorrected, DissatisfactionReason},
};
use dispatch311_tests::{
    cad::{
        EMPIRE_STATE, close, close_request, complaint, drive_to_scene, register_unit, timeline,
        wait_for_job, wait_for_sr_status,
    },
    otlp::{OtlpReceiver, ReceivedSpan},
    suite::{Service, Suite, SuiteOptions},
    survey::{Poller, answer, closure_of},
};

/// Sends `signal` (STOP, CONT) to a process.
fn signal(pid: u32, signal: &str) -> anyhow::Result<()> {
    let status = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()?;
    anyhow::ensure!(status.success(), "kill -{signal} {pid}: {status}");
    Ok(())
}

#[tokio::test]
async fn a_stalled_dispatch_is_found_first_and_its_trace_says_where_the_time_went()
-> anyhow::Result<()> {
    let receiver = OtlpReceiver::start().await?;
    let suite = Suite::start(SuiteOptions {
        otlp_endpoint: Some(receiver.endpoint()),
        ..SuiteOptions::default()
    })
    .await?;
    let mut intake = suite.intake().await?;
    let dispatch = suite.dispatch().await?;

    // one request queued at the usual pace
    let quick = intake
        .create_service_request(complaint(
            "Illegal Parking",
            "Blocked Hydrant",
            EMPIRE_STATE,
        ))
        .await?
        .into_inner()
        .service_request
        .expect("the request");
    wait_for_job(&dispatch, &quick.sr_number).await?;

    // dispatch stalls (SIGSTOP) for three seconds while the next one is routed
    let pid = suite.pid(Service::Dispatch).expect("dispatch runs");
    signal(pid, "STOP")?;
    let stalled = async {
        let sr = intake
            .create_service_request(complaint(
                "Illegal Parking",
                "Blocked Hydrant",
                EMPIRE_STATE,
            ))
            .await?
            .into_inner()
            .service_request
            .expect("the request");
        wait_for_sr_status(&suite, &sr.sr_number, ServiceRequestStatus::Routed).await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        anyhow::Ok(sr)
    }
    .await;
    signal(pid, "CONT")?;
    let stalled = stalled?;
    wait_for_job(&dispatch, &stalled.sr_number).await?;

    // the finder lists it first, with the trace intake gave the request
    let mut admin = DispatchServiceClient::new(
        suite
            .authenticated(Service::Dispatch, Role::Admin, "sre-1")
            .await?,
    );
    let found = admin
        .list_slow_jobs(ListSlowJobsRequest {
            step: LifecycleStep::Queued as i32,
            ..Default::default()
        })
        .await?
        .into_inner();
    let first = &found.jobs[0];
    assert_eq!(first.sr_number, stalled.sr_number, "{found:?}");
    assert!(first.step_duration.unwrap().seconds >= 3, "{first:?}");
    assert_eq!(first.origin_trace_id, stalled.trace_id);
    assert_eq!(found.jobs[1].sr_number, quick.sr_number);
    let queued = &first.steps[0];
    assert_eq!(queued.step(), LifecycleStep::Queued);
    assert_eq!(queued.trace_id, stalled.trace_id);
    // --over leaves the quick one out
    let over = admin
        .list_slow_jobs(ListSlowJobsRequest {
            step: LifecycleStep::Queued as i32,
            over: Some(prost_types::Duration {
                seconds: 2,
                nanos: 0,
            }),
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(over.jobs.len(), 1, "{over:?}");
    // a step is required, and the refusal says so
    let refused = admin
        .list_slow_jobs(ListSlowJobsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);

    // the same through the command line an SRE types
    let output = suite
        .run_cli(
            Role::Admin,
            &["slow", "--step", "queued", "--since", "1h", "--over", "2s"],
        )
        .await?;
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(printed.starts_with(&stalled.sr_number), "{printed}");
    assert!(printed.contains(&stalled.trace_id), "{printed}");
    assert!(!printed.contains(&quick.sr_number), "{printed}");

    // the trace: the job waited on the queue, not in the handler
    let consumer = receiver
        .wait_for(Duration::from_secs(20), |spans| {
            spans
                .iter()
                .find(|s| s.trace_id == stalled.trace_id && s.name == "process dispatch")
                .cloned()
        })
        .await?;
    let waited: u64 = consumer.attributes["dispatch311.queue.wait_ms"].parse()?;
    assert!(waited >= 2_500, "waited {waited} ms: {consumer:?}");
    assert!(consumer.duration < Duration::from_secs(2), "{consumer:?}");
    // and inside the hop, the batch and its SQL
    let inside = receiver
        .wait_for(Duration::from_secs(20), |spans| {
            let in_trace = |name: &str| -> Option<ReceivedSpan> {
                spans
                    .iter()
                    .find(|s| s.trace_id == stalled.trace_id && s.name == name)
                    .cloned()
            };
            Some((in_trace("batch dispatch_jobs")?, in_trace("INSERT jobs")?))
        })
        .await?;
    let (batch, insert) = inside;
    assert_eq!(batch.attributes["dispatch311.batch.size"], "1");
    assert!(batch.attributes.contains_key("dispatch311.batch.wait_ms"));
    assert_eq!(insert.attributes["db.system"], "postgresql");
    assert_eq!(insert.attributes["db.collection.name"], "jobs");

    suite.stop().await
}

#[tokio::test]
async fn every_step_names_its_trace_and_later_traces_link_to_the_request() -> anyhow::Result<()> {
    let receiver = OtlpReceiver::start().await?;
    let suite = Suite::start(SuiteOptions {
        otlp_endpoint: Some(receiver.endpoint()),
        ..SuiteOptions::default()
    })
    .await?;
    let mut intake = suite.intake().await?;
    let dispatch = suite.dispatch().await?;
    let sr = intake
        .create_service_request(complaint(
            "Illegal Parking",
            "Blocked Hydrant",
            EMPIRE_STATE,
        ))
        .await?
        .into_inner()
        .service_request
        .expect("the request");
    let job = wait_for_job(&dispatch, &sr.sr_number).await?;
    let unit = register_unit(&dispatch, "14-ADAM-1", "14", &["O-1"], EMPIRE_STATE).await?;
    drive_to_scene(&dispatch, &job, &unit, "O-1", EMPIRE_STATE).await?;
    close(
        &dispatch,
        close_request(
            &job.job_id,
            "O-1",
            ResolutionCode::ActionTaken,
            EMPIRE_STATE,
        ),
    )
    .await?;

    // the close is a trace of its own, linked to the request's and naming it
    let close_span = receiver
        .wait_for(Duration::from_secs(20), |spans| {
            spans
                .iter()
                .find(|s| s.name == "dispatch311.dispatch.v1.DispatchService/CloseJob")
                .cloned()
        })
        .await?;
    assert_ne!(close_span.trace_id, sr.trace_id);
    assert!(close_span.links.contains(&sr.trace_id), "{close_span:?}");
    assert_eq!(close_span.attributes["dispatch311.sr.number"], sr.sr_number);
    // inside it, the accountability checks and the write
    let (checks, write) = receiver
        .wait_for(Duration::from_secs(20), |spans| {
            let in_close = |name: &str| {
                spans
                    .iter()
                    .find(|s| s.trace_id == close_span.trace_id && s.name == name)
                    .cloned()
            };
            Some((in_close("accountability checks")?, in_close("UPDATE jobs")?))
        })
        .await?;
    assert_eq!(
        checks.attributes["dispatch311.resolution.code"],
        "ActionTaken"
    );
    assert_eq!(write.attributes["db.operation.name"], "UPDATE");

    // dispatch's event log: each event names the trace that wrote it
    let events = timeline(&dispatch, &job.job_id).await?;
    assert_eq!(
        events[0].trace_id, sr.trace_id,
        "QUEUED is the request's own trace"
    );
    assert_eq!(events.last().unwrap().trace_id, close_span.trace_id);
    let seen: Vec<String> = receiver.spans().into_iter().map(|s| s.trace_id).collect();
    assert!(
        events.iter().all(|e| seen.contains(&e.trace_id)),
        "every event's trace reached the receiver: {events:?}"
    );

    // intake's timeline too, for those who filed it and staff; the public
    // view (anyone holding the SR number) hides them
    let closed = wait_for_sr_status(&suite, &sr.sr_number, ServiceRequestStatus::Closed).await?;
    assert_eq!(closed.timeline[0].trace_id, sr.trace_id);
    let closing = closed
        .timeline
        .iter()
        .find(|entry| entry.status() == ServiceRequestStatus::Closed)
        .expect("a CLOSED entry");
    assert_eq!(closing.trace_id, close_span.trace_id);
    let public = suite
        .intake_as(Role::Public, "anyone")
        .await?
        .get_service_request(GetServiceRequestRequest {
            key: Some(Key::SrNumber(sr.sr_number.clone())),
        })
        .await?
        .into_inner()
        .service_request
        .expect("the request");
    assert!(!public.timeline.is_empty());
    assert!(
        public
            .timeline
            .iter()
            .all(|entry| entry.trace_id.is_empty()),
        "{public:?}"
    );

    // the complainant's survey answer links back to the request too
    let mut poller = Poller::new(suite.survey().await?, 100);
    let closure = poller
        .wait_for(&sr.sr_number, closure_of(&sr.sr_number, 1))
        .await?;
    suite
        .survey()
        .await?
        .submit_survey_response(answer(
            &closure.survey_token,
            Agreement::Agree,
            DissatisfactionReason::Unspecified,
            ConditionCorrected::Yes,
            "",
        ))
        .await?;
    let answered = receiver
        .wait_for(Duration::from_secs(20), |spans| {
            spans
                .iter()
                .find(|s| s.name == "dispatch311.survey.v1.SurveyService/SubmitSurveyResponse")
                .cloned()
        })
        .await?;
    assert!(answered.links.contains(&sr.trace_id), "{answered:?}");
    assert_eq!(answered.attributes["dispatch311.sr.number"], sr.sr_number);

    suite.stop().await
}
