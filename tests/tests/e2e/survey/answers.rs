//! Complainants' answers: checked field by field, recorded once per token
//! (an identical repeat returns the first, a different one is refused), and
//! "not corrected, reopen" puts the job back in its precinct queue with a
//! REOPENED event by the survey.

use std::time::Duration;

use dispatch311_proto::{
    common::v1::{ResolutionCode, ServiceRequestStatus},
    dispatch::v1::{EventType, JobState, ListQueueRequest},
    intake::v1::{GetServiceRequestRequest, get_service_request_request},
    survey::v1::{Agreement, ConditionCorrected, DissatisfactionReason},
};
use dispatch311_tests::{
    cad::{EMPIRE_STATE, PIPELINE, file, get_job, register_unit, timeline, wait_for_sr_status},
    suite::{Suite, SuiteOptions, eventually},
    survey::{Complainant, Poller, answer, close_at_scene, closure_of, complaint_from},
};
use tonic::Code;
use tonic_types::StatusExt as _;

#[tokio::test]
async fn answers_are_checked_recorded_once_and_not_corrected_reopens_the_job() -> anyhow::Result<()>
{
    let suite = Suite::start(SuiteOptions::default()).await?;
    let dispatch = suite.dispatch().await?;
    let mut survey = suite.survey().await?;
    let unit = register_unit(&dispatch, "14-SURVEY-3", "14", &["O-14-3"], EMPIRE_STATE).await?;
    let mut poller = Poller::new(survey.clone(), 100);

    let mut jobs = Vec::new();
    let mut tokens = Vec::new();
    for code in [ResolutionCode::ActionTaken, ResolutionCode::NoEvidence] {
        let request = complaint_from(
            Complainant::Consenting,
            "Illegal Parking",
            "Double Parked Blocking Traffic",
            EMPIRE_STATE,
            "MANHATTAN",
        );
        let job = file(&suite, request).await?;
        let job = close_at_scene(&dispatch, &job, &unit, "O-14-3", code).await?;
        let closed = poller
            .wait_for(&job.sr_number, closure_of(&job.sr_number, 1))
            .await?;
        tokens.push(closed.survey_token);
        jobs.push(job);
    }
    let (reopen_token, satisfied_token) = (&tokens[0], &tokens[1]);

    // bad answers are refused with every problem named, and change nothing
    let bad = [
        (
            answer(
                reopen_token,
                Agreement::Unspecified,
                DissatisfactionReason::Unspecified,
                ConditionCorrected::No,
                "",
            ),
            vec!["agreement"],
        ),
        (
            answer(
                reopen_token,
                Agreement::StronglyDisagree,
                DissatisfactionReason::Unspecified,
                ConditionCorrected::No,
                "",
            ),
            vec!["reason"],
        ),
        (
            answer(
                reopen_token,
                Agreement::Agree,
                DissatisfactionReason::TookTooLong,
                ConditionCorrected::Yes,
                "",
            ),
            vec!["reason"],
        ),
        (
            answer(
                "",
                Agreement::Disagree,
                DissatisfactionReason::Unspecified,
                ConditionCorrected::No,
                &"x".repeat(2_001),
            ),
            vec!["survey_token", "reason", "comment"],
        ),
    ];
    for (request, fields) in bad {
        let refused = survey
            .submit_survey_response(request)
            .await
            .expect_err("a bad answer is refused");
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
        let violated: Vec<String> = refused
            .get_details_bad_request()
            .expect("field violations")
            .field_violations
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(violated, fields);
    }
    let refused = survey
        .submit_survey_response(answer(
            "dW5rbm93bi10b2tlbi1mb3ItYS1zdXJ2ZXktdGhhdC1pcy1ub3Q",
            Agreement::Agree,
            DissatisfactionReason::Unspecified,
            ConditionCorrected::Yes,
            "",
        ))
        .await
        .expect_err("an unknown token takes no answer");
    assert_eq!(refused.code(), Code::NotFound, "{refused:?}");

    // the complainant says nothing was fixed and asks to reopen
    let reopen = answer(
        reopen_token,
        Agreement::StronglyDisagree,
        DissatisfactionReason::NotCorrectedReopen,
        ConditionCorrected::No,
        "the car is still in front of the hydrant",
    );
    let first = survey
        .submit_survey_response(reopen.clone())
        .await?
        .into_inner();
    assert_eq!(first.sr_number, jobs[0].sr_number);
    assert!(first.reopened, "{first:?}");
    assert!(first.recorded_at.is_some());
    let repeat = survey
        .submit_survey_response(reopen.clone())
        .await?
        .into_inner();
    assert_eq!(
        repeat, first,
        "an identical repeat returns the first answer"
    );
    let mut changed_mind = reopen.clone();
    changed_mind.agreement = Agreement::Neither as i32;
    changed_mind.reason = DissatisfactionReason::Unspecified as i32;
    let refused = survey
        .submit_survey_response(changed_mind)
        .await
        .expect_err("one answer per token");
    assert_eq!(refused.code(), Code::AlreadyExists, "{refused:?}");

    // dispatch reopens the job: back in precinct 14's queue, the survey named
    let job_id = jobs[0].job_id.clone();
    let reopened = eventually(PIPELINE, "the job to be reopened by the survey", || {
        let dispatch = dispatch.clone();
        let job_id = job_id.clone();
        async move {
            let job = get_job(&dispatch, &job_id).await?;
            Ok((job.state == JobState::Queued as i32).then_some(job))
        }
    })
    .await?;
    assert_eq!(reopened.reopen_count, 1);
    let queue = dispatch
        .clone()
        .list_queue(ListQueueRequest {
            precinct: "14".into(),
            page_size: 100,
            page_token: String::new(),
        })
        .await?
        .into_inner();
    assert!(
        queue.jobs.iter().any(|j| j.job_id == job_id),
        "the reopened job is in precinct 14's queue"
    );
    let events = timeline(&dispatch, &job_id).await?;
    let reopening = events
        .iter()
        .rfind(|e| e.r#type == EventType::Reopened as i32)
        .expect("a REOPENED event");
    let actor = reopening.actor.clone().unwrap_or_default();
    assert!(
        actor.id.contains("survey") || reopening.reason.contains("survey"),
        "the REOPENED event names the survey: {reopening:?}"
    );
    assert!(
        reopening.reason.contains("not fixed"),
        "{:?}",
        reopening.reason
    );

    // a satisfied complainant reopens nothing
    let satisfied = survey
        .submit_survey_response(answer(
            satisfied_token,
            Agreement::Agree,
            DissatisfactionReason::Unspecified,
            ConditionCorrected::Yes,
            "",
        ))
        .await?
        .into_inner();
    assert!(!satisfied.reopened);
    assert_eq!(
        get_job(&dispatch, &jobs[1].job_id).await?.state,
        JobState::Closed as i32
    );

    // the public record ends where the lifecycle does: surveyed
    let surveyed =
        wait_for_sr_status(&suite, &jobs[1].sr_number, ServiceRequestStatus::Surveyed).await?;
    let last = surveyed.timeline.last().expect("a timeline");
    assert_eq!(last.status, ServiceRequestStatus::Surveyed as i32);
    assert_eq!(
        surveyed.resolution.unwrap_or_default().code,
        ResolutionCode::NoEvidence as i32,
        "the resolution stays on the record"
    );
    // the reopened one is back at work: its answer joins the timeline, the
    // status stays with the lifecycle
    let intake = suite.intake().await?;
    let reopened_sr = eventually(
        PIPELINE,
        "the survey answer on the reopened request",
        || {
            let mut intake = intake.clone();
            let key = get_service_request_request::Key::SrNumber(jobs[0].sr_number.clone());
            async move {
                let sr = intake
                    .get_service_request(GetServiceRequestRequest { key: Some(key) })
                    .await?
                    .into_inner()
                    .service_request
                    .expect("a request");
                Ok(sr
                    .timeline
                    .iter()
                    .any(|t| t.status == ServiceRequestStatus::Surveyed as i32)
                    .then_some(sr))
            }
        },
    )
    .await?;
    assert_ne!(reopened_sr.status, ServiceRequestStatus::Surveyed as i32);

    suite.stop().await
}

/// An unused survey token's hash is purged some time after it expires; one
/// that brought an answer stays with it.
#[tokio::test]
async fn unused_expired_survey_tokens_are_purged() -> anyhow::Result<()> {
    let suite = Suite::start(SuiteOptions {
        env: vec![
            // tokens valid about 9 seconds, purged as soon as they expire
            ("DISPATCH311_SURVEY_TOKEN_DAYS".into(), "0.0001".into()),
            ("DISPATCH311_SURVEY_TOKEN_PURGE_DAYS".into(), "0".into()),
            ("DISPATCH311_SURVEY_PURGE_SECS".into(), "0.5".into()),
        ],
        ..SuiteOptions::default()
    })
    .await?;
    let dispatch = suite.dispatch().await?;
    let mut survey = suite.survey().await?;
    let db = suite.database().await?;
    let unit = register_unit(&dispatch, "14-SURVEY-9", "14", &["O-14-9"], EMPIRE_STATE).await?;
    let mut poller = Poller::new(survey.clone(), 100);
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let request = complaint_from(
            Complainant::Consenting,
            "Illegal Parking",
            "Blocked Hydrant",
            EMPIRE_STATE,
            "MANHATTAN",
        );
        let job = file(&suite, request).await?;
        let job = close_at_scene(
            &dispatch,
            &job,
            &unit,
            "O-14-9",
            ResolutionCode::ActionTaken,
        )
        .await?;
        let closed = poller
            .wait_for(&job.sr_number, closure_of(&job.sr_number, 1))
            .await?;
        tokens.push(closed.survey_token);
    }
    survey
        .submit_survey_response(answer(
            &tokens[0],
            Agreement::Agree,
            DissatisfactionReason::Unspecified,
            ConditionCorrected::Yes,
            "",
        ))
        .await?;

    eventually(Duration::from_secs(20), "the unused token purged", || {
        let db = db.clone();
        async move {
            let left: i64 = sqlx::query_scalar("SELECT count(*) FROM survey.survey_tokens")
                .fetch_one(&db)
                .await?;
            Ok((left == 1).then_some(()))
        }
    })
    .await?;
    let kept: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM survey.survey_tokens t JOIN survey.responses r USING (token_hash)",
    )
    .fetch_one(&db)
    .await?;
    assert_eq!(kept, 1, "the answered token stays with its answer");
    let gone = survey
        .submit_survey_response(answer(
            &tokens[1],
            Agreement::Agree,
            DissatisfactionReason::Unspecified,
            ConditionCorrected::Yes,
            "",
        ))
        .await
        .expect_err("a purged token takes no answer");
    assert_eq!(gone.code(), Code::NotFound, "{gone:?}");

    db.close().await;
    suite.stop().await
}
