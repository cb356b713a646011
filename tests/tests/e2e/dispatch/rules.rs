//! The accountability rules at closure, end to end with the real binaries.
//! Each test tries to break a rule and shows the refusal (FAILED_PRECONDITION,
//! nothing changed) or the flag:
//! - police work cannot be closed "outside jurisdiction" or "referred"; only a
//!   supervisor's approved re-route, with a reason, hands it to another agency;
//! - a field resolution (every code whose public words say the police
//!   responded) needs an arrival on scene within 150 m of the incident;
//! - a duplicate names the report already filed at the same place, or is
//!   closed by a supervisor with a written reason;
//! - a request with photos cannot be closed by an officer who never opened them;
//! - a summons closure needs the summons number;
//! - implausibly fast, short, distant or bursty closures are flagged for review,
//!   never blocked.

use dispatch311_proto::{
    common::v1::{ResolutionCode, ServiceRequestStatus},
    dispatch::v1::{
        ApproveRerouteRequest, EventType, FlagKind, Job, JobFilter, JobState, ListJobsRequest,
        ListReviewItemsRequest, RecordEvidenceViewedRequest, ReopenJobRequest, UnitStatus,
    },
};
use dispatch311_tests::{
    cad::{
        Dispatch, EMPIRE_STATE, acknowledge, assert_refused_unchanged, assign, close,
        close_request, complaint, dispatcher, drive_to_scene, en_route, file, file_and_queue,
        flag_kinds, get_job, get_unit, has_flag, hydrant_at, officer, offset, photo, register_unit,
        snapshot, supervisor, timeline, wait_for_closures, wait_for_sr_status,
    },
    suite::{Service, Suite, SuiteOptions},
};
use tonic::Code;

/// Every outcome whose public words say the police responded.
const FIELD_OUTCOMES: [ResolutionCode; 6] = [
    ResolutionCode::ActionTaken,
    ResolutionCode::SummonsIssued,
    ResolutionCode::NoEvidence,
    ResolutionCode::ConditionGoneOnArrival,
    ResolutionCode::UnableToGainEntry,
    ResolutionCode::PoliceActionNotNecessary,
];

fn env(pairs: &[(&str, &str)]) -> SuiteOptions {
    SuiteOptions {
        env: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..SuiteOptions::default()
    }
}

/// Closing seconds after assignment is what these tests do; the tests of the
/// timing flags turn them back on.
fn without_timing_flags() -> SuiteOptions {
    env(&[
        ("DISPATCH311_FAST_CLOSURE_SECS", "0"),
        ("DISPATCH311_MIN_ON_SCENE_SECS", "0"),
    ])
}

async fn review_items(dispatch: &Dispatch, precinct: &str) -> anyhow::Result<Vec<(String, i32)>> {
    let mut items = Vec::new();
    let mut token = String::new();
    loop {
        let page = dispatch
            .clone()
            .list_review_items(ListReviewItemsRequest {
                precinct: precinct.into(),
                page_size: 100,
                page_token: token,
            })
            .await?
            .into_inner();
        for item in page.items {
            let job = item.job.expect("a review item names its job");
            let flag = item.flag.expect("a review item names its flag");
            assert!(
                !flag.detail.is_empty() && flag.raised_at.is_some(),
                "{flag:?}"
            );
            items.push((job.job_id, flag.kind));
        }
        if page.next_page_token.is_empty() {
            return Ok(items);
        }
        token = page.next_page_token;
    }
}

async fn flagged_jobs(dispatch: &Dispatch, precinct: &str) -> anyhow::Result<Vec<String>> {
    Ok(dispatch
        .clone()
        .list_jobs(ListJobsRequest {
            precinct: precinct.into(),
            filter: JobFilter::Flagged as i32,
            unit_id: String::new(),
            page_size: 100,
            page_token: String::new(),
        })
        .await?
        .into_inner()
        .jobs
        .into_iter()
        .map(|j| j.job_id)
        .collect())
}

#[tokio::test]
async fn police_work_cannot_be_closed_as_outside_jurisdiction_only_rerouted_by_a_supervisor()
-> anyhow::Result<()> {
    let suite = Suite::start(without_timing_flags()).await?;
    let dispatch = suite.dispatch().await?;
    let mut client = dispatch.clone();

    let mut on_scene_jobs: Vec<Job> = Vec::new();
    for (n, (complaint_type, descriptor)) in [
        ("Illegal Parking", "Blocked Bike Lane"),
        ("Blocked Driveway", "No Access"),
        ("Noise - Residential", "Loud Music/Party"),
        ("Abandoned Vehicle", "With License Plate"),
    ]
    .into_iter()
    .enumerate()
    {
        let place = offset(EMPIRE_STATE, 60.0 * n as f64, 0.0);
        let job = file_and_queue(&suite, complaint_type, descriptor, place).await?;
        let officer_id = format!("O-{n}");
        let unit = register_unit(
            &dispatch,
            &format!("14-ADAM-{n}"),
            "14",
            &[officer_id.as_str()],
            place,
        )
        .await?;
        drive_to_scene(&dispatch, &job, &unit, &officer_id, place).await?;
        let before = snapshot(&dispatch, &job.job_id).await?;
        let refusal = assert_refused_unchanged(
            &dispatch,
            close(
                &dispatch,
                close_request(
                    &job.job_id,
                    &officer_id,
                    ResolutionCode::OutsideJurisdiction,
                    place,
                ),
            )
            .await,
            &[Code::FailedPrecondition],
            &before,
            &format!("closing {complaint_type} as outside police jurisdiction"),
        )
        .await?;
        assert!(
            refusal.message().to_lowercase().contains("jurisdiction"),
            "the refusal says why: {}",
            refusal.message()
        );
        on_scene_jobs.push(before.job);
    }

    // nobody but a supervisor, with a reason, can hand the job to another agency
    let job = &on_scene_jobs[0];
    let before = snapshot(&dispatch, &job.job_id).await?;
    let reroute = |actor, reason: &str| ApproveRerouteRequest {
        actor,
        job_id: job.job_id.clone(),
        agency: "DOT".into(),
        reason: reason.into(),
    };
    let why = "bike lane is blocked by a DOT work zone, not a parked car";
    for (who, actor) in [
        ("a dispatcher", dispatcher()),
        ("an officer", officer("O-0")),
    ] {
        assert_refused_unchanged(
            &dispatch,
            client.approve_reroute(reroute(actor, why)).await,
            &[Code::PermissionDenied, Code::FailedPrecondition],
            &before,
            &format!("{who} re-routing police work"),
        )
        .await?;
    }
    assert_refused_unchanged(
        &dispatch,
        client.approve_reroute(reroute(supervisor(), " ")).await,
        &[Code::InvalidArgument, Code::FailedPrecondition],
        &before,
        "a supervisor re-routing without a reason",
    )
    .await?;

    let rerouted = client
        .approve_reroute(reroute(supervisor(), why))
        .await?
        .into_inner()
        .job
        .expect("the re-routed job");
    assert_eq!(rerouted.state, JobState::Rerouted as i32);
    let last = timeline(&dispatch, &job.job_id).await?.pop().unwrap();
    assert_eq!(last.r#type, EventType::RerouteApproved as i32);
    assert_eq!(last.actor, supervisor());
    assert!(
        last.reason.contains("work zone"),
        "the reason is recorded: {last:?}"
    );
    let unit = get_unit(&dispatch, "14", &job.unit_id).await?;
    assert_eq!(
        unit.status,
        UnitStatus::Available as i32,
        "the unit is released"
    );
    let public = wait_for_sr_status(&suite, &job.sr_number, ServiceRequestStatus::Referred).await?;
    assert_eq!(
        public.agency, "DOT",
        "the public record names the agency that took it"
    );

    // a type that is not police work may be closed as outside police jurisdiction
    let graffiti = file_and_queue(
        &suite,
        "Graffiti",
        "Police Report Not Requested",
        EMPIRE_STATE,
    )
    .await?;
    let unit = register_unit(&dispatch, "14-ADAM-9", "14", &["O-9"], EMPIRE_STATE).await?;
    drive_to_scene(&dispatch, &graffiti, &unit, "O-9", EMPIRE_STATE).await?;
    let closed = close(
        &dispatch,
        close_request(
            &graffiti.job_id,
            "O-9",
            ResolutionCode::OutsideJurisdiction,
            EMPIRE_STATE,
        ),
    )
    .await?;
    assert_eq!(closed.state, JobState::Closed as i32);

    suite.stop().await
}

#[tokio::test]
async fn a_field_resolution_needs_an_arrival_near_the_incident() -> anyhow::Result<()> {
    let suite = Suite::start(without_timing_flags()).await?;
    let dispatch = suite.dispatch().await?;

    // never arrived: on the way, 400 m off
    let job = hydrant_at(&suite, EMPIRE_STATE).await?;
    let unit = register_unit(&dispatch, "14-ADAM-1", "14", &["O-1"], EMPIRE_STATE).await?;
    assign(&dispatch, &job.job_id, &unit.unit_id).await?;
    acknowledge(
        &dispatch,
        &job.job_id,
        "O-1",
        offset(EMPIRE_STATE, -800.0, 0.0),
    )
    .await?;
    let driving = offset(EMPIRE_STATE, -400.0, 0.0);
    en_route(&dispatch, &job.job_id, "O-1", driving).await?;
    let before = snapshot(&dispatch, &job.job_id).await?;
    for code in FIELD_OUTCOMES {
        // even from a position at the scene: only a recorded arrival counts
        assert_refused_unchanged(
            &dispatch,
            close(
                &dispatch,
                close_request(&job.job_id, "O-1", code, EMPIRE_STATE),
            )
            .await,
            &[Code::FailedPrecondition],
            &before,
            &format!("closing as {code:?} without an arrival"),
        )
        .await?;
    }
    // an outcome that needs no visit is not held back by the rule: a
    // duplicate naming the report already filed for the same hydrant
    let first_report = hydrant_at(&suite, offset(EMPIRE_STATE, 20.0, 0.0)).await?;
    let mut as_duplicate = close_request(&job.job_id, "O-1", ResolutionCode::Duplicate, driving);
    as_duplicate.duplicate_of_sr_number = first_report.sr_number.clone();
    let duplicate = close(&dispatch, as_duplicate).await?;
    assert_eq!(duplicate.state, JobState::Closed as i32);

    // "arrived" 1 km and 200 m away: not an arrival at the incident
    for (n, north) in [(2, 1000.0), (3, 200.0)] {
        let job = hydrant_at(&suite, EMPIRE_STATE).await?;
        let officer_id = format!("O-{n}");
        let unit = register_unit(
            &dispatch,
            &format!("14-ADAM-{n}"),
            "14",
            &[officer_id.as_str()],
            EMPIRE_STATE,
        )
        .await?;
        let elsewhere = offset(EMPIRE_STATE, north, 0.0);
        let arrived = drive_to_scene(&dispatch, &job, &unit, &officer_id, elsewhere).await?;
        assert_eq!(
            arrived.state,
            JobState::OnScene as i32,
            "the arrival itself is recorded"
        );
        let before = snapshot(&dispatch, &job.job_id).await?;
        for code in FIELD_OUTCOMES {
            assert_refused_unchanged(
                &dispatch,
                close(
                    &dispatch,
                    close_request(&job.job_id, &officer_id, code, elsewhere),
                )
                .await,
                &[Code::FailedPrecondition],
                &before,
                &format!("closing as {code:?} after an arrival {north} m away"),
            )
            .await?;
        }
    }

    // an arrival before a reopening does not count for the next closure
    let job = hydrant_at(&suite, EMPIRE_STATE).await?;
    let first_unit = register_unit(&dispatch, "14-ADAM-5", "14", &["O-5"], EMPIRE_STATE).await?;
    let second_unit = register_unit(&dispatch, "14-ADAM-6", "14", &["O-6"], EMPIRE_STATE).await?;
    drive_to_scene(&dispatch, &job, &first_unit, "O-5", EMPIRE_STATE).await?;
    close(
        &dispatch,
        close_request(&job.job_id, "O-5", ResolutionCode::NoEvidence, EMPIRE_STATE),
    )
    .await?;
    dispatch
        .clone()
        .reopen_job(ReopenJobRequest {
            actor: supervisor(),
            job_id: job.job_id.clone(),
            reason: "complainant says the car never moved".into(),
            raise_priority: false,
        })
        .await?;
    assign(&dispatch, &job.job_id, &second_unit.unit_id).await?;
    let far_away = offset(EMPIRE_STATE, -3000.0, 0.0);
    acknowledge(&dispatch, &job.job_id, "O-6", far_away).await?;
    let before = snapshot(&dispatch, &job.job_id).await?;
    for code in FIELD_OUTCOMES {
        assert_refused_unchanged(
            &dispatch,
            close(&dispatch, close_request(&job.job_id, "O-6", code, far_away)).await,
            &[Code::FailedPrecondition],
            &before,
            &format!("closing a reopened job as {code:?} on the strength of the first visit"),
        )
        .await?;
    }

    // an arrival 120 m away is at the scene; a summons needs its number
    let job = hydrant_at(&suite, EMPIRE_STATE).await?;
    let unit = register_unit(&dispatch, "14-ADAM-4", "14", &["O-4"], EMPIRE_STATE).await?;
    let near = offset(EMPIRE_STATE, 0.0, 120.0);
    drive_to_scene(&dispatch, &job, &unit, "O-4", near).await?;
    let before = snapshot(&dispatch, &job.job_id).await?;
    let mut without_number = close_request(&job.job_id, "O-4", ResolutionCode::SummonsIssued, near);
    without_number.summons_number = "  ".into();
    assert_refused_unchanged(
        &dispatch,
        close(&dispatch, without_number).await,
        &[Code::InvalidArgument, Code::FailedPrecondition],
        &before,
        "a summons closure without the summons number",
    )
    .await?;
    let closed = close(
        &dispatch,
        close_request(&job.job_id, "O-4", ResolutionCode::SummonsIssued, near),
    )
    .await?;
    assert_eq!(closed.state, JobState::Closed as i32);
    assert_eq!(closed.summons_number, "4410123456");

    suite.stop().await
}

#[tokio::test]
async fn a_request_with_photos_cannot_be_closed_by_an_officer_who_never_opened_them()
-> anyhow::Result<()> {
    let suite = Suite::start(without_timing_flags()).await?;
    let dispatch = suite.dispatch().await?;
    let mut client = dispatch.clone();

    let mut request = complaint("Illegal Parking", "Blocked Hydrant", EMPIRE_STATE);
    request.photos = vec![photo()];
    let job = file(&suite, request).await?;
    assert_eq!(job.photo_count, 1);
    let unit = register_unit(&dispatch, "14-ADAM-1", "14", &["O-1", "O-2"], EMPIRE_STATE).await?;
    drive_to_scene(&dispatch, &job, &unit, "O-1", EMPIRE_STATE).await?;
    let closing = || close_request(&job.job_id, "O-1", ResolutionCode::NoEvidence, EMPIRE_STATE);

    let before = snapshot(&dispatch, &job.job_id).await?;
    let refusal = assert_refused_unchanged(
        &dispatch,
        close(&dispatch, closing()).await,
        &[Code::FailedPrecondition],
        &before,
        "closing without opening the photos",
    )
    .await?;
    assert!(
        refusal.message().to_lowercase().contains("photo")
            || refusal.message().to_lowercase().contains("evidence"),
        "the refusal says why: {}",
        refusal.message()
    );

    let viewed = |officer_id: &str, photo_index: u32| RecordEvidenceViewedRequest {
        actor: officer(officer_id),
        job_id: job.job_id.clone(),
        photo_index,
    };
    let no_such_photo = client.record_evidence_viewed(viewed("O-1", 3)).await;
    assert_refused_unchanged(
        &dispatch,
        no_such_photo,
        &[
            Code::InvalidArgument,
            Code::OutOfRange,
            Code::FailedPrecondition,
        ],
        &before,
        "viewing a photo the request does not have",
    )
    .await?;

    // the partner looked; the closing officer still has not
    client.record_evidence_viewed(viewed("O-2", 0)).await?;
    let last = timeline(&dispatch, &job.job_id).await?.pop().unwrap();
    assert_eq!(last.r#type, EventType::EvidenceViewed as i32);
    assert_eq!(last.actor, officer("O-2"));
    let before = snapshot(&dispatch, &job.job_id).await?;
    assert_refused_unchanged(
        &dispatch,
        close(&dispatch, closing()).await,
        &[Code::FailedPrecondition],
        &before,
        "closing when only the partner opened the photos",
    )
    .await?;

    client.record_evidence_viewed(viewed("O-1", 0)).await?;
    let closed = close(&dispatch, closing()).await?;
    assert_eq!(closed.state, JobState::Closed as i32);
    assert_eq!(closed.resolution_code, ResolutionCode::NoEvidence as i32);

    suite.stop().await
}

#[tokio::test]
async fn implausible_closures_are_flagged_for_review_but_not_blocked() -> anyhow::Result<()> {
    // default thresholds: 5 minutes after assignment, 60 s on scene, 500 m from the scene
    let mut suite = Suite::start(SuiteOptions::default()).await?;
    suite.kill(Service::Survey)?;
    let dispatch = suite.dispatch().await?;

    // closed seconds after assignment, after seconds on scene
    let fast = hydrant_at(&suite, EMPIRE_STATE).await?;
    let unit = register_unit(&dispatch, "14-ADAM-1", "14", &["O-1"], EMPIRE_STATE).await?;
    drive_to_scene(&dispatch, &fast, &unit, "O-1", EMPIRE_STATE).await?;
    let closed = close(
        &dispatch,
        close_request(
            &fast.job_id,
            "O-1",
            ResolutionCode::NoEvidence,
            EMPIRE_STATE,
        ),
    )
    .await?;
    assert_eq!(
        closed.state,
        JobState::Closed as i32,
        "a flag never blocks a closure"
    );
    assert!(
        has_flag(&closed, FlagKind::FastClosure),
        "flags: {:?}",
        flag_kinds(&closed)
    );
    assert!(
        has_flag(&closed, FlagKind::ShortOnScene),
        "flags: {:?}",
        flag_kinds(&closed)
    );
    assert!(
        !has_flag(&closed, FlagKind::ClosedFarFromScene),
        "closed at the scene: {:?}",
        flag_kinds(&closed)
    );
    assert_eq!(
        flag_kinds(&get_job(&dispatch, &fast.job_id).await?),
        flag_kinds(&closed),
        "the job record shows the flags its closure raised"
    );
    for flag in &closed.flags {
        assert!(
            !flag.detail.is_empty() && flag.raised_at.is_some(),
            "{flag:?}"
        );
    }
    wait_for_sr_status(&suite, &fast.sr_number, ServiceRequestStatus::Closed).await?;
    let published = wait_for_closures(&suite, &fast.sr_id, 1).await?;
    assert!(
        published[0].event.flagged,
        "survey learns the closure was flagged"
    );

    // closed from 1 km away after arriving at the scene
    let far = hydrant_at(&suite, offset(EMPIRE_STATE, 100.0, 0.0)).await?;
    let unit = register_unit(&dispatch, "14-ADAM-2", "14", &["O-2"], EMPIRE_STATE).await?;
    drive_to_scene(&dispatch, &far, &unit, "O-2", far.location.unwrap()).await?;
    let closed_far = close(
        &dispatch,
        close_request(
            &far.job_id,
            "O-2",
            ResolutionCode::ActionTaken,
            offset(EMPIRE_STATE, 1100.0, 0.0),
        ),
    )
    .await?;
    assert_eq!(closed_far.state, JobState::Closed as i32);
    assert!(
        has_flag(&closed_far, FlagKind::ClosedFarFromScene),
        "flags: {:?}",
        flag_kinds(&closed_far)
    );

    let items = review_items(&dispatch, "14").await?;
    for (job, kind) in [
        (&fast, FlagKind::FastClosure),
        (&fast, FlagKind::ShortOnScene),
        (&far, FlagKind::FastClosure),
        (&far, FlagKind::ClosedFarFromScene),
    ] {
        assert!(
            items.contains(&(job.job_id.clone(), kind as i32)),
            "{kind:?} on {} is up for review: {items:?}",
            job.sr_number
        );
    }
    let mut flagged = flagged_jobs(&dispatch, "14").await?;
    flagged.sort();
    let mut expected = vec![fast.job_id.clone(), far.job_id.clone()];
    expected.sort();
    assert_eq!(flagged, expected, "ListJobs(FLAGGED)");
    let flag_events = timeline(&dispatch, &fast.job_id)
        .await?
        .into_iter()
        .filter(|e| e.r#type == EventType::Flagged as i32)
        .count();
    assert!(flag_events >= 1, "raising a flag is an event");

    suite.stop().await
}

#[tokio::test]
async fn a_burst_of_closures_by_one_officer_is_flagged() -> anyhow::Result<()> {
    let suite = Suite::start(env(&[
        ("DISPATCH311_FAST_CLOSURE_SECS", "0"),
        ("DISPATCH311_MIN_ON_SCENE_SECS", "0"),
        ("DISPATCH311_CLOSURE_BURST_COUNT", "3"),
        ("DISPATCH311_CLOSURE_BURST_SECS", "600"),
    ]))
    .await?;
    let dispatch = suite.dispatch().await?;
    let unit = register_unit(&dispatch, "14-ADAM-1", "14", &["O-1"], EMPIRE_STATE).await?;
    let partner_unit = register_unit(&dispatch, "14-ADAM-2", "14", &["O-2"], EMPIRE_STATE).await?;

    let mut closed = Vec::new();
    for n in 0..3 {
        let place = offset(EMPIRE_STATE, 40.0 * n as f64, 0.0);
        let job = hydrant_at(&suite, place).await?;
        drive_to_scene(&dispatch, &job, &unit, "O-1", place).await?;
        closed.push(
            close(
                &dispatch,
                close_request(&job.job_id, "O-1", ResolutionCode::NoEvidence, place),
            )
            .await?,
        );
    }
    assert!(closed[0].flags.is_empty(), "{:?}", flag_kinds(&closed[0]));
    assert!(closed[1].flags.is_empty(), "{:?}", flag_kinds(&closed[1]));
    assert_eq!(
        flag_kinds(&closed[2]),
        [FlagKind::ClosureBurst],
        "the third closure within 10 minutes by one officer"
    );

    // another officer's closure in the same minutes is not part of the burst
    let job = hydrant_at(&suite, EMPIRE_STATE).await?;
    drive_to_scene(&dispatch, &job, &partner_unit, "O-2", EMPIRE_STATE).await?;
    let partner = close(
        &dispatch,
        close_request(&job.job_id, "O-2", ResolutionCode::NoEvidence, EMPIRE_STATE),
    )
    .await?;
    assert!(partner.flags.is_empty(), "{:?}", flag_kinds(&partner));

    let items = review_items(&dispatch, "14").await?;
    assert_eq!(
        items,
        [(closed[2].job_id.clone(), FlagKind::ClosureBurst as i32)],
        "only the burst is up for review"
    );
    assert_eq!(
        flagged_jobs(&dispatch, "14").await?,
        [closed[2].job_id.clone()]
    );

    suite.stop().await
}

/// The stable reason of a refusal (`google.rpc.ErrorInfo`, domain dispatch311).
fn reason_of(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    let info = status.get_details_error_info().expect("an ErrorInfo");
    assert_eq!(info.domain, "dispatch311");
    info.reason
}

#[tokio::test]
async fn no_closing_code_lets_police_work_go_unchecked() -> anyhow::Result<()> {
    let suite = Suite::start(without_timing_flags()).await?;
    let dispatch = suite.dispatch().await?;

    // on the way, never on scene: the dodges of the published analyses
    let job = hydrant_at(&suite, EMPIRE_STATE).await?;
    let unit = register_unit(&dispatch, "14-ADAM-1", "14", &["O-1"], EMPIRE_STATE).await?;
    assign(&dispatch, &job.job_id, &unit.unit_id).await?;
    acknowledge(
        &dispatch,
        &job.job_id,
        "O-1",
        offset(EMPIRE_STATE, -900.0, 0.0),
    )
    .await?;
    let driving = offset(EMPIRE_STATE, -500.0, 0.0);
    en_route(&dispatch, &job.job_id, "O-1", driving).await?;
    let before = snapshot(&dispatch, &job.job_id).await?;

    let noise_far_away = file_and_queue(
        &suite,
        "Noise - Residential",
        "Loud Music/Party",
        offset(EMPIRE_STATE, 1_000.0, 0.0),
    )
    .await?;
    let other_type = {
        let mut request = close_request(&job.job_id, "O-1", ResolutionCode::Duplicate, driving);
        request.duplicate_of_sr_number = noise_far_away.sr_number.clone();
        request
    };
    let itself = {
        let mut request = close_request(&job.job_id, "O-1", ResolutionCode::Duplicate, driving);
        request.duplicate_of_sr_number = job.sr_number.clone();
        request
    };
    for (request, reason, what) in [
        (
            close_request(&job.job_id, "O-1", ResolutionCode::Referred, driving),
            "POLICE_MATTER_REFERRAL_NEEDS_REROUTE",
            "a police matter closed as referred",
        ),
        (
            close_request(
                &job.job_id,
                "O-1",
                ResolutionCode::OutsideJurisdiction,
                driving,
            ),
            "POLICE_MATTER_NOT_OUTSIDE_JURISDICTION",
            "a police matter closed as outside jurisdiction",
        ),
        (
            close_request(
                &job.job_id,
                "O-1",
                ResolutionCode::PoliceActionNotNecessary,
                driving,
            ),
            "NO_ARRIVAL_ON_SCENE",
            "police action not necessary without going there",
        ),
        (
            close_request(&job.job_id, "O-1", ResolutionCode::Duplicate, driving),
            "DUPLICATE_NOT_LINKED",
            "a duplicate of nothing",
        ),
        (
            other_type,
            "DUPLICATE_NOT_SAME_INCIDENT",
            "a duplicate of another complaint 1 km away",
        ),
        (
            itself,
            "DUPLICATE_NOT_SAME_INCIDENT",
            "a duplicate of itself",
        ),
    ] {
        let refusal = assert_refused_unchanged(
            &dispatch,
            close(&dispatch, request).await,
            &[Code::FailedPrecondition],
            &before,
            what,
        )
        .await?;
        assert_eq!(reason_of(&refusal), reason, "{what}: {}", refusal.message());
    }

    // the duplicate of the report already filed for the same hydrant closes,
    // and its public words claim no visit
    let first_report = hydrant_at(&suite, offset(EMPIRE_STATE, 25.0, 10.0)).await?;
    let mut linked = close_request(&job.job_id, "O-1", ResolutionCode::Duplicate, driving);
    linked.duplicate_of_sr_number = first_report.sr_number.clone();
    let closed = close(&dispatch, linked).await?;
    assert_eq!(closed.state, JobState::Closed as i32);
    let public = wait_for_sr_status(&suite, &job.sr_number, ServiceRequestStatus::Closed).await?;
    let text = public.resolution.unwrap_or_default().text;
    assert!(
        text.contains("already filed") && !text.contains("responded"),
        "{text}"
    );

    // a supervisor may close a duplicate without the link, with a written reason
    let third = hydrant_at(&suite, offset(EMPIRE_STATE, -30.0, 0.0)).await?;
    let unit = register_unit(&dispatch, "14-ADAM-2", "14", &["O-2"], EMPIRE_STATE).await?;
    assign(&dispatch, &third.job_id, &unit.unit_id).await?;
    acknowledge(&dispatch, &third.job_id, "O-2", driving).await?;
    let mut by_supervisor = close_request(&third.job_id, "O-2", ResolutionCode::Duplicate, driving);
    by_supervisor.actor = supervisor();
    by_supervisor.notes = "short".into();
    let before = snapshot(&dispatch, &third.job_id).await?;
    let refusal = assert_refused_unchanged(
        &dispatch,
        close(&dispatch, by_supervisor.clone()).await,
        &[Code::FailedPrecondition],
        &before,
        "a supervisor's duplicate without a reason",
    )
    .await?;
    assert_eq!(reason_of(&refusal), "DUPLICATE_NOT_LINKED");
    by_supervisor.notes = "caller filed the same car twice from two phones".into();
    let closed = close(&dispatch, by_supervisor).await?;
    assert_eq!(closed.state, JobState::Closed as i32);

    suite.stop().await
}
