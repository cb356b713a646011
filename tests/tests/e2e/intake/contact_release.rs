//! Releasing a complainant's contact details, end to end with the real
//! binaries: only for a complainant who consented, each release recorded
//! (append-only) under the verified caller and listed for auditors newest
//! first, only the survey system may ask, and the contact never written to
//! intake's log.

use dispatch311_auth::Role;
use dispatch311_proto::intake::v1::{
    Complainant, CreateServiceRequestRequest, ListContactReleasesRequest,
    ListContactReleasesResponse, ReleaseComplainantContactRequest, ReleasePurpose, ServiceRequest,
    intake_service_client::IntakeServiceClient,
};
use dispatch311_tests::{
    cad::{COMPLAINANT_EMAIL, COMPLAINANT_NAME, COMPLAINANT_PHONE, EMPIRE_STATE, complaint},
    suite::{AuthChannel, Service, Suite, SuiteOptions},
};
use tonic::Code;

type Intake = IntakeServiceClient<AuthChannel>;

/// The survey system's token subject, and how intake records it.
const SURVEY_SYSTEM: &str = "city-311-surveys";
const REQUESTER: &str = "survey_system:city-311-surveys";

async fn file(
    intake: &Intake,
    request: CreateServiceRequestRequest,
) -> anyhow::Result<ServiceRequest> {
    Ok(intake
        .clone()
        .create_service_request(request)
        .await?
        .into_inner()
        .service_request
        .expect("intake answers with the request"))
}

fn release_of(sr_number: &str) -> ReleaseComplainantContactRequest {
    ReleaseComplainantContactRequest {
        sr_number: sr_number.to_string(),
        purpose: ReleasePurpose::SatisfactionSurvey as i32,
    }
}

async fn releases(
    intake: &Intake,
    sr_number: &str,
    page_size: i32,
    page_token: &str,
) -> anyhow::Result<ListContactReleasesResponse> {
    Ok(intake
        .clone()
        .list_contact_releases(ListContactReleasesRequest {
            sr_number: sr_number.to_string(),
            page_size,
            page_token: page_token.to_string(),
        })
        .await?
        .into_inner())
}

#[tokio::test]
async fn a_consenting_complainants_contact_is_released_once_per_ask_and_recorded()
-> anyhow::Result<()> {
    let mut suite = Suite::start(SuiteOptions::default()).await?;
    // nothing but this test asks for contacts
    suite.kill(Service::Survey)?;
    let integrator = suite.intake().await?;
    let survey_system = suite.intake_as(Role::SurveySystem, SURVEY_SYSTEM).await?;
    let auditor = suite.intake_as(Role::Auditor, "oversight-7").await?;

    let consenting = file(
        &integrator,
        complaint("Illegal Parking", "Blocked Hydrant", EMPIRE_STATE),
    )
    .await?;
    // the integrator that filed it, an auditor and responders may not have it
    for (who, role) in [
        ("the filing integrator", Role::Integrator),
        ("an auditor", Role::Auditor),
        ("an officer", Role::Officer),
        ("a supervisor", Role::Supervisor),
        ("an admin", Role::Admin),
    ] {
        let subject = if role == Role::Integrator {
            dispatch311_tests::suite::INTEGRATOR
        } else {
            "someone"
        };
        let refused = suite
            .intake_as(role, subject)
            .await?
            .release_complainant_contact(release_of(&consenting.sr_number))
            .await
            .expect_err("only the survey system is released contacts");
        assert_eq!(refused.code(), Code::PermissionDenied, "{who}: {refused:?}");
    }
    assert!(
        releases(&auditor, &consenting.sr_number, 0, "")
            .await?
            .releases
            .is_empty(),
        "a refused ask records no release"
    );

    let released = survey_system
        .clone()
        .release_complainant_contact(release_of(&consenting.sr_number))
        .await?
        .into_inner()
        .complainant
        .expect("the released contact");
    assert_eq!(
        released,
        Complainant {
            name: COMPLAINANT_NAME.into(),
            phone: COMPLAINANT_PHONE.into(),
            email: COMPLAINANT_EMAIL.into(),
            consent_to_contact: true,
        }
    );

    let listed = releases(&auditor, &consenting.sr_number, 0, "").await?;
    assert_eq!(listed.releases.len(), 1, "{listed:?}");
    let release = &listed.releases[0];
    assert_eq!(release.sr_number, consenting.sr_number);
    assert_eq!(release.purpose, ReleasePurpose::SatisfactionSurvey as i32);
    assert_eq!(release.requester, REQUESTER);
    let released_at = release.released_at.expect("when it was released");
    let now = chrono::Utc::now().timestamp();
    assert!(
        (now - 60..=now + 1).contains(&released_at.seconds),
        "{released_at:?}"
    );
    assert!(listed.next_page_token.is_empty());

    // every ask is a release of its own, listed newest first, a page at a time
    suite
        .intake_as(Role::SurveySystem, "call-back-desk")
        .await?
        .release_complainant_contact(release_of(&consenting.sr_number))
        .await?;
    let first_page = releases(&auditor, &consenting.sr_number, 1, "").await?;
    assert_eq!(first_page.releases.len(), 1);
    assert_eq!(
        first_page.releases[0].requester,
        "survey_system:call-back-desk"
    );
    assert!(!first_page.next_page_token.is_empty());
    let second_page = releases(
        &auditor,
        &consenting.sr_number,
        1,
        &first_page.next_page_token,
    )
    .await?;
    assert_eq!(
        second_page
            .releases
            .iter()
            .map(|r| r.requester.as_str())
            .collect::<Vec<_>>(),
        [REQUESTER]
    );
    assert!(second_page.next_page_token.is_empty());

    // without consent: refused, nothing recorded
    let mut no_consent = complaint("Illegal Parking", "Blocked Hydrant", EMPIRE_STATE);
    no_consent.complainant.as_mut().unwrap().consent_to_contact = false;
    let declined = file(&integrator, no_consent).await?;
    let refused = survey_system
        .clone()
        .release_complainant_contact(release_of(&declined.sr_number))
        .await
        .expect_err("no consent, no contact");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(!format!("{refused:?}").contains(COMPLAINANT_PHONE));
    assert!(
        releases(&auditor, &declined.sr_number, 0, "")
            .await?
            .releases
            .is_empty()
    );

    // anonymous: there is no contact to release
    let mut anonymous = complaint("Illegal Parking", "Blocked Hydrant", EMPIRE_STATE);
    anonymous.complainant = None;
    let anonymous = file(&integrator, anonymous).await?;
    let missing = survey_system
        .clone()
        .release_complainant_contact(release_of(&anonymous.sr_number))
        .await
        .expect_err("an anonymous request has no contact");
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
    assert!(
        releases(&auditor, &anonymous.sr_number, 0, "")
            .await?
            .releases
            .is_empty()
    );

    // an unknown request, or a request that does not say why
    let unknown = survey_system
        .clone()
        .release_complainant_contact(release_of("SR-2026-9999999"))
        .await
        .expect_err("no such request");
    assert_eq!(unknown.code(), Code::NotFound);
    let mut no_purpose = release_of(&consenting.sr_number);
    no_purpose.purpose = ReleasePurpose::Unspecified as i32;
    let invalid = survey_system
        .clone()
        .release_complainant_contact(no_purpose)
        .await
        .expect_err("a purpose is required");
    assert_eq!(invalid.code(), Code::InvalidArgument);

    // the audit trail holds exactly the two releases, and cannot be edited
    let all = releases(&auditor, "", 0, "").await?;
    assert_eq!(
        all.releases
            .iter()
            .map(|r| r.sr_number.as_str())
            .collect::<Vec<_>>(),
        [consenting.sr_number.as_str(), consenting.sr_number.as_str()]
    );
    let db = suite.database().await?;
    for change in [
        "UPDATE intake.contact_releases SET requester = 'someone else'",
        "DELETE FROM intake.contact_releases",
    ] {
        let refused = sqlx::query(change).execute(&db).await;
        assert!(refused.is_err(), "{change} must be refused");
    }
    assert_eq!(releases(&auditor, "", 0, "").await?.releases.len(), 2);
    db.close().await;

    // the complainant's own access, through the app that filed the request: no
    // consent needed (the details are theirs), recorded as such
    let access = |sr_number: &str| ReleaseComplainantContactRequest {
        sr_number: sr_number.to_string(),
        purpose: ReleasePurpose::ComplainantAccess as i32,
    };
    let own = integrator
        .clone()
        .release_complainant_contact(access(&declined.sr_number))
        .await?
        .into_inner()
        .complainant
        .expect("their own details");
    assert_eq!(own.phone, COMPLAINANT_PHONE);
    assert!(
        !own.consent_to_contact,
        "they did not consent to be contacted"
    );
    let elsewhere = suite
        .intake_as(Role::Integrator, "partner-agency")
        .await?
        .release_complainant_contact(access(&declined.sr_number))
        .await
        .expect_err("another integrator's complainant");
    assert_eq!(elsewhere.code(), Code::NotFound);
    for (who, refused) in [
        (
            "the survey system asking as the complainant",
            survey_system
                .clone()
                .release_complainant_contact(access(&declined.sr_number))
                .await,
        ),
        (
            "an integrator asking for a survey",
            integrator
                .clone()
                .release_complainant_contact(release_of(&declined.sr_number))
                .await,
        ),
    ] {
        let refused = refused.expect_err(who);
        assert_eq!(refused.code(), Code::PermissionDenied, "{who}: {refused:?}");
    }
    let recorded = releases(&auditor, &declined.sr_number, 0, "")
        .await?
        .releases;
    assert_eq!(
        recorded
            .iter()
            .map(|r| (r.purpose, r.requester.as_str()))
            .collect::<Vec<_>>(),
        [(
            ReleasePurpose::ComplainantAccess as i32,
            "integrator:test-311-app"
        )]
    );

    // the log says who took which request's contact, never the contact
    let log = std::fs::read_to_string(suite.log_path(Service::Intake))?;
    assert!(
        log.lines()
            .any(|line| line.contains("complainant contact released")
                && line.contains(&consenting.sr_number)
                && line.contains(REQUESTER)),
        "the release is logged:\n{}",
        suite.log_tail(Service::Intake, 20)
    );
    for secret in [COMPLAINANT_NAME, COMPLAINANT_PHONE, COMPLAINANT_EMAIL] {
        assert!(
            !log.contains(secret),
            "intake logged a contact detail: {secret}"
        );
    }

    suite.stop().await
}
