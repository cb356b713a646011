//! A consenting complainant's contact reaches the survey system only through
//! the survey token: the survey service fetches it from intake, which records
//! the release; an unknown token releases nothing, an expired one is refused,
//! and with intake down the caller is told to retry. The contact is never
//! stored by the survey service or written to its log.

use dispatch311_auth::Role;
use dispatch311_proto::{
    common::v1::ResolutionCode,
    intake::v1::{ListContactReleasesRequest, ReleasePurpose},
    survey::v1::{
        Agreement, ConditionCorrected, DissatisfactionReason, GetSurveyContactRequest,
        GetSurveyContactResponse,
    },
};
use dispatch311_tests::{
    cad::{
        COMPLAINANT_EMAIL, COMPLAINANT_NAME, COMPLAINANT_PHONE, EMPIRE_STATE, file, register_unit,
    },
    suite::{SURVEY_SYSTEM, Service, Suite, SuiteOptions},
    survey::{Complainant, Poller, answer, close_at_scene, closure_of, complaint_from},
};
use tonic::Code;

async fn releases_of(suite: &Suite, sr_number: &str) -> anyhow::Result<Vec<(i32, String)>> {
    let releases = suite
        .intake_as(Role::Auditor, "oversight-7")
        .await?
        .list_contact_releases(ListContactReleasesRequest {
            sr_number: sr_number.to_string(),
            page_size: 100,
            page_token: String::new(),
        })
        .await?
        .into_inner()
        .releases;
    Ok(releases
        .into_iter()
        .map(|r| {
            assert_eq!(r.sr_number, sr_number);
            assert!(r.released_at.is_some(), "a release says when");
            (r.purpose, r.requester)
        })
        .collect())
}

fn contact_request(token: &str) -> GetSurveyContactRequest {
    GetSurveyContactRequest {
        survey_token: token.to_string(),
    }
}

#[tokio::test]
async fn the_contact_is_released_only_through_a_valid_token_and_every_release_is_recorded()
-> anyhow::Result<()> {
    let mut suite = Suite::start(SuiteOptions::default()).await?;
    let dispatch = suite.dispatch().await?;
    let mut survey = suite.survey().await?;
    let unit = register_unit(&dispatch, "14-SURVEY-2", "14", &["O-14-2"], EMPIRE_STATE).await?;
    let mut poller = Poller::new(survey.clone(), 100);

    let mut closures = Vec::new();
    for _ in 0..3 {
        let request = complaint_from(
            Complainant::Consenting,
            "Blocked Driveway",
            "No Access",
            EMPIRE_STATE,
            "MANHATTAN",
        );
        let job = file(&suite, request).await?;
        let job =
            close_at_scene(&dispatch, &job, &unit, "O-14-2", ResolutionCode::NoEvidence).await?;
        let closed = poller
            .wait_for(&job.sr_number, closure_of(&job.sr_number, 1))
            .await?;
        assert!(!closed.survey_token.is_empty());
        closures.push(closed);
    }
    let [released, expired, unreachable] = &closures[..] else {
        unreachable!("three closures")
    };

    // nothing was released by closing or polling
    assert!(releases_of(&suite, &released.sr_number).await?.is_empty());

    // an unknown token releases nothing
    let refused = survey
        .get_survey_contact(contact_request(
            "bm90LWEtdG9rZW4tdGhhdC13YXMtaGFuZGVkLW91dA",
        ))
        .await
        .expect_err("an unknown token is refused");
    assert_eq!(refused.code(), Code::NotFound, "{refused:?}");
    let refused = survey
        .get_survey_contact(contact_request(""))
        .await
        .expect_err("a missing token is refused");
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");

    // the token releases the contact, and intake records who got it and why
    let GetSurveyContactResponse {
        sr_number,
        name,
        phone,
        email,
    } = survey
        .get_survey_contact(contact_request(&released.survey_token))
        .await?
        .into_inner();
    assert_eq!(sr_number, released.sr_number);
    assert_eq!(
        (name.as_str(), phone.as_str(), email.as_str()),
        (COMPLAINANT_NAME, COMPLAINANT_PHONE, COMPLAINANT_EMAIL)
    );
    assert_eq!(
        releases_of(&suite, &released.sr_number).await?,
        [(
            ReleasePurpose::SatisfactionSurvey as i32,
            format!("survey_system:{SURVEY_SYSTEM}")
        )]
    );
    // each release is recorded, a repeat too
    survey
        .get_survey_contact(contact_request(&released.survey_token))
        .await?;
    assert_eq!(releases_of(&suite, &released.sr_number).await?.len(), 2);

    // an expired token releases nothing and takes no answer
    let db = suite.database().await?;
    let changed = sqlx::query(
        "UPDATE survey.survey_tokens SET expires_at = now() - interval '1 minute' \
         WHERE token_hash = sha256(convert_to($1, 'UTF8'))",
    )
    .bind(&expired.survey_token)
    .execute(&db)
    .await?
    .rows_affected();
    assert_eq!(changed, 1);
    let refused = survey
        .get_survey_contact(contact_request(&expired.survey_token))
        .await
        .expect_err("an expired token is refused");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("expired"),
        "{}",
        refused.message()
    );
    let refused = survey
        .submit_survey_response(answer(
            &expired.survey_token,
            Agreement::Agree,
            DissatisfactionReason::Unspecified,
            ConditionCorrected::Yes,
            "",
        ))
        .await
        .expect_err("an expired token takes no answer");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(releases_of(&suite, &expired.sr_number).await?.is_empty());

    // intake down: the survey system is told to retry
    suite.kill(Service::Intake)?;
    let refused = survey
        .get_survey_contact(contact_request(&unreachable.survey_token))
        .await
        .expect_err("no contact without intake");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    suite.restart(Service::Intake).await?;
    let contact = survey
        .get_survey_contact(contact_request(&unreachable.survey_token))
        .await?
        .into_inner();
    assert_eq!(contact.phone, COMPLAINANT_PHONE);

    // the survey's calls to intake show in its client metrics: three
    // releases, and the call intake was not there for
    let metrics = suite.metrics(Service::Survey).await?;
    let calls = |code: &str| -> f64 {
        metrics
            .lines()
            .filter(|line| {
                line.starts_with("rpc_client_call_duration_seconds_count{")
                    && line.contains(r#"rpc_method="ReleaseComplainantContact""#)
                    && line.contains(&format!(r#"rpc_grpc_status_code="{code}""#))
            })
            .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum()
    };
    assert_eq!(calls("0"), 3.0, "{metrics}");
    assert!(calls("14") >= 1.0, "{metrics}");

    // the survey service keeps none of it: not in its tables, not in its log
    let stored: Vec<String> = sqlx::query_scalar(
        "SELECT row_to_json(c)::text FROM survey.closures c \
         UNION ALL SELECT row_to_json(t)::text FROM survey.survey_tokens t \
         UNION ALL SELECT row_to_json(r)::text FROM survey.responses r",
    )
    .fetch_all(&db)
    .await?;
    let log = std::fs::read_to_string(suite.log_path(Service::Survey))?;
    for secret in [COMPLAINANT_NAME, COMPLAINANT_PHONE, COMPLAINANT_EMAIL] {
        assert!(
            !stored.iter().any(|row| row.contains(secret)),
            "survey stored {secret:?}"
        );
        assert!(!log.contains(secret), "the survey log shows {secret:?}");
    }
    for closure in &closures {
        assert!(
            !log.contains(&closure.survey_token),
            "the survey log shows a token"
        );
    }

    suite.stop().await
}
