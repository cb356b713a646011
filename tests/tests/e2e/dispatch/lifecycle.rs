//! The guarded lifecycle of a dispatch job, end to end with the real
//! binaries: QUEUED → ASSIGNED → ACKNOWLEDGED → EN_ROUTE → ON_SCENE → CLOSED
//! with reassignment, cancellation and reopening; every step is an event
//! (who, role, when, where, why) in an append-only, hash-chained log whose
//! tampering VerifyJobTimeline pinpoints; a closure updates the public request
//! and publishes a `ClosedEvent` without contact details; a forbidden
//! transition is refused and changes nothing.

use dispatch311_proto::{
    common::v1::{Priority, ResolutionCode, ServiceRequestStatus},
    dispatch::v1::{
        AcknowledgeJobRequest, AssignJobRequest, CancelJobRequest, EventType, GetJobRequest,
        JobEvent, JobState, ListQueueRequest, ReopenJobRequest, ReportOnSceneRequest,
        ReportUnitStatusRequest, Role, UnitStatus, VerifyJobTimelineRequest, get_job_request,
    },
};
use dispatch311_tests::{
    cad::{
        COMPLAINANT_EMAIL, COMPLAINANT_NAME, COMPLAINANT_PHONE, Dispatch, EMPIRE_STATE,
        acknowledge, assert_refused_unchanged, assign, close, close_request, complaint,
        contains_bytes, dispatcher, distance_m, drive_to_scene, en_route, file, get_job, get_unit,
        hydrant_at, officer, offset, on_scene, register_unit, snapshot, supervisor, timeline,
        wait_for_closures, wait_for_sr_status,
    },
    suite::{Service, Suite, SuiteOptions},
};
use tonic::Code;

/// Closing within seconds of assignment is what these tests do; the flags for
/// it are tested in dispatch_rules.rs, so they are off here.
fn without_flags() -> SuiteOptions {
    SuiteOptions {
        env: vec![
            ("DISPATCH311_FAST_CLOSURE_SECS".into(), "0".into()),
            ("DISPATCH311_MIN_ON_SCENE_SECS".into(), "0".into()),
        ],
        ..SuiteOptions::default()
    }
}

async fn verify(dispatch: &Dispatch, job_id: &str) -> anyhow::Result<(bool, i64, i64, String)> {
    let answer = dispatch
        .clone()
        .verify_job_timeline(VerifyJobTimelineRequest {
            job_id: job_id.into(),
        })
        .await?
        .into_inner();
    Ok((
        answer.intact,
        answer.events_checked,
        answer.first_broken_sequence,
        answer.detail,
    ))
}

fn types(events: &[JobEvent]) -> Vec<EventType> {
    events
        .iter()
        .map(|e| EventType::try_from(e.r#type).unwrap_or(EventType::Unspecified))
        .collect()
}

fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[tokio::test]
async fn a_job_goes_from_queue_to_closure_with_every_step_recorded_and_chained()
-> anyhow::Result<()> {
    let mut suite = Suite::start(without_flags()).await?;
    // survey would consume (and remove) the closed events this test inspects
    suite.kill(Service::Survey)?;
    let dispatch = suite.dispatch().await?;

    let queued = file(
        &suite,
        complaint("Illegal Parking", "Blocked Hydrant", EMPIRE_STATE),
    )
    .await?;
    assert_eq!(queued.state, JobState::Queued as i32);
    assert_eq!(
        (queued.complaint_type.as_str(), queued.descriptor.as_str()),
        ("Illegal Parking", "Blocked Hydrant")
    );
    assert_eq!(
        (queued.agency.as_str(), queued.precinct.as_str()),
        ("NYPD", "14")
    );
    assert_eq!(queued.priority, Priority::High as i32);
    assert_eq!(queued.location, Some(EMPIRE_STATE));
    assert!(queued.sla_due_at.is_some() && queued.queued_at.is_some());
    assert!(
        queued.sla_remaining_seconds > 0 && queued.sla_remaining_seconds <= 3600,
        "a blocked hydrant is due within the hour: {}",
        queued.sla_remaining_seconds
    );
    assert!(!queued.sla_breached && queued.flags.is_empty() && queued.unit_id.is_empty());

    let start = offset(EMPIRE_STATE, -800.0, 0.0);
    let unit = register_unit(&dispatch, "14-ADAM-1", "14", &["O-1", "O-2"], start).await?;
    let unit_status = |expected: UnitStatus| {
        let dispatch = dispatch.clone();
        let unit_id = unit.unit_id.clone();
        async move {
            let unit = get_unit(&dispatch, "14", &unit_id).await?;
            anyhow::ensure!(
                unit.status == expected as i32,
                "unit status {:?}, expected {expected:?}",
                UnitStatus::try_from(unit.status)
            );
            anyhow::Ok(unit)
        }
    };

    let assigned = assign(&dispatch, &queued.job_id, &unit.unit_id).await?;
    assert_eq!(assigned.state, JobState::Assigned as i32);
    assert_eq!(assigned.unit_call_sign, "14-ADAM-1");
    let busy = unit_status(UnitStatus::Assigned).await?;
    assert_eq!(busy.current_job_id, queued.job_id);

    let acknowledged_at = offset(EMPIRE_STATE, -780.0, 0.0);
    let job = acknowledge(&dispatch, &queued.job_id, "O-1", acknowledged_at).await?;
    assert_eq!(job.state, JobState::Acknowledged as i32);
    let driving_at = offset(EMPIRE_STATE, -400.0, 0.0);
    let job = en_route(&dispatch, &queued.job_id, "O-1", driving_at).await?;
    assert_eq!(job.state, JobState::EnRoute as i32);
    unit_status(UnitStatus::EnRoute).await?;
    let arrived_at = offset(EMPIRE_STATE, 30.0, 10.0);
    let job = on_scene(&dispatch, &queued.job_id, "O-1", arrived_at).await?;
    assert_eq!(job.state, JobState::OnScene as i32);
    unit_status(UnitStatus::OnScene).await?;

    // the partner writes the summons
    let closed = close(
        &dispatch,
        close_request(
            &queued.job_id,
            "O-2",
            ResolutionCode::SummonsIssued,
            arrived_at,
        ),
    )
    .await?;
    assert_eq!(closed.state, JobState::Closed as i32);
    assert_eq!(closed.resolution_code, ResolutionCode::SummonsIssued as i32);
    assert_eq!(closed.summons_number, "4410123456");
    assert_eq!(closed.resolution_notes, "checked the block");
    assert!(closed.closed_at.is_some() && closed.assigned_at.is_some());
    let free = unit_status(UnitStatus::Available).await?;
    assert!(free.current_job_id.is_empty(), "the unit is free again");
    assert_eq!(
        get_job(&dispatch, &queued.job_id).await?.state,
        JobState::Closed as i32
    );

    // every step is an event with who, role, when, where; chained by hashes
    let events = timeline(&dispatch, &queued.job_id).await?;
    assert_eq!(
        types(&events),
        [
            EventType::Queued,
            EventType::Assigned,
            EventType::Acknowledged,
            EventType::EnRoute,
            EventType::OnScene,
            EventType::Closed
        ]
    );
    let who: Vec<(String, i32)> = events
        .iter()
        .map(|e| {
            let a = e.actor.clone().unwrap_or_default();
            (a.id, a.role)
        })
        .collect();
    assert_eq!(who[1], ("D-100".to_string(), Role::Dispatcher as i32));
    assert_eq!(who[2], ("O-1".to_string(), Role::Officer as i32));
    assert_eq!(who[4], ("O-1".to_string(), Role::Officer as i32));
    assert_eq!(who[5], ("O-2".to_string(), Role::Officer as i32));
    for (event, expected) in
        events[2..]
            .iter()
            .zip([acknowledged_at, driving_at, arrived_at, arrived_at])
    {
        let position = event.position.expect("the reported position is recorded");
        assert!(
            distance_m(position, expected) < 0.5,
            "{:?} at {position:?}, reported {expected:?}",
            event.r#type
        );
    }
    for event in &events[1..] {
        assert_eq!(
            event.unit_id, unit.unit_id,
            "{:?} names the unit",
            event.r#type
        );
    }
    for (index, event) in events.iter().enumerate() {
        assert_eq!(event.sequence, index as i64 + 1);
        assert!(is_sha256_hex(&event.hash), "hash {:?}", event.hash);
        assert!(event.occurred_at.is_some());
        if index == 0 {
            continue;
        }
        let previous = &events[index - 1];
        assert_eq!(
            event.previous_hash, previous.hash,
            "event {} links to its predecessor",
            event.sequence
        );
        let (a, b) = (previous.occurred_at.unwrap(), event.occurred_at.unwrap());
        assert!(
            (a.seconds, a.nanos) <= (b.seconds, b.nanos),
            "events in time order"
        );
    }
    let (intact, checked, first_broken, detail) = verify(&dispatch, &queued.job_id).await?;
    assert_eq!((intact, checked, first_broken), (true, 6, 0), "{detail}");

    // the public request is closed with the resolution
    let public =
        wait_for_sr_status(&suite, &queued.sr_number, ServiceRequestStatus::Closed).await?;
    let resolution = public
        .resolution
        .expect("a closed request has its resolution");
    assert_eq!(resolution.code, ResolutionCode::SummonsIssued as i32);
    assert!(
        resolution.text.to_lowercase().contains("summons"),
        "public text: {}",
        resolution.text
    );
    assert_eq!(
        public.timeline.last().map(|t| t.status),
        Some(ServiceRequestStatus::Closed as i32)
    );

    // and survey's queue gets one ClosedEvent, without contact details
    let published = wait_for_closures(&suite, &queued.sr_id, 1).await?;
    assert_eq!(published.len(), 1, "one closure, one event");
    let closure = &published[0];
    assert_eq!(closure.envelope.kind, "closed");
    assert_eq!(closure.envelope.sr_id, queued.sr_id);
    let event = &closure.event;
    assert_eq!(event.sr_number, queued.sr_number);
    assert_eq!(
        (event.agency.as_str(), event.precinct.as_str()),
        ("NYPD", "14")
    );
    assert_eq!(event.complaint_type, "Illegal Parking");
    assert_eq!(event.resolution_code, ResolutionCode::SummonsIssued as i32);
    assert!(event.summons_issued);
    assert_eq!(event.closure_number, 1);
    assert!(
        event.complainant_consented,
        "the consent flag travels, not the contact"
    );
    assert!(!event.flagged);
    assert_eq!(event.closed_at, closed.closed_at);
    assert_eq!(event.assigned_at, closed.assigned_at);
    for secret in [
        COMPLAINANT_NAME,
        COMPLAINANT_PHONE,
        COMPLAINANT_EMAIL,
        "engine running",
    ] {
        assert!(
            !contains_bytes(&closure.raw, secret),
            "the closed event carries {secret:?}"
        );
    }

    suite.stop().await
}

#[tokio::test]
async fn tampering_with_a_recorded_event_is_detected_at_its_sequence() -> anyhow::Result<()> {
    let suite = Suite::start(without_flags()).await?;
    let dispatch = suite.dispatch().await?;
    let pool = suite.database().await?;

    let mut jobs = Vec::new();
    for (n, north) in [0.0, 100.0, 200.0, 300.0, 400.0].into_iter().enumerate() {
        let job = hydrant_at(&suite, offset(EMPIRE_STATE, north, 0.0)).await?;
        let officer_id = format!("O-{n}");
        let unit = register_unit(
            &dispatch,
            &format!("14-ADAM-{n}"),
            "14",
            &[officer_id.as_str()],
            offset(EMPIRE_STATE, -800.0, 0.0),
        )
        .await?;
        drive_to_scene(&dispatch, &job, &unit, &officer_id, job.location.unwrap()).await?;
        close(
            &dispatch,
            close_request(
                &job.job_id,
                &officer_id,
                ResolutionCode::ActionTaken,
                job.location.unwrap(),
            ),
        )
        .await?;
        assert!(
            verify(&dispatch, &job.job_id).await?.0,
            "intact before tampering"
        );
        jobs.push(job);
    }
    let job_uuid = |i: usize| uuid::Uuid::parse_str(&jobs[i].job_id);

    // the log refuses edits through the front door
    let direct = sqlx::query(
        "UPDATE dispatch.job_events SET reason = 'nothing was there' WHERE job_id = $1 AND sequence = 3",
    )
    .bind(job_uuid(0)?)
    .execute(&pool)
    .await;
    assert!(direct.is_err(), "job events are append-only");
    let deleted = sqlx::query("DELETE FROM dispatch.job_events WHERE job_id = $1 AND sequence = 6")
        .bind(job_uuid(0)?)
        .execute(&pool)
        .await;
    assert!(deleted.is_err(), "job events cannot be deleted");
    assert!(verify(&dispatch, &jobs[0].job_id).await?.0);

    // someone with database access edits the acknowledgement behind the service's back
    let mut tx = pool.begin().await?;
    sqlx::query("ALTER TABLE dispatch.job_events DISABLE TRIGGER job_events_append_only")
        .execute(&mut *tx)
        .await?;
    // (foreign keys off too: an event already in the signed log is referenced by it)
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE dispatch.job_events SET reason = 'nothing was there' WHERE job_id = $1 AND sequence = 3",
    )
    .bind(job_uuid(0)?)
    .execute(&mut *tx)
    .await?;
    // ... backdates when another job was queued, to hide a late response
    sqlx::query(
        "UPDATE dispatch.job_events SET occurred_at = occurred_at - interval '1 second' \
         WHERE job_id = $1 AND sequence = 1",
    )
    .bind(job_uuid(1)?)
    .execute(&mut *tx)
    .await?;
    // ... and rewrites an event together with its own hash, using the formula
    sqlx::query(
        "UPDATE dispatch.job_events SET reason = 'acknowledged at once', \
         hash = dispatch.job_event_hash(previous_hash, job_id, sequence, event_type, occurred_at, \
             actor, actor_role, latitude, longitude, unit_id, 'acknowledged at once') \
         WHERE job_id = $1 AND sequence = 3",
    )
    .bind(job_uuid(2)?)
    .execute(&mut *tx)
    .await?;
    // ... and removes an event from the middle of another log
    sqlx::query("DELETE FROM dispatch.job_events WHERE job_id = $1 AND sequence = 3")
        .bind(job_uuid(3)?)
        .execute(&mut *tx)
        .await?;
    // ... and cuts the end off a log, the closure with it
    sqlx::query(
        "DELETE FROM dispatch.job_events WHERE job_id = $1 \
         AND sequence = (SELECT max(sequence) FROM dispatch.job_events WHERE job_id = $1)",
    )
    .bind(job_uuid(4)?)
    .execute(&mut *tx)
    .await?;
    sqlx::query("ALTER TABLE dispatch.job_events ENABLE TRIGGER job_events_append_only")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;

    let (intact, _, first_broken, detail) = verify(&dispatch, &jobs[0].job_id).await?;
    assert!(!intact, "an edited reason breaks the chain");
    assert_eq!(
        first_broken, 3,
        "the edited event is the first broken link ({detail})"
    );
    assert!(!detail.is_empty(), "the report says what is wrong");
    let (intact, _, first_broken, detail) = verify(&dispatch, &jobs[1].job_id).await?;
    assert!(!intact, "an edited time breaks the chain");
    assert_eq!(first_broken, 1, "{detail}");
    let (intact, _, first_broken, detail) = verify(&dispatch, &jobs[2].job_id).await?;
    assert!(
        !intact,
        "a recomputed hash no longer matches what the next event chained"
    );
    assert_eq!(first_broken, 4, "{detail}");

    let (intact, _, first_broken, detail) = verify(&dispatch, &jobs[3].job_id).await?;
    assert!(!intact, "a removed event breaks the chain");
    assert_eq!(
        first_broken, 4,
        "the event after the gap no longer links: {detail}"
    );

    let (intact, checked, first_broken, detail) = verify(&dispatch, &jobs[4].job_id).await?;
    assert!(
        !intact,
        "a log cut short no longer ends where the job says it does"
    );
    assert_eq!(
        first_broken,
        checked + 1,
        "the first missing event is reported: {detail}"
    );

    // the edit is not hidden: the timeline shows what is stored now
    let events = timeline(&dispatch, &jobs[0].job_id).await?;
    assert_eq!(events[2].reason, "nothing was there");

    // an untouched job elsewhere in the table keeps its own chain whole; all
    // jobs' events form one signed log, so once a checkpoint covers this job
    // its report also says the log around it was altered
    let untouched = hydrant_at(&suite, EMPIRE_STATE).await?;
    let (intact, checked, first_broken, detail) = verify(&dispatch, &untouched.job_id).await?;
    assert_eq!((checked, first_broken), (1, 0), "{detail}");
    assert!(
        intact || detail.contains("signed checkpoint"),
        "only the log around it may be reported: {detail}"
    );

    suite.stop().await
}

#[tokio::test]
async fn a_forbidden_transition_is_refused_and_changes_nothing() -> anyhow::Result<()> {
    let suite = Suite::start(without_flags()).await?;
    let dispatch = suite.dispatch().await?;
    let mut client = dispatch.clone();
    let job = hydrant_at(&suite, EMPIRE_STATE).await?;
    let unit = register_unit(&dispatch, "14-ADAM-1", "14", &["O-1"], EMPIRE_STATE).await?;
    let other_unit = register_unit(&dispatch, "14-ADAM-2", "14", &["O-7"], EMPIRE_STATE).await?;
    let here = EMPIRE_STATE;
    let failed = [Code::FailedPrecondition];

    // QUEUED: nobody can acknowledge, drive to, arrive at, close or reopen it
    let before = snapshot(&dispatch, &job.job_id).await?;
    assert_refused_unchanged(
        &dispatch,
        acknowledge(&dispatch, &job.job_id, "O-1", here).await,
        &failed,
        &before,
        "acknowledging an unassigned job",
    )
    .await?;
    assert_refused_unchanged(
        &dispatch,
        en_route(&dispatch, &job.job_id, "O-1", here).await,
        &failed,
        &before,
        "en route to an unassigned job",
    )
    .await?;
    assert_refused_unchanged(
        &dispatch,
        on_scene(&dispatch, &job.job_id, "O-1", here).await,
        &failed,
        &before,
        "on scene of an unassigned job",
    )
    .await?;
    for code in [
        ResolutionCode::ActionTaken,
        ResolutionCode::PoliceActionNotNecessary,
        ResolutionCode::Duplicate,
    ] {
        assert_refused_unchanged(
            &dispatch,
            close(&dispatch, close_request(&job.job_id, "O-1", code, here)).await,
            &failed,
            &before,
            &format!("closing a queued job as {code:?}"),
        )
        .await?;
    }
    let reopen = client
        .reopen_job(ReopenJobRequest {
            actor: supervisor(),
            job_id: job.job_id.clone(),
            reason: "complainant called again".into(),
            raise_priority: false,
        })
        .await;
    assert_refused_unchanged(&dispatch, reopen, &failed, &before, "reopening an open job").await?;

    // ASSIGNED: the unit must acknowledge before anything else, and only its officers can
    assign(&dispatch, &job.job_id, &unit.unit_id).await?;
    let before = snapshot(&dispatch, &job.job_id).await?;
    assert_refused_unchanged(
        &dispatch,
        en_route(&dispatch, &job.job_id, "O-1", here).await,
        &failed,
        &before,
        "en route before acknowledging",
    )
    .await?;
    assert_refused_unchanged(
        &dispatch,
        on_scene(&dispatch, &job.job_id, "O-1", here).await,
        &failed,
        &before,
        "on scene before acknowledging",
    )
    .await?;
    assert_refused_unchanged(
        &dispatch,
        acknowledge(&dispatch, &job.job_id, "O-7", here).await,
        &[Code::FailedPrecondition, Code::PermissionDenied],
        &before,
        "another unit's officer acknowledging",
    )
    .await?;
    let reassign_without_reason = assign(&dispatch, &job.job_id, &other_unit.unit_id).await;
    assert_refused_unchanged(
        &dispatch,
        reassign_without_reason,
        &[Code::InvalidArgument, Code::FailedPrecondition],
        &before,
        "reassigning without a reason",
    )
    .await?;
    let cancel_by_officer = client
        .cancel_job(CancelJobRequest {
            actor: officer("O-1"),
            job_id: job.job_id.clone(),
            reason: "busy".into(),
        })
        .await;
    assert_refused_unchanged(
        &dispatch,
        cancel_by_officer,
        &[Code::PermissionDenied],
        &before,
        "an officer cancelling",
    )
    .await?;
    let no_actor = client
        .acknowledge_job(AcknowledgeJobRequest {
            actor: None,
            job_id: job.job_id.clone(),
            position: Some(here),
        })
        .await;
    assert_refused_unchanged(
        &dispatch,
        no_actor,
        &[
            Code::InvalidArgument,
            Code::Unauthenticated,
            Code::PermissionDenied,
        ],
        &before,
        "acknowledging without saying who",
    )
    .await?;
    let unspecified = close(
        &dispatch,
        close_request(&job.job_id, "O-1", ResolutionCode::Unspecified, here),
    )
    .await;
    assert_refused_unchanged(
        &dispatch,
        unspecified,
        &[Code::InvalidArgument, Code::FailedPrecondition],
        &before,
        "closing without a resolution code",
    )
    .await?;

    // ACKNOWLEDGED: another unit's officer cannot work or close it; an arrival needs a position
    acknowledge(&dispatch, &job.job_id, "O-1", here).await?;
    let before = snapshot(&dispatch, &job.job_id).await?;
    let not_the_crew = [Code::FailedPrecondition, Code::PermissionDenied];
    assert_refused_unchanged(
        &dispatch,
        en_route(&dispatch, &job.job_id, "O-7", here).await,
        &not_the_crew,
        &before,
        "another unit's officer en route",
    )
    .await?;
    assert_refused_unchanged(
        &dispatch,
        on_scene(&dispatch, &job.job_id, "O-7", here).await,
        &not_the_crew,
        &before,
        "another unit's officer on scene",
    )
    .await?;
    assert_refused_unchanged(
        &dispatch,
        close(
            &dispatch,
            close_request(
                &job.job_id,
                "O-7",
                ResolutionCode::PoliceActionNotNecessary,
                here,
            ),
        )
        .await,
        &not_the_crew,
        &before,
        "another unit's officer closing",
    )
    .await?;
    let nowhere = client
        .report_on_scene(ReportOnSceneRequest {
            actor: officer("O-1"),
            job_id: job.job_id.clone(),
            position: None,
        })
        .await;
    assert_refused_unchanged(
        &dispatch,
        nowhere,
        &[Code::InvalidArgument],
        &before,
        "an arrival without a position",
    )
    .await?;

    // two closes racing: one wins, the other finds the job closed
    en_route(&dispatch, &job.job_id, "O-1", here).await?;
    on_scene(&dispatch, &job.job_id, "O-1", here).await?;
    let racing = [ResolutionCode::ActionTaken, ResolutionCode::NoEvidence].map(|code| {
        let dispatch = dispatch.clone();
        let request = close_request(&job.job_id, "O-1", code, here);
        tokio::spawn(async move { close(&dispatch, request).await })
    });
    let mut closed_ok = 0;
    for call in racing {
        match call.await? {
            Ok(_) => closed_ok += 1,
            Err(status) => assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}"),
        }
    }
    assert_eq!(closed_ok, 1, "one closure wins");
    let closures = timeline(&dispatch, &job.job_id)
        .await?
        .iter()
        .filter(|e| e.r#type == EventType::Closed as i32)
        .count();
    assert_eq!(closures, 1, "one CLOSED event");

    // CLOSED: final until a supervisor reopens it
    let before = snapshot(&dispatch, &job.job_id).await?;
    assert_refused_unchanged(
        &dispatch,
        close(
            &dispatch,
            close_request(&job.job_id, "O-1", ResolutionCode::NoEvidence, here),
        )
        .await,
        &failed,
        &before,
        "closing a closed job again",
    )
    .await?;
    assert_refused_unchanged(
        &dispatch,
        acknowledge(&dispatch, &job.job_id, "O-1", here).await,
        &failed,
        &before,
        "acknowledging a closed job",
    )
    .await?;
    let reassign = client
        .assign_job(AssignJobRequest {
            actor: dispatcher(),
            job_id: job.job_id.clone(),
            unit_id: other_unit.unit_id.clone(),
            reason: "second look".into(),
        })
        .await;
    assert_refused_unchanged(
        &dispatch,
        reassign,
        &failed,
        &before,
        "assigning a closed job",
    )
    .await?;
    let cancel = client
        .cancel_job(CancelJobRequest {
            actor: dispatcher(),
            job_id: job.job_id.clone(),
            reason: "no longer needed".into(),
        })
        .await;
    assert_refused_unchanged(
        &dispatch,
        cancel,
        &failed,
        &before,
        "cancelling a closed job",
    )
    .await?;
    let reopen_by_officer = client
        .reopen_job(ReopenJobRequest {
            actor: officer("O-1"),
            job_id: job.job_id.clone(),
            reason: "I was wrong".into(),
            raise_priority: false,
        })
        .await;
    assert_refused_unchanged(
        &dispatch,
        reopen_by_officer,
        &[Code::PermissionDenied],
        &before,
        "an officer reopening",
    )
    .await?;

    // unknown and malformed job ids
    let missing = client
        .get_job(GetJobRequest {
            key: Some(get_job_request::Key::JobId(
                uuid::Uuid::new_v4().to_string(),
            )),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let missing = acknowledge(&dispatch, &uuid::Uuid::new_v4().to_string(), "O-1", here)
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let malformed = acknowledge(&dispatch, "job-1", "O-1", here)
        .await
        .unwrap_err();
    assert_eq!(malformed.code(), Code::InvalidArgument);

    suite.stop().await
}

#[tokio::test]
async fn reassignment_cancellation_and_reopening_are_recorded_and_made_public() -> anyhow::Result<()>
{
    let mut suite = Suite::start(without_flags()).await?;
    suite.kill(Service::Survey)?;
    let dispatch = suite.dispatch().await?;
    let mut client = dispatch.clone();
    let first_unit = register_unit(&dispatch, "14-ADAM-1", "14", &["O-1"], EMPIRE_STATE).await?;
    let second_unit = register_unit(&dispatch, "14-ADAM-2", "14", &["O-2"], EMPIRE_STATE).await?;

    // reassignment with a reason frees the first unit
    let job = hydrant_at(&suite, EMPIRE_STATE).await?;
    assign(&dispatch, &job.job_id, &first_unit.unit_id).await?;
    let reassigned = client
        .assign_job(AssignJobRequest {
            actor: dispatcher(),
            job_id: job.job_id.clone(),
            unit_id: second_unit.unit_id.clone(),
            reason: "14-ADAM-1 stuck in traffic".into(),
        })
        .await?
        .into_inner()
        .job
        .unwrap();
    assert_eq!(reassigned.state, JobState::Assigned as i32);
    assert_eq!(reassigned.unit_id, second_unit.unit_id);
    let first = get_unit(&dispatch, "14", &first_unit.unit_id).await?;
    assert_eq!(first.status, UnitStatus::Available as i32);
    assert!(first.current_job_id.is_empty());
    assert_eq!(
        get_unit(&dispatch, "14", &second_unit.unit_id)
            .await?
            .current_job_id,
        job.job_id
    );
    let events = timeline(&dispatch, &job.job_id).await?;
    let last = events.last().unwrap();
    assert_eq!(last.r#type, EventType::Reassigned as i32);
    assert_eq!(last.reason, "14-ADAM-1 stuck in traffic");
    assert_eq!(last.unit_id, second_unit.unit_id);
    let before = snapshot(&dispatch, &job.job_id).await?;
    assert_refused_unchanged(
        &dispatch,
        acknowledge(&dispatch, &job.job_id, "O-1", EMPIRE_STATE).await,
        &[Code::FailedPrecondition, Code::PermissionDenied],
        &before,
        "the former unit acknowledging",
    )
    .await?;

    // never onto a unit that went to a 911 emergency
    let called_away = register_unit(&dispatch, "14-ADAM-3", "14", &["O-3"], EMPIRE_STATE).await?;
    client
        .report_unit_status(ReportUnitStatusRequest {
            actor: officer("O-3"),
            unit_id: called_away.unit_id.clone(),
            status: UnitStatus::BusyEmergency as i32,
            position: None,
        })
        .await?;
    let to_emergency = client
        .assign_job(AssignJobRequest {
            actor: dispatcher(),
            job_id: job.job_id.clone(),
            unit_id: called_away.unit_id.clone(),
            reason: "closest unit".into(),
        })
        .await;
    assert_refused_unchanged(
        &dispatch,
        to_emergency,
        &[Code::FailedPrecondition],
        &before,
        "reassigning to a unit on a 911 call",
    )
    .await?;

    // cancellation, with a reason, by the dispatcher
    let cancelled = client
        .cancel_job(CancelJobRequest {
            actor: dispatcher(),
            job_id: job.job_id.clone(),
            reason: "complainant says the car left".into(),
        })
        .await?
        .into_inner()
        .job
        .unwrap();
    assert_eq!(cancelled.state, JobState::Cancelled as i32);
    let second = get_unit(&dispatch, "14", &second_unit.unit_id).await?;
    assert_eq!(second.status, UnitStatus::Available as i32);
    assert!(second.current_job_id.is_empty());
    let last = timeline(&dispatch, &job.job_id).await?.pop().unwrap();
    assert_eq!(last.r#type, EventType::Cancelled as i32);
    assert_eq!(last.reason, "complainant says the car left");
    assert_eq!(last.actor, dispatcher());
    wait_for_sr_status(&suite, &job.sr_number, ServiceRequestStatus::Cancelled).await?;

    // a closed job reopened by a supervisor returns to the queue, one step more urgent
    let job = hydrant_at(&suite, EMPIRE_STATE).await?;
    drive_to_scene(&dispatch, &job, &first_unit, "O-1", EMPIRE_STATE).await?;
    close(
        &dispatch,
        close_request(
            &job.job_id,
            "O-1",
            ResolutionCode::ConditionGoneOnArrival,
            EMPIRE_STATE,
        ),
    )
    .await?;
    wait_for_sr_status(&suite, &job.sr_number, ServiceRequestStatus::Closed).await?;
    let before = snapshot(&dispatch, &job.job_id).await?;
    let no_reason = client
        .reopen_job(ReopenJobRequest {
            actor: supervisor(),
            job_id: job.job_id.clone(),
            reason: String::new(),
            raise_priority: true,
        })
        .await;
    assert_refused_unchanged(
        &dispatch,
        no_reason,
        &[Code::InvalidArgument, Code::FailedPrecondition],
        &before,
        "reopening without a reason",
    )
    .await?;
    let reopened = client
        .reopen_job(ReopenJobRequest {
            actor: supervisor(),
            job_id: job.job_id.clone(),
            reason: "complainant sent a photo: the car is still there".into(),
            raise_priority: true,
        })
        .await?
        .into_inner()
        .job
        .unwrap();
    assert_eq!(reopened.state, JobState::Queued as i32);
    assert_eq!(reopened.reopen_count, 1);
    assert_eq!(
        reopened.priority,
        Priority::Urgent as i32,
        "one step up from high"
    );
    let queue = client
        .list_queue(ListQueueRequest {
            precinct: "14".into(),
            page_size: 10,
            page_token: String::new(),
        })
        .await?
        .into_inner();
    assert_eq!(
        queue
            .jobs
            .iter()
            .map(|j| j.job_id.as_str())
            .collect::<Vec<_>>(),
        [job.job_id.as_str()],
        "back in the precinct queue"
    );
    let last = timeline(&dispatch, &job.job_id).await?.pop().unwrap();
    assert_eq!(last.r#type, EventType::Reopened as i32);
    assert_eq!(last.actor, supervisor());
    assert!(last.reason.contains("still there"));
    wait_for_sr_status(&suite, &job.sr_number, ServiceRequestStatus::Reopened).await?;

    // closed again: the second closure is published as such
    drive_to_scene(&dispatch, &reopened, &second_unit, "O-2", EMPIRE_STATE).await?;
    close(
        &dispatch,
        close_request(
            &job.job_id,
            "O-2",
            ResolutionCode::SummonsIssued,
            EMPIRE_STATE,
        ),
    )
    .await?;
    let public = wait_for_sr_status(&suite, &job.sr_number, ServiceRequestStatus::Closed).await?;
    assert_eq!(
        public.resolution.unwrap().code,
        ResolutionCode::SummonsIssued as i32
    );
    let closures = wait_for_closures(&suite, &job.sr_id, 2).await?;
    let numbers: Vec<(u32, i32)> = closures
        .iter()
        .map(|c| (c.event.closure_number, c.event.resolution_code))
        .collect();
    assert_eq!(
        numbers,
        [
            (1, ResolutionCode::ConditionGoneOnArrival as i32),
            (2, ResolutionCode::SummonsIssued as i32)
        ]
    );
    assert!(verify(&dispatch, &job.job_id).await?.0);

    suite.stop().await
}
