//! End to end with the real service binaries: a complaint travels intake →
//! routing → dispatch, a non-police complaint is referred, any complaint type
//! is accepted (an old name routes as the current one, an unknown one is held
//! for 311 triage with the reason), bad input is refused and changes nothing,
//! a repeated request id creates nothing.

use std::time::Duration;

use dispatch311_proto::{
    common::v1::{Channel, GeoPoint, Priority, ServiceRequestStatus},
    dispatch::v1::{GetJobRequest, JobState, ListQueueRequest, get_job_request},
    intake::v1::{
        Complainant, CreateServiceRequestRequest, GetServiceRequestRequest,
        ListServiceRequestsRequest, ServiceRequest, get_service_request_request,
    },
    routing::v1::{ExplainRouteRequest, ListRoutingRulesRequest, RouteOutcome},
};
use dispatch311_tests::{
    nyc311,
    suite::{Suite, SuiteOptions, eventually},
};
use tonic_types::StatusExt;

/// The Empire State Building, 350 5th Avenue, in Midtown South (precinct 14).
const EMPIRE_STATE: GeoPoint = GeoPoint {
    latitude: 40.748_44,
    longitude: -73.985_66,
};

fn blocked_hydrant(request_id: &str) -> CreateServiceRequestRequest {
    CreateServiceRequestRequest {
        request_id: request_id.into(),
        complaint_type: "Illegal Parking".into(),
        descriptor: "Blocked Hydrant".into(),
        location: Some(EMPIRE_STATE),
        description: "grey van on the hydrant since 8am".into(),
        channel: Channel::MobileApp as i32,
        complainant: Some(Complainant {
            name: "Dana Example".into(),
            phone: "+1 212 555 0100".into(),
            email: "dana@example.org".into(),
            consent_to_contact: true,
        }),
        ..Default::default()
    }
}

async fn wait_for_status(
    suite: &Suite,
    sr_number: &str,
    status: ServiceRequestStatus,
) -> anyhow::Result<ServiceRequest> {
    let intake = suite.intake().await?;
    eventually(
        Duration::from_secs(20),
        &format!("{sr_number} to become {status:?}"),
        || {
            let mut intake = intake.clone();
            let key = get_service_request_request::Key::SrNumber(sr_number.to_string());
            async move {
                let sr = intake
                    .get_service_request(GetServiceRequestRequest { key: Some(key) })
                    .await?
                    .into_inner()
                    .service_request
                    .expect("a request");
                Ok((sr.status == status as i32).then_some(sr))
            }
        },
    )
    .await
}

#[tokio::test]
async fn a_midtown_complaint_reaches_its_precinct_queue_and_a_non_police_one_is_referred()
-> anyhow::Result<()> {
    let suite = Suite::start(SuiteOptions::default()).await?;
    let mut intake = suite.intake().await?;

    let created = intake
        .create_service_request(blocked_hydrant("flow-1"))
        .await?
        .into_inner()
        .service_request
        .unwrap();
    assert!(
        created.sr_number.starts_with("SR-"),
        "human-readable number: {}",
        created.sr_number
    );
    assert_eq!(created.status, ServiceRequestStatus::Received as i32);
    assert_eq!(created.trace_id.len(), 32, "the request keeps its trace id");

    let queued = wait_for_status(&suite, &created.sr_number, ServiceRequestStatus::Queued).await?;
    assert_eq!(queued.agency, "NYPD");
    assert_eq!(
        queued.precinct, "14",
        "the Empire State Building is in Midtown South"
    );
    assert_eq!(queued.priority, Priority::High as i32);
    assert!(queued.sla_due_at.is_some(), "an SLA due time is set");
    let steps: Vec<i32> = queued.timeline.iter().map(|t| t.status).collect();
    assert_eq!(
        steps,
        [
            ServiceRequestStatus::Received as i32,
            ServiceRequestStatus::Routed as i32,
            ServiceRequestStatus::Queued as i32
        ],
        "timeline: {:?}",
        queued.timeline
    );

    let mut dispatch = suite.dispatch().await?;
    let queue = dispatch
        .list_queue(ListQueueRequest {
            precinct: "14".into(),
            page_size: 10,
            page_token: String::new(),
        })
        .await?
        .into_inner();
    assert_eq!(queue.total_queued, 1);
    let job = &queue.jobs[0];
    assert_eq!(job.sr_number, created.sr_number);
    assert_eq!(job.state, JobState::Queued as i32);
    assert_eq!(job.descriptor, "Blocked Hydrant");
    let by_number = dispatch
        .get_job(GetJobRequest {
            key: Some(get_job_request::Key::SrNumber(created.sr_number.clone())),
        })
        .await?
        .into_inner();
    assert_eq!(by_number.job.unwrap().job_id, job.job_id);

    let street_light = CreateServiceRequestRequest {
        request_id: "flow-2".into(),
        complaint_type: "Street Light Condition".into(),
        descriptor: "Street Light Out".into(),
        location: Some(EMPIRE_STATE),
        channel: Channel::Web as i32,
        ..Default::default()
    };
    let light = intake
        .create_service_request(street_light)
        .await?
        .into_inner()
        .service_request
        .unwrap();
    let referred =
        wait_for_status(&suite, &light.sr_number, ServiceRequestStatus::Referred).await?;
    assert_eq!(
        referred.agency, "DOT",
        "street lights are the transportation department's"
    );
    let queue = dispatch
        .list_queue(ListQueueRequest {
            precinct: "14".into(),
            page_size: 10,
            page_token: String::new(),
        })
        .await?
        .into_inner();
    assert_eq!(
        queue.total_queued, 1,
        "a referred request never reaches a police queue"
    );

    suite.stop().await
}

#[tokio::test]
async fn bad_input_is_refused_with_field_violations_and_changes_nothing() -> anyhow::Result<()> {
    let suite = Suite::start(SuiteOptions::default()).await?;
    let mut intake = suite.intake().await?;

    let mut bad = blocked_hydrant("bad-1");
    bad.location = Some(GeoPoint {
        latitude: 39.95,
        longitude: -75.16,
    });
    // any real name is taken (routing decides); one that is no name is not
    bad.complaint_type = "*** ***".into();
    let status = intake.create_service_request(bad).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    let fields: Vec<String> = status
        .get_details_bad_request()
        .unwrap()
        .field_violations
        .into_iter()
        .map(|f| f.field)
        .collect();
    assert_eq!(fields, ["complaint_type", "location"]);

    let listed = intake
        .list_service_requests(ListServiceRequestsRequest::default())
        .await?
        .into_inner();
    assert!(listed.service_requests.is_empty(), "nothing was stored");

    let missing = intake
        .get_service_request(GetServiceRequestRequest {
            key: Some(get_service_request_request::Key::SrNumber(
                "SR-2026-9999999".into(),
            )),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    let malformed = intake
        .get_service_request(GetServiceRequestRequest {
            key: Some(get_service_request_request::Key::SrNumber("12345".into())),
        })
        .await
        .unwrap_err();
    assert_eq!(malformed.code(), tonic::Code::InvalidArgument);

    suite.stop().await
}

#[tokio::test]
async fn the_same_request_id_twice_returns_the_first_request_and_creates_nothing()
-> anyhow::Result<()> {
    let suite = Suite::start(SuiteOptions::default()).await?;
    let mut intake = suite.intake().await?;

    let first = intake
        .create_service_request(blocked_hydrant("same-key"))
        .await?
        .into_inner()
        .service_request
        .unwrap();
    let again = intake
        .create_service_request(blocked_hydrant("same-key"))
        .await?
        .into_inner()
        .service_request
        .unwrap();
    assert_eq!(again.sr_number, first.sr_number);
    assert_eq!(again.sr_id, first.sr_id);

    // concurrent repeats of one key also resolve to one request
    let mut calls = Vec::new();
    for _ in 0..8 {
        let mut client = intake.clone();
        calls.push(tokio::spawn(async move {
            client
                .create_service_request(blocked_hydrant("racing-key"))
                .await
        }));
    }
    let mut numbers = std::collections::BTreeSet::new();
    for call in calls {
        numbers.insert(call.await??.into_inner().service_request.unwrap().sr_number);
    }
    assert_eq!(numbers.len(), 1, "one request for one key: {numbers:?}");

    let listed = intake
        .list_service_requests(ListServiceRequestsRequest::default())
        .await?
        .into_inner();
    assert_eq!(listed.service_requests.len(), 2);

    // both reach dispatch once
    let first_queued =
        wait_for_status(&suite, &first.sr_number, ServiceRequestStatus::Queued).await?;
    assert_eq!(first_queued.timeline.len(), 3);
    let pool = suite.database().await?;
    eventually(
        Duration::from_secs(20),
        "a job for each of the two requests",
        || {
            let pool = pool.clone();
            async move {
                let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM dispatch.jobs")
                    .fetch_one(&pool)
                    .await?;
                Ok((jobs == 2).then_some(()))
            }
        },
    )
    .await?;

    suite.stop().await
}

#[tokio::test]
async fn lists_page_through_every_request_once() -> anyhow::Result<()> {
    let suite = Suite::start(SuiteOptions::default()).await?;
    let mut intake = suite.intake().await?;
    for i in 0..7 {
        intake
            .create_service_request(blocked_hydrant(&format!("page-{i}")))
            .await?;
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = intake
            .list_service_requests(ListServiceRequestsRequest {
                page_size: 3,
                page_token: token,
                ..Default::default()
            })
            .await?
            .into_inner();
        assert!(page.service_requests.len() <= 3);
        seen.extend(page.service_requests.into_iter().map(|sr| sr.sr_number));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (7, 7), "{seen:?}");

    let bad_token = intake
        .list_service_requests(ListServiceRequestsRequest {
            page_token: "garbage".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_token.code(), tonic::Code::InvalidArgument);
    suite.stop().await
}

#[tokio::test]
async fn every_service_stops_cleanly_on_sigterm_with_nothing_left_unfinished() -> anyhow::Result<()>
{
    use dispatch311_tests::suite::Service;
    let mut suite = Suite::start(SuiteOptions::default()).await?;
    let mut intake = suite.intake().await?;
    let mut numbers = Vec::new();
    for i in 0..20 {
        let sr = intake
            .create_service_request(blocked_hydrant(&format!("term-{i}")))
            .await?
            .into_inner();
        numbers.push(sr.service_request.unwrap().sr_number);
    }
    // stop routing while the batch is being routed: what it took, it finishes or leaves unacknowledged
    assert!(
        suite.terminate(Service::Routing).await?,
        "routing exits with success on SIGTERM"
    );
    suite.restart(Service::Routing).await?;
    for number in &numbers {
        wait_for_status(&suite, number, ServiceRequestStatus::Queued).await?;
    }
    for service in Service::ALL {
        assert!(
            suite.terminate(service).await?,
            "{} exits with success on SIGTERM",
            service.name()
        );
    }
    suite.stop().await
}

#[tokio::test]
async fn responders_read_the_description_without_the_complainants_name_phone_or_email()
-> anyhow::Result<()> {
    let suite = Suite::start(SuiteOptions::default()).await?;
    let mut intake = suite.intake().await?;
    let mut request = blocked_hydrant("redact-1");
    request.description =
        "Dana Example here, call 212-555-0100 or dana@example.org: grey van on the hydrant since 8am".into();
    let created = intake
        .create_service_request(request)
        .await?
        .into_inner()
        .service_request
        .unwrap();
    wait_for_status(&suite, &created.sr_number, ServiceRequestStatus::Queued).await?;

    let mut dispatch = suite.dispatch().await?;
    let job = dispatch
        .get_job(GetJobRequest {
            key: Some(get_job_request::Key::SrNumber(created.sr_number.clone())),
        })
        .await?
        .into_inner()
        .job
        .unwrap();
    assert!(
        job.description
            .contains("grey van on the hydrant since 8am"),
        "{:?}",
        job.description
    );
    for secret in ["Dana", "Example", "555-0100", "dana@example.org"] {
        assert!(
            !job.description.contains(secret),
            "{secret} reached responders: {:?}",
            job.description
        );
    }
    // the original stays in intake, and only there, sealed (the canary test
    // in contact_encryption.rs opens nothing; here: it is kept, not in plain text)
    let pool = suite.database().await?;
    let (redacted, sealed): (String, Vec<u8>) = sqlx::query_as(
        "SELECT s.description_for_responders, d.sealed FROM intake.service_requests s \
         JOIN intake.sealed_descriptions d USING (sr_id) WHERE s.sr_number = $1",
    )
    .bind(&created.sr_number)
    .fetch_one(&pool)
    .await?;
    assert_eq!(redacted, job.description);
    assert!(sealed.len() > "dana@example.org".len());
    assert!(!String::from_utf8_lossy(&sealed).contains("dana@example.org"));
    let leaked: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM routing.route_decisions r WHERE r::text LIKE '%dana@example.org%') + \
                (SELECT count(*) FROM dispatch.jobs j WHERE j::text LIKE '%dana@example.org%')",
    )
    .fetch_one(&pool)
    .await?;
    assert_eq!(leaked, 0);
    suite.stop().await
}

async fn file(
    intake: &mut dispatch311_proto::intake::v1::intake_service_client::IntakeServiceClient<
        dispatch311_tests::suite::AuthChannel,
    >,
    request_id: &str,
    complaint_type: &str,
    location: Option<GeoPoint>,
) -> anyhow::Result<ServiceRequest> {
    Ok(intake
        .create_service_request(CreateServiceRequestRequest {
            request_id: request_id.into(),
            complaint_type: complaint_type.into(),
            location,
            channel: Channel::Phone as i32,
            ..Default::default()
        })
        .await?
        .into_inner()
        .service_request
        .expect("the filed request"))
}

fn last_message(sr: &ServiceRequest) -> &str {
    sr.timeline
        .last()
        .map_or("", |entry| entry.message.as_str())
}

#[tokio::test]
async fn any_complaint_type_is_accepted_and_routed_by_rule_alias_or_triage() -> anyhow::Result<()> {
    let suite = Suite::start(SuiteOptions::default()).await?;
    let mut intake = suite.intake().await?;

    // an old name of a police type reaches the precinct as the current type
    let old_name = file(
        &mut intake,
        "types-1",
        "homeless  encampment",
        Some(EMPIRE_STATE),
    )
    .await?;
    assert_eq!(
        old_name.complaint_type, "homeless encampment",
        "kept as filed"
    );
    let queued = wait_for_status(&suite, &old_name.sr_number, ServiceRequestStatus::Queued).await?;
    assert_eq!(
        (queued.agency.as_str(), queued.precinct.as_str()),
        ("NYPD", "14")
    );
    let job = suite
        .dispatch()
        .await?
        .get_job(GetJobRequest {
            key: Some(get_job_request::Key::SrNumber(old_name.sr_number.clone())),
        })
        .await?
        .into_inner()
        .job
        .unwrap();
    assert_eq!(
        job.complaint_type, "Encampment",
        "the precinct sees today's name"
    );

    // a type no rule knows: accepted, then held for 311 triage saying why
    let unknown = file(&mut intake, "types-2", "Loose Tiger", Some(EMPIRE_STATE)).await?;
    let triaged = wait_for_status(
        &suite,
        &unknown.sr_number,
        ServiceRequestStatus::NeedsTriage,
    )
    .await?;
    assert!(
        last_message(&triaged).contains("no routing rule for complaint type 'Loose Tiger'"),
        "{:?}",
        triaged.timeline
    );

    // a request that needs no place: a property-tax question goes to Finance
    let tax = file(&mut intake, "types-3", "DOF Property - Owner Issue", None).await?;
    let referred = wait_for_status(&suite, &tax.sr_number, ServiceRequestStatus::Referred).await?;
    assert_eq!(referred.agency, "DOF");

    // police work without any place: taken, and held for 311 to ask where
    let nowhere = file(&mut intake, "types-4", "Illegal Parking", None).await?;
    let held = wait_for_status(
        &suite,
        &nowhere.sr_number,
        ServiceRequestStatus::NeedsTriage,
    )
    .await?;
    assert!(
        last_message(&held).contains("no location given"),
        "{:?}",
        held.timeline
    );

    // a point in the harbour is in no precinct
    let harbour = GeoPoint {
        latitude: 40.67,
        longitude: -74.05,
    };
    let at_sea = file(&mut intake, "types-5", "Illegal Parking", Some(harbour)).await?;
    let held =
        wait_for_status(&suite, &at_sea.sr_number, ServiceRequestStatus::NeedsTriage).await?;
    assert!(
        last_message(&held).contains("outside every precinct"),
        "{:?}",
        held.timeline
    );

    // every complaint type of the real data files is taken
    let mut types = std::collections::BTreeSet::new();
    for file in [nyc311::HALF_DAY_FILE, nyc311::SMOKE_FILE] {
        let path = nyc311::data_dir().join(file);
        if path.exists() {
            types.extend(
                nyc311::read_requests(&path)?
                    .into_iter()
                    .map(|r| r.complaint_type),
            );
        }
    }
    for (n, complaint_type) in types.iter().enumerate() {
        let filed = file(
            &mut intake,
            &format!("types-real-{n}"),
            complaint_type,
            Some(EMPIRE_STATE),
        )
        .await;
        assert!(filed.is_ok(), "{complaint_type:?} refused: {filed:?}");
    }

    // routing explains the same: an alias, an unknown type; it refuses what intake refuses
    let mut routing = suite.routing().await?;
    let explain = |complaint_type: &str| ExplainRouteRequest {
        complaint_type: complaint_type.into(),
        location: Some(EMPIRE_STATE),
        ..Default::default()
    };
    let alias = routing
        .explain_route(explain("Derelict Vehicle"))
        .await?
        .into_inner()
        .decision
        .unwrap();
    assert_eq!(alias.complaint_type, "Abandoned Vehicle");
    assert!(alias.police_matter);
    assert!(
        alias.explanation[0].contains("another name of 'Abandoned Vehicle'"),
        "{:?}",
        alias.explanation
    );
    let unknown = routing
        .explain_route(explain("Loose Tiger"))
        .await?
        .into_inner()
        .decision
        .unwrap();
    assert_eq!(unknown.outcome(), RouteOutcome::Triage);
    for refused in ["x".repeat(1_000_000), "***".to_string()] {
        let status = routing.explain_route(explain(&refused)).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
    }
    let rules = routing
        .list_routing_rules(ListRoutingRulesRequest {
            page_size: 1_000,
            page_token: String::new(),
        })
        .await?
        .into_inner()
        .rules;
    let abandoned = rules
        .iter()
        .find(|rule| rule.complaint_type == "Abandoned Vehicle")
        .unwrap();
    assert!(abandoned.aliases.contains(&"Derelict Vehicle".to_string()));

    suite.stop().await
}
