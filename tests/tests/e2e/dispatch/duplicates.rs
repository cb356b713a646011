//! Reports of one incident, one job, end to end with the real binaries:
//! neighbours' reports of one blocked driveway become one job that counts
//! them, each complainant hears which request theirs was linked to and then
//! follows the job to its closure and survey; a "not fixed" answer from any
//! of them reopens the one job once; two dispatch replicas receiving reports
//! of one incident at once make one job.

use std::{collections::BTreeSet, time::Duration};

use dispatch311_proto::{
    common::v1::{Address, GeoPoint, ResolutionCode, ServiceRequestStatus},
    dispatch::v1::{
        EventType, GetPrecinctStatsRequest, Job, JobState, ListRepeatLocationsRequest,
        UnlinkReportRequest,
    },
    intake::v1::CreateServiceRequestRequest,
    survey::v1::{
        Agreement, ConditionCorrected, DissatisfactionReason, GetSatisfactionStatsRequest, GroupBy,
    },
};
use dispatch311_tests::{
    cad::{
        EMPIRE_STATE, PIPELINE, assign, dispatcher, get_job, officer, offset, register_unit,
        supervisor, timeline, timestamp_of, wait_for_job, wait_for_sr_status,
    },
    suite::{Service, Suite, SuiteOptions, eventually},
    survey::{Complainant, Poller, answer, close_at_scene, closure_of, complaint_from},
};
use tonic::Code;

/// Linking on (the harness turns it off for the other tests), and the flags
/// for closing within seconds off: these tests close as soon as they arrive.
fn linking() -> SuiteOptions {
    SuiteOptions {
        env: vec![
            ("DISPATCH311_LINK_DUPLICATES".into(), "true".into()),
            ("DISPATCH311_FAST_CLOSURE_SECS".into(), "0".into()),
            ("DISPATCH311_MIN_ON_SCENE_SECS".into(), "0".into()),
        ],
        ..SuiteOptions::default()
    }
}

/// A neighbour's report of a car across the driveway at `street_address`.
fn driveway(street_address: &str, at: GeoPoint) -> CreateServiceRequestRequest {
    let mut request = complaint_from(
        Complainant::Consenting,
        "Blocked Driveway",
        "No Access",
        at,
        "MANHATTAN",
    );
    request.address = Some(Address {
        street_address: street_address.into(),
        borough: "MANHATTAN".into(),
        ..Default::default()
    });
    request
}

/// Files `request` and returns its SR number.
async fn file_report(
    suite: &Suite,
    request: CreateServiceRequestRequest,
) -> anyhow::Result<String> {
    Ok(suite
        .intake()
        .await?
        .create_service_request(request)
        .await?
        .into_inner()
        .service_request
        .expect("intake answers with the request")
        .sr_number)
}

/// Waits until `job_id` counts `reports` reports.
async fn wait_for_reports(suite: &Suite, job_id: &str, reports: u32) -> anyhow::Result<Job> {
    let dispatch = suite.dispatch().await?;
    eventually(
        PIPELINE,
        &format!("{job_id} to count {reports} reports"),
        || {
            let dispatch = dispatch.clone();
            let job_id = job_id.to_string();
            async move {
                let job = get_job(&dispatch, &job_id).await?;
                Ok((job.report_count >= reports).then_some(job))
            }
        },
    )
    .await
}

#[tokio::test]
async fn reports_of_one_driveway_are_one_job_closed_and_surveyed_for_each() -> anyhow::Result<()> {
    let suite = Suite::start(linking()).await?;
    let dispatch = suite.dispatch().await?;
    let mut survey = suite.survey().await?;
    let unit = register_unit(&dispatch, "14-DRIVE-1", "14", &["O-14-9"], EMPIRE_STATE).await?;

    // three neighbours within minutes: the same address spelled two ways,
    // and a phone's fix 12 m off
    let first = file_report(&suite, driveway("350 5th Avenue", EMPIRE_STATE)).await?;
    let job = wait_for_job(&dispatch, &first).await?;
    let second = file_report(
        &suite,
        driveway("350  5TH AVENUE.", offset(EMPIRE_STATE, 12.0, 0.0)),
    )
    .await?;
    let third = file_report(&suite, driveway("", offset(EMPIRE_STATE, 0.0, 12.0))).await?;
    // another driveway 200 m away is another job
    let elsewhere = file_report(
        &suite,
        driveway("10 West 32nd Street", offset(EMPIRE_STATE, -200.0, 0.0)),
    )
    .await?;
    let other_job = wait_for_job(&dispatch, &elsewhere).await?;
    assert_ne!(other_job.job_id, job.job_id);
    assert_eq!(other_job.report_count, 1);

    let job = wait_for_reports(&suite, &job.job_id, 3).await?;
    assert_eq!(job.report_count, 3);
    assert_eq!(
        job.linked_sr_numbers
            .iter()
            .cloned()
            .collect::<BTreeSet<_>>(),
        BTreeSet::from([second.clone(), third.clone()])
    );
    // a linked report's number finds the job it is a report of
    assert_eq!(wait_for_job(&dispatch, &second).await?.job_id, job.job_id);
    // the third report raised the job one step (the rules' mark is 3)
    assert!(
        job.priority > other_job.priority,
        "{:?} vs {:?}",
        job.priority,
        other_job.priority
    );
    let links: Vec<_> = timeline(&dispatch, &job.job_id)
        .await?
        .into_iter()
        .filter(|e| e.r#type == EventType::DuplicateLinked as i32)
        .collect();
    assert_eq!(links.len(), 2, "{links:?}");
    assert!(
        links.iter().any(|e| e.reason.contains(&second))
            && links.iter().any(|e| e.reason.contains(&third))
    );

    // each linked complainant hears which request theirs joined, and nothing personal
    for report in [&second, &third] {
        let sr = wait_for_sr_status(&suite, report, ServiceRequestStatus::Queued).await?;
        let entry = sr
            .timeline
            .iter()
            .find(|e| e.message.contains("linked to"))
            .unwrap_or_else(|| panic!("{report}'s timeline says it was linked: {:?}", sr.timeline));
        assert!(entry.message.contains(&first), "{entry:?}");
        assert!(
            !entry.message.contains("350"),
            "no address in the public text: {entry:?}"
        );
    }

    // one visit and one closure close every report, and each is surveyed
    let closed = close_at_scene(
        &dispatch,
        &job,
        &unit,
        "O-14-9",
        ResolutionCode::ActionTaken,
    )
    .await?;
    assert_eq!(closed.state, JobState::Closed as i32);
    for report in [&first, &second, &third] {
        let sr = wait_for_sr_status(&suite, report, ServiceRequestStatus::Closed).await?;
        let resolution = sr.resolution.expect("a closed request has its resolution");
        assert_eq!(
            resolution.code,
            ResolutionCode::ActionTaken as i32,
            "{report}"
        );
    }
    assert_eq!(
        wait_for_job(&dispatch, &elsewhere).await?.state,
        JobState::Queued as i32,
        "the other driveway's job stays open"
    );
    // the precinct's figures count closures per job and complainants per request
    let now = chrono::Utc::now();
    let stats = dispatch
        .clone()
        .get_precinct_stats(GetPrecinctStatsRequest {
            precinct: "14".into(),
            window_start: Some(timestamp_of(now - chrono::Duration::hours(1))),
            window_end: Some(timestamp_of(now + chrono::Duration::minutes(1))),
        })
        .await?
        .into_inner();
    assert_eq!(
        (stats.jobs_received, stats.jobs_closed),
        (2, 1),
        "{stats:?}"
    );
    assert_eq!(
        (stats.requests_received, stats.requests_closed),
        (4, 3),
        "{stats:?}"
    );
    assert_eq!(stats.reports_per_job, 2.0);
    assert_eq!(
        stats.share_closed_within_5_minutes, 1.0,
        "one closure, counted once"
    );
    // the driveway is a repeat location: one job, three requests; the other
    // place had one request and is left out
    let places = dispatch
        .clone()
        .list_repeat_locations(ListRepeatLocationsRequest {
            precinct: "14".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .locations;
    assert_eq!(places.len(), 1, "{places:?}");
    assert_eq!(places[0].street_address, "350 5TH AVENUE");
    assert_eq!(
        (places[0].jobs, places[0].requests, places[0].open_jobs),
        (1, 3, 0)
    );
    assert_eq!(places[0].complaint_types, ["Blocked Driveway"]);
    let mut poller = Poller::new(survey.clone(), 100);
    let mut tokens = Vec::new();
    for report in [&first, &second, &third] {
        let closure = poller.wait_for(report, closure_of(report, 1)).await?;
        tokens.push(closure.survey_token);
    }
    poller.poll().await?;
    assert_eq!(
        poller
            .seen
            .iter()
            .filter(|c| [&first, &second, &third].contains(&&c.sr_number))
            .count(),
        3,
        "one closure row per report"
    );

    // the survey's closure figures count the job's closure once, and each request
    let figures = survey
        .get_satisfaction_stats(GetSatisfactionStatsRequest {
            group_by: GroupBy::Precinct as i32,
            precinct: "14".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .groups;
    assert_eq!(figures.len(), 1, "{figures:?}");
    assert_eq!(
        (figures[0].closures, figures[0].requests_closed),
        (1, 3),
        "{figures:?}"
    );
    assert_eq!(figures[0].reports_per_job, 3.0);
    // two of them say it was not fixed: the one job reopens, once
    for token in &tokens[1..] {
        survey
            .submit_survey_response(answer(
                token,
                Agreement::StronglyDisagree,
                DissatisfactionReason::NotCorrectedReopen,
                ConditionCorrected::No,
                "the car is still across the driveway",
            ))
            .await?;
    }
    let reopened = eventually(PIPELINE, "the job to be reopened", || {
        let dispatch = dispatch.clone();
        let job_id = job.job_id.clone();
        async move {
            let job = get_job(&dispatch, &job_id).await?;
            Ok((job.state == JobState::Queued as i32).then_some(job))
        }
    })
    .await?;
    // give the second answer's reopen request time to arrive and be refused
    tokio::time::sleep(Duration::from_secs(2)).await;
    let events = timeline(&dispatch, &reopened.job_id).await?;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.r#type == EventType::Reopened as i32)
            .count(),
        1,
        "reopened once however many answer so"
    );
    assert_eq!(get_job(&dispatch, &job.job_id).await?.reopen_count, 1);
    // the reopening reaches every report's timeline
    for report in [&first, &second, &third] {
        wait_for_sr_status(&suite, report, ServiceRequestStatus::Reopened).await?;
    }
    suite.stop().await
}

#[tokio::test]
async fn two_dispatch_replicas_make_one_job_of_reports_arriving_at_once() -> anyhow::Result<()> {
    let suite = Suite::start(linking()).await?;
    let _replica = suite.spawn_replica(Service::Dispatch).await?;
    let dispatch = suite.dispatch().await?;

    // four incidents 300 m apart, three reports of each, all filed at once
    let incidents: Vec<GeoPoint> = (0..4)
        .map(|i| offset(EMPIRE_STATE, 300.0 * f64::from(i) - 450.0, 0.0))
        .collect();
    let mut filings = Vec::new();
    for (i, at) in incidents.iter().enumerate() {
        for _ in 0..3 {
            let request = driveway(&format!("{} Fifth Avenue", 100 + i), *at);
            filings.push(file_report(&suite, request));
        }
    }
    let numbers = futures::future::try_join_all(filings).await?;

    let mut jobs = BTreeSet::new();
    for (i, chunk) in numbers.chunks(3).enumerate() {
        let mut of_incident = BTreeSet::new();
        for number in chunk {
            of_incident.insert(wait_for_job(&dispatch, number).await?.job_id);
        }
        assert_eq!(
            of_incident.len(),
            1,
            "incident {i}: one job for its three reports"
        );
        let job_id = of_incident.into_iter().next().expect("one job");
        let job = wait_for_reports(&suite, &job_id, 3).await?;
        assert_eq!(job.report_count, 3, "incident {i}");
        jobs.insert(job_id);
    }
    assert_eq!(jobs.len(), 4, "a job per incident");
    suite.stop().await
}

#[tokio::test]
async fn a_supervisor_unlinks_a_report_into_a_job_of_its_own_that_its_complainant_follows()
-> anyhow::Result<()> {
    let suite = Suite::start(linking()).await?;
    let dispatch = suite.dispatch().await?;
    let unit = register_unit(&dispatch, "14-DRIVE-2", "14", &["O-14-7"], EMPIRE_STATE).await?;
    let other_unit =
        register_unit(&dispatch, "14-DRIVE-3", "14", &["O-14-8"], EMPIRE_STATE).await?;

    let first = file_report(&suite, driveway("350 5th Avenue", EMPIRE_STATE)).await?;
    let job = wait_for_job(&dispatch, &first).await?;
    let second = file_report(&suite, driveway("350 5th Avenue", EMPIRE_STATE)).await?;
    wait_for_reports(&suite, &job.job_id, 2).await?;
    // the job moves on, and the report's timeline with it
    assign(&dispatch, &job.job_id, &unit.unit_id).await?;
    wait_for_sr_status(&suite, &second, ServiceRequestStatus::Assigned).await?;

    let unlink = |actor, reason: &str| UnlinkReportRequest {
        actor,
        sr_number: second.clone(),
        reason: reason.into(),
    };
    let reason = "the second car blocks the next driveway down, not this one";
    // officers and dispatchers may not, a short reason is refused: nothing changes
    for actor in [officer("O-14-7"), dispatcher()] {
        let refused = dispatch
            .clone()
            .unlink_report(unlink(actor, reason))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    }
    let refused = dispatch
        .clone()
        .unlink_report(unlink(supervisor(), "not the same"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert_eq!(get_job(&dispatch, &job.job_id).await?.report_count, 2);

    let answer = dispatch
        .clone()
        .unlink_report(unlink(supervisor(), reason))
        .await?
        .into_inner();
    let own = answer.job.expect("the report's own job");
    let left = answer.linked_job.expect("the job it left");
    assert_eq!(own.sr_number, second);
    assert_ne!(own.job_id, job.job_id);
    assert_eq!(own.state, JobState::Queued as i32);
    assert_eq!((left.report_count, left.linked_sr_numbers.len()), (1, 0));
    assert_eq!(wait_for_job(&dispatch, &second).await?.job_id, own.job_id);
    let unlinked = timeline(&dispatch, &job.job_id)
        .await?
        .into_iter()
        .find(|e| e.r#type == EventType::DuplicateUnlinked as i32)
        .expect("a DUPLICATE_UNLINKED event");
    assert!(
        unlinked.reason.contains(&second) && unlinked.reason.contains(reason),
        "{unlinked:?}"
    );
    assert_eq!(unlinked.actor.unwrap_or_default().id, "S-900");
    let again = dispatch
        .clone()
        .unlink_report(unlink(supervisor(), reason))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");

    // the complainant follows the new job from its start: queued again,
    // then closed with it, though its first event numbers lower than the
    // old job's
    let sr = wait_for_sr_status(&suite, &second, ServiceRequestStatus::Queued).await?;
    assert!(
        sr.timeline
            .iter()
            .any(|e| e.message.contains("a job of its own")),
        "{:?}",
        sr.timeline
    );
    close_at_scene(
        &dispatch,
        &own,
        &other_unit,
        "O-14-8",
        ResolutionCode::ActionTaken,
    )
    .await?;
    let sr = wait_for_sr_status(&suite, &second, ServiceRequestStatus::Closed).await?;
    assert_eq!(
        sr.resolution.expect("resolved").code,
        ResolutionCode::ActionTaken as i32
    );
    // the first report stays with its own, assigned job
    assert_eq!(
        wait_for_sr_status(&suite, &first, ServiceRequestStatus::Assigned)
            .await?
            .status,
        ServiceRequestStatus::Assigned as i32
    );
    suite.stop().await
}
