//! Complainants' answers: checked field by field, recorded once per token
//! (an identical repeat returns the first, a different one is refused), and
//! "not corrected, reopen" puts the job back in its precinct queue with a
//! REOPENED event by the survey.

use dispatch311_proto::{
    common::v1::ResolutionCode,
    dispatch::v1::{EventType, JobState, ListQueueRequest},
    survey::v1::{Agreement, ConditionCorrected, DissatisfactionReason},
};
use dispatch311_tests::{
    cad::{EMPIRE_STATE, PIPELINE, file, get_job, register_unit, timeline},
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

    suite.stop().await
}
