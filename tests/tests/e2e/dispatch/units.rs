//! Units and queues of the dispatch service, end to end with the real
//! binaries: units register once per call sign and report status and
//! position; a precinct's queue is ordered by priority, then age; recommendations
//! rank the precinct's available units by distance; a unit busy with a 911
//! emergency is never recommended nor assigned 311 work; auto-assignment gives
//! a new job to the nearest available unit.

use std::time::Duration;

use dispatch311_proto::{
    common::v1::{GeoPoint, Priority},
    dispatch::v1::{
        AssignJobRequest, Job, JobState, ListQueueRequest, ListUnitsRequest, RecommendUnitsRequest,
        RegisterUnitRequest, ReportUnitStatusRequest, Role, SetAutoAssignRequest, Unit, UnitStatus,
    },
};
use dispatch311_tests::{
    cad::{
        self, Dispatch, EMPIRE_STATE, MIDTOWN_NORTH, assert_refused_unchanged, assign, distance_m,
        file_and_queue, get_job, get_unit, hydrant_at, officer, offset, register_unit, snapshot,
        supervisor, timeline,
    },
    suite::{Suite, SuiteOptions, eventually},
};
use tonic::Code;

async fn set_status(
    dispatch: &Dispatch,
    unit: &Unit,
    status: UnitStatus,
    position: Option<GeoPoint>,
) -> anyhow::Result<Unit> {
    Ok(dispatch
        .clone()
        .report_unit_status(ReportUnitStatusRequest {
            actor: officer(&unit.officer_ids[0]),
            unit_id: unit.unit_id.clone(),
            status: status as i32,
            position,
        })
        .await?
        .into_inner()
        .unit
        .expect("ReportUnitStatus answers with the unit"))
}

async fn queue_of(dispatch: &Dispatch, precinct: &str) -> anyhow::Result<(Vec<String>, i64)> {
    let answer = dispatch
        .clone()
        .list_queue(ListQueueRequest {
            precinct: precinct.into(),
            page_size: 100,
            page_token: String::new(),
        })
        .await?
        .into_inner();
    Ok((
        answer.jobs.into_iter().map(|j| j.sr_number).collect(),
        answer.total_queued,
    ))
}

#[tokio::test]
async fn a_unit_registers_once_per_call_sign_and_reports_its_status_and_position()
-> anyhow::Result<()> {
    let suite = Suite::start(SuiteOptions::default()).await?;
    let dispatch = suite.dispatch().await?;

    let first = register_unit(&dispatch, "14-ADAM-1", "14", &["O-1"], EMPIRE_STATE).await?;
    assert_eq!(first.precinct, "14");
    assert_eq!(first.officer_ids, ["O-1"]);
    assert_eq!(
        first.status,
        UnitStatus::Available as i32,
        "a new unit is available"
    );
    assert_eq!(first.position, Some(EMPIRE_STATE));
    assert!(first.current_job_id.is_empty());

    // the same call sign again updates its officers and creates nothing
    let again = register_unit(&dispatch, "14-ADAM-1", "14", &["O-1", "O-2"], EMPIRE_STATE).await?;
    assert_eq!(again.unit_id, first.unit_id, "idempotent by call sign");
    assert_eq!(again.officer_ids, ["O-1", "O-2"]);
    register_unit(&dispatch, "18-BOY-1", "18", &["O-9"], MIDTOWN_NORTH).await?;
    let listed = dispatch
        .clone()
        .list_units(ListUnitsRequest {
            precinct: "14".into(),
            page_size: 0,
            page_token: String::new(),
        })
        .await?
        .into_inner()
        .units;
    assert_eq!(listed.len(), 1, "one unit in precinct 14: {listed:?}");
    assert_eq!(listed[0].unit_id, first.unit_id);
    assert_eq!(listed[0].officer_ids, ["O-1", "O-2"]);

    // a position report keeps the status
    let moved_to = offset(EMPIRE_STATE, 250.0, 0.0);
    let moved = set_status(&dispatch, &again, UnitStatus::Unspecified, Some(moved_to)).await?;
    assert_eq!(moved.status, UnitStatus::Available as i32);
    assert_eq!(moved.position, Some(moved_to));
    let first_report = moved.position_reported_at.expect("the report time is kept");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let out = set_status(&dispatch, &again, UnitStatus::OutOfService, None).await?;
    assert_eq!(out.status, UnitStatus::OutOfService as i32);
    assert_eq!(
        out.position,
        Some(moved_to),
        "a status report keeps the position"
    );
    let listed = get_unit(&dispatch, "14", &first.unit_id).await?;
    assert_eq!(listed.status, UnitStatus::OutOfService as i32);
    let moved_again = set_status(
        &dispatch,
        &out,
        UnitStatus::Available,
        Some(offset(EMPIRE_STATE, 300.0, 0.0)),
    )
    .await?;
    assert!(
        cad::seconds_between(&first_report, &moved_again.position_reported_at.unwrap()) > 0.0,
        "a later report has a later time"
    );

    // bad input is refused and registers nothing
    let mut client = dispatch.clone();
    for (what, request) in [
        (
            "empty call sign",
            RegisterUnitRequest {
                actor: supervisor(),
                call_sign: " ".into(),
                precinct: "14".into(),
                officer_ids: vec!["O-3".into()],
                position: Some(EMPIRE_STATE),
            },
        ),
        (
            "no precinct",
            RegisterUnitRequest {
                actor: supervisor(),
                call_sign: "14-ADAM-2".into(),
                precinct: String::new(),
                officer_ids: vec!["O-3".into()],
                position: Some(EMPIRE_STATE),
            },
        ),
        (
            "latitude out of range",
            RegisterUnitRequest {
                actor: supervisor(),
                call_sign: "14-ADAM-3".into(),
                precinct: "14".into(),
                officer_ids: vec!["O-3".into()],
                position: Some(GeoPoint {
                    latitude: 140.0,
                    longitude: -73.98,
                }),
            },
        ),
    ] {
        let status = client.register_unit(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
    }
    let listed = client
        .list_units(ListUnitsRequest {
            precinct: "14".into(),
            page_size: 0,
            page_token: String::new(),
        })
        .await?
        .into_inner()
        .units;
    assert_eq!(listed.len(), 1, "nothing registered by bad input");
    let unknown = client
        .report_unit_status(ReportUnitStatusRequest {
            actor: officer("O-1"),
            unit_id: uuid::Uuid::new_v4().to_string(),
            status: UnitStatus::Available as i32,
            position: None,
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");

    suite.stop().await
}

#[tokio::test]
async fn a_precinct_queue_is_ordered_by_priority_then_age() -> anyhow::Result<()> {
    let suite = Suite::start(SuiteOptions::default()).await?;
    let dispatch = suite.dispatch().await?;

    // filed one after the other so their ages are known
    let low = file_and_queue(
        &suite,
        "Abandoned Vehicle",
        "With License Plate",
        EMPIRE_STATE,
    )
    .await?;
    let normal = file_and_queue(
        &suite,
        "Noise - Residential",
        "Loud Music/Party",
        EMPIRE_STATE,
    )
    .await?;
    let high_older = hydrant_at(&suite, EMPIRE_STATE).await?;
    let elsewhere = hydrant_at(&suite, MIDTOWN_NORTH).await?;
    let high_newer = file_and_queue(
        &suite,
        "Blocked Driveway",
        "No Access",
        offset(EMPIRE_STATE, 50.0, 0.0),
    )
    .await?;
    assert_eq!(
        [
            low.priority,
            normal.priority,
            high_older.priority,
            high_newer.priority
        ],
        [
            Priority::Low as i32,
            Priority::Normal as i32,
            Priority::High as i32,
            Priority::High as i32
        ],
        "routing's priorities"
    );
    assert_eq!(elsewhere.precinct, "18");
    for job in [&low, &normal, &high_older, &high_newer] {
        assert_eq!(job.state, JobState::Queued as i32);
        assert_eq!(job.precinct, "14");
    }

    let expected = [
        high_older.sr_number.clone(),
        high_newer.sr_number.clone(),
        normal.sr_number.clone(),
        low.sr_number.clone(),
    ];
    let (order, total) = queue_of(&dispatch, "14").await?;
    assert_eq!(order, expected, "highest priority first, then oldest first");
    assert_eq!(total, 4);

    // pages of two give the same order, each job once
    let mut paged = Vec::new();
    let mut token = String::new();
    loop {
        let page = dispatch
            .clone()
            .list_queue(ListQueueRequest {
                precinct: "14".into(),
                page_size: 2,
                page_token: token,
            })
            .await?
            .into_inner();
        assert!(page.jobs.len() <= 2);
        paged.extend(page.jobs.into_iter().map(|j| j.sr_number));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(paged, expected);
    assert_eq!(
        queue_of(&dispatch, "18").await?,
        (vec![elsewhere.sr_number.clone()], 1)
    );

    // an assigned job leaves the queue
    let unit = register_unit(&dispatch, "14-ADAM-1", "14", &["O-1"], EMPIRE_STATE).await?;
    assign(&dispatch, &high_older.job_id, &unit.unit_id).await?;
    let (order, total) = queue_of(&dispatch, "14").await?;
    assert_eq!(order, expected[1..], "the assigned job is no longer queued");
    assert_eq!(total, 3);

    suite.stop().await
}

#[tokio::test]
async fn recommendations_rank_available_units_by_distance_and_skip_911_work() -> anyhow::Result<()>
{
    let suite = Suite::start(SuiteOptions::default()).await?;
    let dispatch = suite.dispatch().await?;
    let job = hydrant_at(&suite, EMPIRE_STATE).await?;
    let other_job = hydrant_at(&suite, offset(EMPIRE_STATE, 0.0, 200.0)).await?;

    let place = |north: f64| offset(EMPIRE_STATE, north, 0.0);
    let near = register_unit(&dispatch, "14-ADAM-1", "14", &["O-1"], place(100.0)).await?;
    let middle = register_unit(&dispatch, "14-ADAM-2", "14", &["O-2"], place(-400.0)).await?;
    let far = register_unit(&dispatch, "14-ADAM-3", "14", &["O-3"], place(900.0)).await?;
    let emergency = register_unit(&dispatch, "14-ADAM-4", "14", &["O-4"], place(20.0)).await?;
    let emergency = set_status(&dispatch, &emergency, UnitStatus::BusyEmergency, None).await?;
    let out_of_service = register_unit(&dispatch, "14-ADAM-5", "14", &["O-5"], place(50.0)).await?;
    set_status(&dispatch, &out_of_service, UnitStatus::OutOfService, None).await?;
    let busy = register_unit(&dispatch, "14-ADAM-6", "14", &["O-6"], place(30.0)).await?;
    assign(&dispatch, &other_job.job_id, &busy.unit_id).await?;
    // nearest of all, but another precinct's
    register_unit(&dispatch, "18-BOY-1", "18", &["O-8"], place(10.0)).await?;

    let recommend = |max_units: i32| {
        let mut dispatch = dispatch.clone();
        let job_id = job.job_id.clone();
        async move {
            anyhow::Ok(
                dispatch
                    .recommend_units(RecommendUnitsRequest { job_id, max_units })
                    .await?
                    .into_inner()
                    .recommendations,
            )
        }
    };
    let ranked = recommend(0).await?;
    let call_signs: Vec<&str> = ranked
        .iter()
        .map(|r| r.unit.as_ref().unwrap().call_sign.as_str())
        .collect();
    assert_eq!(
        call_signs,
        ["14-ADAM-1", "14-ADAM-2", "14-ADAM-3"],
        "available units of the precinct, nearest first; never the 911 unit, the \
         out-of-service one, the busy one or another precinct's"
    );
    for (recommendation, unit) in ranked.iter().zip([&near, &middle, &far]) {
        let expected = distance_m(EMPIRE_STATE, unit.position.unwrap());
        assert!(
            (recommendation.distance_meters - expected).abs() < 5.0,
            "{}: {} m, expected {expected:.0} m",
            unit.call_sign,
            recommendation.distance_meters
        );
    }
    assert_eq!(recommend(2).await?.len(), 2, "max_units is honoured");

    // 911 first: the emergency unit cannot be given the job, and nothing changes
    let before = snapshot(&dispatch, &job.job_id).await?;
    let refusal = assert_refused_unchanged(
        &dispatch,
        assign(&dispatch, &job.job_id, &emergency.unit_id).await,
        &[Code::FailedPrecondition],
        &before,
        "assigning a unit busy with a 911 emergency",
    )
    .await?;
    let reason = refusal.message().to_lowercase();
    assert!(
        reason.contains("emergency") || reason.contains("911"),
        "the refusal says why: {reason}"
    );
    let still = get_unit(&dispatch, "14", &emergency.unit_id).await?;
    assert_eq!(still.status, UnitStatus::BusyEmergency as i32);
    assert!(still.current_job_id.is_empty(), "no 311 job for a 911 unit");
    assert_refused_unchanged(
        &dispatch,
        assign(&dispatch, &job.job_id, &out_of_service.unit_id).await,
        &[Code::FailedPrecondition],
        &before,
        "assigning an out-of-service unit",
    )
    .await?;
    assert_refused_unchanged(
        &dispatch,
        assign(&dispatch, &job.job_id, &busy.unit_id).await,
        &[Code::FailedPrecondition],
        &before,
        "assigning a unit already on another job",
    )
    .await?;
    let by_officer = dispatch
        .clone()
        .assign_job(AssignJobRequest {
            actor: officer("O-1"),
            job_id: job.job_id.clone(),
            unit_id: near.unit_id.clone(),
            reason: String::new(),
        })
        .await;
    assert_refused_unchanged(
        &dispatch,
        by_officer,
        &[Code::PermissionDenied],
        &before,
        "an officer assigning a job",
    )
    .await?;

    // the dispatcher assigns the nearest unit
    let assigned = assign(&dispatch, &job.job_id, &near.unit_id).await?;
    assert_eq!(assigned.state, JobState::Assigned as i32);
    assert_eq!(assigned.unit_id, near.unit_id);
    assert_eq!(assigned.unit_call_sign, "14-ADAM-1");
    assert!(assigned.assigned_at.is_some());
    let unit = get_unit(&dispatch, "14", &near.unit_id).await?;
    assert_eq!(unit.status, UnitStatus::Assigned as i32);
    assert_eq!(unit.current_job_id, job.job_id);

    // the emergency over, the unit is offered again
    set_status(&dispatch, &emergency, UnitStatus::Available, None).await?;
    let third = hydrant_at(&suite, EMPIRE_STATE).await?;
    let ranked = dispatch
        .clone()
        .recommend_units(RecommendUnitsRequest {
            job_id: third.job_id.clone(),
            max_units: 0,
        })
        .await?
        .into_inner()
        .recommendations;
    let call_signs: Vec<&str> = ranked
        .iter()
        .map(|r| r.unit.as_ref().unwrap().call_sign.as_str())
        .collect();
    assert_eq!(call_signs, ["14-ADAM-4", "14-ADAM-2", "14-ADAM-3"]);

    suite.stop().await
}

#[tokio::test]
async fn auto_assignment_gives_a_new_job_to_the_nearest_available_unit() -> anyhow::Result<()> {
    let suite = Suite::start(SuiteOptions::default()).await?;
    let dispatch = suite.dispatch().await?;

    let place = |north: f64| offset(EMPIRE_STATE, north, 0.0);
    let emergency = register_unit(&dispatch, "14-ADAM-1", "14", &["O-1"], place(10.0)).await?;
    set_status(&dispatch, &emergency, UnitStatus::BusyEmergency, None).await?;
    let near = register_unit(&dispatch, "14-ADAM-2", "14", &["O-2"], place(200.0)).await?;
    let far = register_unit(&dispatch, "14-ADAM-3", "14", &["O-3"], place(-700.0)).await?;
    register_unit(&dispatch, "18-BOY-1", "18", &["O-8"], MIDTOWN_NORTH).await?;

    let enabled = dispatch
        .clone()
        .set_auto_assign(SetAutoAssignRequest {
            actor: supervisor(),
            precinct: "14".into(),
            enabled: true,
        })
        .await?
        .into_inner();
    assert!(enabled.enabled);
    assert_eq!(enabled.precinct, "14");

    // precinct 18 did not turn it on: its job waits for a dispatcher
    let in_18 = hydrant_at(&suite, MIDTOWN_NORTH).await?;

    let wait_assigned = |job: Job| {
        let dispatch = dispatch.clone();
        async move {
            eventually(Duration::from_secs(20), "auto-assignment", || {
                let dispatch = dispatch.clone();
                let job_id = job.job_id.clone();
                async move {
                    let job = get_job(&dispatch, &job_id).await?;
                    Ok((job.state == JobState::Assigned as i32).then_some(job))
                }
            })
            .await
        }
    };
    let first = wait_assigned(hydrant_at(&suite, EMPIRE_STATE).await?).await?;
    assert_eq!(
        first.unit_id, near.unit_id,
        "the nearest available unit, not the nearer one on a 911 call"
    );
    let events = timeline(&dispatch, &first.job_id).await?;
    let assigned = events
        .iter()
        .find(|e| e.r#type == dispatch311_proto::dispatch::v1::EventType::Assigned as i32)
        .expect("an ASSIGNED event");
    assert_eq!(
        assigned.actor.as_ref().map(|a| a.role),
        Some(Role::System as i32),
        "the service assigned it: {assigned:?}"
    );
    assert_eq!(assigned.unit_id, near.unit_id);

    let second = wait_assigned(hydrant_at(&suite, EMPIRE_STATE).await?).await?;
    assert_eq!(
        second.unit_id, far.unit_id,
        "the next nearest available unit"
    );

    // no unit left: the job waits in the queue, the 911 unit is never taken
    let third = hydrant_at(&suite, EMPIRE_STATE).await?;
    // give an (unwanted) auto-assignment the time the two above needed
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (queued, _) = queue_of(&dispatch, "14").await?;
    assert_eq!(queued, std::slice::from_ref(&third.sr_number));
    assert_eq!(
        get_unit(&dispatch, "14", &emergency.unit_id).await?.status,
        UnitStatus::BusyEmergency as i32
    );
    assert_eq!(
        get_job(&dispatch, &in_18.job_id).await?.state,
        JobState::Queued as i32,
        "auto-assignment is per precinct"
    );
    let refused = dispatch
        .clone()
        .set_auto_assign(SetAutoAssignRequest {
            actor: officer("O-2"),
            precinct: "14".into(),
            enabled: false,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");

    suite.stop().await
}

#[tokio::test]
async fn a_unit_called_to_a_911_emergency_gives_its_311_job_back_to_the_queue() -> anyhow::Result<()>
{
    let suite = Suite::start(SuiteOptions::default()).await?;
    let dispatch = suite.dispatch().await?;
    let job = hydrant_at(&suite, EMPIRE_STATE).await?;
    let unit = register_unit(&dispatch, "14-ADAM-1", "14", &["O-1"], EMPIRE_STATE).await?;
    assign(&dispatch, &job.job_id, &unit.unit_id).await?;
    cad::acknowledge(&dispatch, &job.job_id, "O-1", EMPIRE_STATE).await?;

    // a unit working a job cannot make itself available for another
    let before = snapshot(&dispatch, &job.job_id).await?;
    let shirking = dispatch
        .clone()
        .report_unit_status(ReportUnitStatusRequest {
            actor: officer("O-1"),
            unit_id: unit.unit_id.clone(),
            status: UnitStatus::Available as i32,
            position: None,
        })
        .await;
    assert_refused_unchanged(
        &dispatch,
        shirking,
        &[Code::FailedPrecondition],
        &before,
        "a unit on a job reporting itself available",
    )
    .await?;
    assert_eq!(
        get_unit(&dispatch, "14", &unit.unit_id)
            .await?
            .current_job_id,
        job.job_id
    );

    let called_away = set_status(&dispatch, &unit, UnitStatus::BusyEmergency, None).await?;
    assert_eq!(called_away.status, UnitStatus::BusyEmergency as i32);
    assert!(
        called_away.current_job_id.is_empty(),
        "911 work comes first"
    );
    let requeued = get_job(&dispatch, &job.job_id).await?;
    assert_eq!(
        requeued.state,
        JobState::Queued as i32,
        "the 311 job waits for another unit"
    );
    assert!(requeued.unit_id.is_empty());
    let (queued, _) = queue_of(&dispatch, "14").await?;
    assert_eq!(queued, std::slice::from_ref(&job.sr_number));
    let last = timeline(&dispatch, &job.job_id).await?.pop().unwrap();
    assert!(
        last.r#type == dispatch311_proto::dispatch::v1::EventType::Queued as i32
            || last.r#type == dispatch311_proto::dispatch::v1::EventType::Reassigned as i32,
        "the return to the queue is an event: {last:?}"
    );
    assert!(
        last.reason.contains("emergency") || last.reason.contains("911"),
        "with the reason: {last:?}"
    );

    suite.stop().await
}

#[tokio::test]
async fn racing_dispatchers_give_one_job_one_unit_and_one_unit_one_job() -> anyhow::Result<()> {
    const RACERS: usize = 8;
    let suite = Suite::start(SuiteOptions::default()).await?;
    let dispatch = suite.dispatch().await?;

    // eight dispatchers give the same job to eight different units at once
    let job = hydrant_at(&suite, EMPIRE_STATE).await?;
    let mut units = Vec::new();
    for n in 0..RACERS {
        let officer_id = format!("O-{n}");
        units.push(
            register_unit(
                &dispatch,
                &format!("14-ADAM-{n}"),
                "14",
                &[officer_id.as_str()],
                EMPIRE_STATE,
            )
            .await?,
        );
    }
    let mut calls = Vec::new();
    for unit in &units {
        let dispatch = dispatch.clone();
        let (job_id, unit_id) = (job.job_id.clone(), unit.unit_id.clone());
        calls.push(tokio::spawn(async move {
            assign(&dispatch, &job_id, &unit_id).await
        }));
    }
    let mut winners = Vec::new();
    for (unit, call) in units.iter().zip(calls) {
        match call.await? {
            Ok(_) => winners.push(unit.unit_id.clone()),
            Err(status) => assert!(
                matches!(
                    status.code(),
                    Code::FailedPrecondition | Code::InvalidArgument
                ),
                "a losing assignment: {status:?}"
            ),
        }
    }
    assert_eq!(winners.len(), 1, "one assignment wins");
    let assigned = get_job(&dispatch, &job.job_id).await?;
    assert_eq!(assigned.unit_id, winners[0]);
    let holding: Vec<String> = {
        let mut holding = Vec::new();
        for unit in &units {
            let now = get_unit(&dispatch, "14", &unit.unit_id).await?;
            if !now.current_job_id.is_empty() || now.status != UnitStatus::Available as i32 {
                holding.push(now.call_sign);
            }
        }
        holding
    };
    assert_eq!(holding.len(), 1, "one unit holds the job: {holding:?}");
    let assignments = timeline(&dispatch, &job.job_id)
        .await?
        .iter()
        .filter(|e| e.r#type == dispatch311_proto::dispatch::v1::EventType::Assigned as i32)
        .count();
    assert_eq!(assignments, 1, "one ASSIGNED event");

    // eight dispatchers give eight jobs to the same free unit at once
    let unit = register_unit(&dispatch, "14-BOY-1", "14", &["O-20"], EMPIRE_STATE).await?;
    let mut jobs = Vec::new();
    for n in 0..RACERS {
        jobs.push(hydrant_at(&suite, offset(EMPIRE_STATE, 10.0 * n as f64, 0.0)).await?);
    }
    let mut calls = Vec::new();
    for job in &jobs {
        let dispatch = dispatch.clone();
        let (job_id, unit_id) = (job.job_id.clone(), unit.unit_id.clone());
        calls.push(tokio::spawn(async move {
            assign(&dispatch, &job_id, &unit_id).await
        }));
    }
    let mut won = Vec::new();
    for (job, call) in jobs.iter().zip(calls) {
        match call.await? {
            Ok(_) => won.push(job.job_id.clone()),
            Err(status) => assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}"),
        }
    }
    assert_eq!(won.len(), 1, "a unit works one job at a time");
    assert_eq!(
        get_unit(&dispatch, "14", &unit.unit_id)
            .await?
            .current_job_id,
        won[0]
    );
    for job in &jobs {
        let now = get_job(&dispatch, &job.job_id).await?;
        if job.job_id == won[0] {
            assert_eq!(now.state, JobState::Assigned as i32);
        } else {
            assert_eq!(now.state, JobState::Queued as i32, "{}", job.sr_number);
            assert_eq!(
                timeline(&dispatch, &job.job_id).await?.len(),
                1,
                "only its QUEUED event"
            );
        }
    }

    suite.stop().await
}
