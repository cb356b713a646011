//! Two replicas of every service at once, as a city runs them: the
//! consumers of each service share their group, the outbox relays of both
//! replicas publish, and clients reach either replica. Requests filed through
//! both intakes, worked through both dispatches and read through both survey
//! APIs go from filing to closure and survey with every step landing once:
//! unique SR numbers, one job each, one timeline entry per transition, one
//! closure in the feed.

use std::collections::{BTreeMap, BTreeSet};

use dispatch311_auth::Role;
use dispatch311_proto::{
    common::v1::{ResolutionCode, ServiceRequestStatus},
    dispatch::v1::EventType,
    intake::v1::intake_service_client::IntakeServiceClient,
    survey::v1::survey_service_client::SurveyServiceClient,
};
use dispatch311_tests::{
    cad::{EMPIRE_STATE, offset, register_unit, timeline, wait_for_job, wait_for_public_status},
    suite::{INTEGRATOR, SURVEY_SYSTEM, Service, Suite, SuiteOptions},
    survey::{Complainant, Poller, close_at_scene, closure_of, complaint_from},
};

const REQUESTS: usize = 12;

#[tokio::test]
async fn two_replicas_of_every_service_carry_each_request_to_its_survey_once() -> anyhow::Result<()>
{
    let suite = Suite::start(SuiteOptions {
        // closing within seconds of assignment is what this test does
        env: vec![
            ("DISPATCH311_FAST_CLOSURE_SECS".into(), "0".into()),
            ("DISPATCH311_MIN_ON_SCENE_SECS".into(), "0".into()),
        ],
        ..SuiteOptions::default()
    })
    .await?;
    let mut replicas = BTreeMap::new();
    for service in [
        Service::Intake,
        Service::Routing,
        Service::Dispatch,
        Service::Survey,
    ] {
        replicas.insert(service.name(), suite.spawn_replica(service).await?);
    }
    let intakes = [
        suite.intake().await?,
        IntakeServiceClient::new(
            replicas["intake"]
                .authenticated(Role::Integrator, INTEGRATOR)
                .await?,
        ),
    ];
    let dispatches = [
        suite.dispatch().await?,
        replicas["dispatch"].dispatch().await?,
    ];
    let surveys = [
        suite.survey().await?,
        SurveyServiceClient::new(
            replicas["survey"]
                .authenticated(Role::SurveySystem, SURVEY_SYSTEM)
                .await?,
        ),
    ];
    let unit = register_unit(
        &dispatches[0],
        "14-REPLICA-1",
        "14",
        &["O-14-R"],
        EMPIRE_STATE,
    )
    .await?;

    // filed through either intake: every SR number unique
    let mut filed = Vec::new();
    for n in 0..REQUESTS {
        let request = complaint_from(
            Complainant::Consenting,
            "Illegal Parking",
            "Blocked Hydrant",
            offset(EMPIRE_STATE, 10.0 * n as f64, 0.0),
            "MANHATTAN",
        );
        let sr = intakes[n % 2]
            .clone()
            .create_service_request(request)
            .await?
            .into_inner()
            .service_request
            .expect("intake answers with the request");
        filed.push(sr.sr_number);
    }
    assert_eq!(filed.iter().collect::<BTreeSet<_>>().len(), REQUESTS);

    // each worked to closure through either dispatch: one job per request
    let mut jobs = BTreeSet::new();
    for (n, sr_number) in filed.iter().enumerate() {
        let dispatch = &dispatches[n % 2];
        let job = wait_for_job(&dispatches[(n + 1) % 2], sr_number).await?;
        assert!(
            jobs.insert(job.job_id.clone()),
            "{sr_number}: a job of its own"
        );
        close_at_scene(dispatch, &job, &unit, "O-14-R", ResolutionCode::ActionTaken).await?;
        let events = timeline(dispatch, &job.job_id).await?;
        for step in [EventType::Queued, EventType::Assigned, EventType::Closed] {
            assert_eq!(
                events.iter().filter(|e| e.r#type == step as i32).count(),
                1,
                "{sr_number}: one {step:?} event"
            );
        }
    }

    // intake shows each closed, with each transition once on its timeline
    for (n, sr_number) in filed.iter().enumerate() {
        let sr = wait_for_public_status(&intakes[n % 2], sr_number, ServiceRequestStatus::Closed)
            .await?;
        let mut seen = BTreeMap::new();
        for entry in &sr.timeline {
            *seen.entry(entry.status).or_insert(0) += 1;
        }
        for status in [
            ServiceRequestStatus::Received,
            ServiceRequestStatus::Routed,
            ServiceRequestStatus::Queued,
            ServiceRequestStatus::Assigned,
            ServiceRequestStatus::Acknowledged,
            ServiceRequestStatus::EnRoute,
            ServiceRequestStatus::OnScene,
            ServiceRequestStatus::Closed,
        ] {
            assert_eq!(
                seen.get(&(status as i32)).copied().unwrap_or(0),
                1,
                "{sr_number}: one {status:?} entry in {:?}",
                sr.timeline
            );
        }
    }

    // the survey feed, read through either replica, has each closure once
    for survey in &surveys {
        let mut poller = Poller::new(survey.clone(), 5);
        for sr_number in &filed {
            poller.wait_for(sr_number, closure_of(sr_number, 1)).await?;
        }
        for sr_number in &filed {
            assert_eq!(
                poller
                    .seen
                    .iter()
                    .filter(|c| &c.sr_number == sr_number)
                    .count(),
                1,
                "{sr_number}: one closure in the feed"
            );
        }
    }
    drop(replicas);
    suite.stop().await
}
