//! Who may call what, end to end with the real binaries: every RPC of every
//! service refuses a call without a token, with an expired token, with a
//! token for another audience or from another issuer, and from each role the
//! policy table does not grant, and a refused call changes nothing; an
//! integrator sees only the requests it filed; the public sees a status by
//! SR number and nothing else; per-integrator rate limits; and in dispatch
//! nobody acts under another's name or watches another unit's assignments;
//! the issuer's keys rotate without a restart.

use std::time::Duration;

use dispatch311_auth::{
    Role,
    client::with_token,
    policy::{self, View},
    tokens::{Claims, unix_now},
};
use dispatch311_proto::{
    FILE_DESCRIPTOR_SET,
    dispatch::v1::{
        AcknowledgeJobRequest, Actor, GetJobTimelineRequest, Role as ActorRole,
        WatchAssignmentsRequest,
    },
    intake::v1::{
        GetServiceRequestRequest, ListServiceRequestsRequest, get_service_request_request::Key,
    },
};
use dispatch311_tests::{
    cad::{self, EMPIRE_STATE, complaint, register_unit},
    suite::{INTEGRATOR, Service, Suite, SuiteOptions, eventually},
};
use prost::Message as _;
use tonic::{Code, Status, transport::Channel};
use tonic_prost::ProstCodec;
use tonic_types::StatusExt as _;

/// The service of each gRPC service name.
fn service_of(name: &str) -> Service {
    match name {
        policy::INTAKE => Service::Intake,
        policy::ROUTING => Service::Routing,
        policy::DISPATCH => Service::Dispatch,
        policy::SURVEY => Service::Survey,
        other => panic!("no dispatch311 service is called {other}"),
    }
}

/// Every method of the four APIs, from the descriptors the servers are built
/// from: an RPC added without a policy rule shows up here.
fn every_method() -> Vec<(String, String)> {
    let set = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).unwrap();
    let mut methods = Vec::new();
    for file in set.file {
        let package = file.package().to_string();
        if !package.starts_with("dispatch311.") {
            continue;
        }
        for service in &file.service {
            for method in &service.method {
                methods.push((
                    format!("{package}.{}", service.name()),
                    method.name().to_string(),
                ));
            }
        }
    }
    methods
}

/// Calls `/service/method` with an empty message and `token` (if any). The
/// auth layer answers before the message is read, so one shape fits all.
async fn call(
    channel: &Channel,
    service: &str,
    method: &str,
    token: Option<&str>,
) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let path: http::uri::PathAndQuery = format!("/{service}/{method}").parse().unwrap();
    let mut request = match token {
        Some(token) => with_token((), token).unwrap(),
        None => tonic::Request::new(()),
    };
    request.set_timeout(Duration::from_secs(5));
    grpc.unary(request, path, ProstCodec::<(), ()>::default())
        .await
        .map(|_| ())
}

async fn row_counts(suite: &Suite) -> anyhow::Result<Vec<(String, i64)>> {
    let db = suite.database().await?;
    let mut counts = Vec::new();
    for table in [
        "intake.service_requests",
        "intake.contact_releases",
        "routing.route_decisions",
        "dispatch.units",
        "dispatch.jobs",
        "survey.responses",
        "dispatch.job_events",
    ] {
        let (count,): (i64,) =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                .fetch_one(&db)
                .await?;
        counts.push((table.to_string(), count));
    }
    db.close().await;
    Ok(counts)
}

#[tokio::test]
async fn every_rpc_refuses_missing_expired_foreign_and_unauthorized_tokens_and_changes_nothing()
-> anyhow::Result<()> {
    let suite = Suite::start(SuiteOptions::default()).await?;
    // something to change, so "changes nothing" means something
    let job = cad::hydrant_at(&suite, EMPIRE_STATE).await?;
    let before = row_counts(&suite).await?;

    let signer = suite.tokens.signer();
    let claims = |role: Role| Claims {
        iss: signer.issuer().into(),
        aud: signer.audience().into(),
        sub: "matrix".into(),
        role,
        iat: unix_now(),
        exp: unix_now() + 600,
    };
    let expired = signer.sign(&Claims {
        iat: unix_now() - 7_200,
        exp: unix_now() - 3_600,
        ..claims(Role::Admin)
    })?;
    let foreign_audience = signer.sign(&Claims {
        aud: "another-city-system".into(),
        ..claims(Role::Admin)
    })?;
    let foreign_issuer = signer.sign(&Claims {
        iss: "https://someone-else.example".into(),
        ..claims(Role::Admin)
    })?;

    let methods = every_method();
    // one rule per method, and no rule for a method that does not exist
    assert_eq!(methods.len(), policy::POLICY.len(), "{methods:?}");
    let mut channels = std::collections::HashMap::new();
    for service in Service::ALL {
        channels.insert(service.name(), suite.channel(service).await?);
    }
    let mut checked = 0;
    for (service, method) in &methods {
        let path = format!("/{service}/{method}");
        let rule = policy::rule_for(&path)
            .unwrap_or_else(|| panic!("{path} has no rule in the policy table"));
        let channel = &channels[service_of(service).name()];

        for (what, token) in [
            ("no token", None),
            ("an expired token", Some(expired.as_str())),
            (
                "a token for another audience",
                Some(foreign_audience.as_str()),
            ),
            ("a token from another issuer", Some(foreign_issuer.as_str())),
            ("a token that is not a JWT", Some("not-a-token")),
        ] {
            let refused = call(channel, service, method, token)
                .await
                .expect_err(&format!("{path} with {what} must be refused"));
            assert_eq!(
                refused.code(),
                Code::Unauthenticated,
                "{path} with {what}: {refused:?}"
            );
        }
        for role in Role::ALL {
            let token = suite.tokens.mint(role, "matrix");
            let answer = call(channel, service, method, Some(&token)).await;
            match rule.view_for(role) {
                None => {
                    let refused = answer.expect_err(&format!("{path} as {role}"));
                    assert_eq!(
                        refused.code(),
                        Code::PermissionDenied,
                        "{path} as {role}: {refused:?}"
                    );
                }
                // past the wall: the handler answers (an empty message is
                // usually INVALID_ARGUMENT), never an auth refusal
                Some(_) => {
                    if let Err(status) = answer {
                        assert!(
                            !matches!(
                                status.code(),
                                Code::Unauthenticated | Code::PermissionDenied
                            ),
                            "{path} as {role} is granted but refused: {status:?}"
                        );
                    }
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, methods.len() * Role::ALL.len());

    assert_eq!(
        row_counts(&suite).await?,
        before,
        "refused calls changed something"
    );
    let timeline = suite
        .dispatch()
        .await?
        .get_job_timeline(GetJobTimelineRequest {
            job_id: job.job_id.clone(),
        })
        .await?
        .into_inner()
        .events;
    assert_eq!(timeline.len(), 1, "the job was only queued: {timeline:?}");

    // health stays open for probes
    let health = tonic_health::pb::health_client::HealthClient::new(
        channels[Service::Intake.name()].clone(),
    )
    .check(tonic_health::pb::HealthCheckRequest::default())
    .await?;
    assert_eq!(health.into_inner().status, 1);

    suite.stop().await
}

#[tokio::test]
async fn an_integrator_sees_only_its_own_requests_and_the_public_only_a_status()
-> anyhow::Result<()> {
    // intake alone answers who sees what
    let suite = Suite::start(SuiteOptions::only(&[Service::Intake])).await?;
    let mut app = suite.intake().await?;
    let mut other = suite.intake_as(Role::Integrator, "partner-agency").await?;

    let filed = complaint("Illegal Parking", "Blocked Hydrant", EMPIRE_STATE);
    let mine = app
        .create_service_request(filed.clone())
        .await?
        .into_inner()
        .service_request
        .unwrap();

    // another integrator: not found by number or id, absent from its list
    for key in [
        Key::SrNumber(mine.sr_number.clone()),
        Key::SrId(mine.sr_id.clone()),
    ] {
        let refused = other
            .get_service_request(GetServiceRequestRequest { key: Some(key) })
            .await
            .expect_err("not its request");
        assert_eq!(refused.code(), Code::NotFound, "{refused:?}");
    }
    let listed = other
        .list_service_requests(ListServiceRequestsRequest::default())
        .await?
        .into_inner()
        .service_requests;
    assert!(listed.is_empty(), "{listed:?}");
    // its request ids are its own: the same id files its own request
    let its_own = other
        .create_service_request(filed.clone())
        .await?
        .into_inner()
        .service_request
        .unwrap();
    assert_ne!(its_own.sr_number, mine.sr_number);
    // while the filer repeating it gets its first request back
    let again = app
        .create_service_request(filed)
        .await?
        .into_inner()
        .service_request
        .unwrap();
    assert_eq!(again.sr_number, mine.sr_number);

    // the filer sees its request, and lists only its own
    let seen = app
        .get_service_request(GetServiceRequestRequest {
            key: Some(Key::SrNumber(mine.sr_number.clone())),
        })
        .await?
        .into_inner()
        .service_request
        .unwrap();
    assert!(seen.location.is_some() && !seen.trace_id.is_empty());
    let listed: Vec<String> = app
        .list_service_requests(ListServiceRequestsRequest::default())
        .await?
        .into_inner()
        .service_requests
        .into_iter()
        .map(|sr| sr.sr_number)
        .collect();
    assert_eq!(listed, [mine.sr_number.as_str()]);
    // a supervisor lists both
    let all = suite
        .intake_as(Role::Supervisor, "S-900")
        .await?
        .list_service_requests(ListServiceRequestsRequest::default())
        .await?
        .into_inner()
        .service_requests;
    assert_eq!(all.len(), 2);

    // the public: the status by number, without where or the trace id
    let mut public = suite.intake_as(Role::Public, "resident").await?;
    let status = public
        .get_service_request(GetServiceRequestRequest {
            key: Some(Key::SrNumber(mine.sr_number.clone())),
        })
        .await?
        .into_inner()
        .service_request
        .unwrap();
    assert_eq!(status.sr_number, mine.sr_number);
    assert_eq!(status.complaint_type, "Illegal Parking");
    assert!(!status.timeline.is_empty());
    assert_eq!(status.location, None);
    assert_eq!(status.address, None);
    assert!(status.trace_id.is_empty());
    let by_id = public
        .get_service_request(GetServiceRequestRequest {
            key: Some(Key::SrId(mine.sr_id.clone())),
        })
        .await
        .expect_err("the public asks by number");
    assert_eq!(by_id.code(), Code::InvalidArgument);
    let list = public
        .list_service_requests(ListServiceRequestsRequest::default())
        .await
        .expect_err("the public lists nothing");
    assert_eq!(list.code(), Code::PermissionDenied);
    assert_eq!(
        policy::rule_for("/dispatch311.intake.v1.IntakeService/GetServiceRequest")
            .and_then(|rule| rule.view_for(Role::Public)),
        Some(View::Public)
    );

    suite.stop().await
}

#[tokio::test]
async fn one_integrator_over_its_rate_is_told_when_to_retry_and_others_are_not_slowed()
-> anyhow::Result<()> {
    let suite = Suite::start(SuiteOptions {
        services: vec![Service::Intake],
        env: vec![
            ("DISPATCH311_RATE_LIMIT_PER_SECOND".into(), "2".into()),
            ("DISPATCH311_RATE_LIMIT_BURST".into(), "5".into()),
        ],
        ..Default::default()
    })
    .await?;
    let mut greedy = suite.intake().await?;
    let lookup = || GetServiceRequestRequest {
        key: Some(Key::SrNumber("SR-2026-0000001".into())),
    };
    for _ in 0..5 {
        // within the burst: answered (nothing there)
        let answer = greedy.get_service_request(lookup()).await.unwrap_err();
        assert_eq!(answer.code(), Code::NotFound);
    }
    let limited = greedy
        .get_service_request(lookup())
        .await
        .expect_err("over the burst");
    assert_eq!(limited.code(), Code::ResourceExhausted, "{limited:?}");
    let retry = limited
        .get_details_retry_info()
        .and_then(|info| info.retry_delay)
        .expect("RESOURCE_EXHAUSTED says when to retry");
    assert!(
        retry > Duration::ZERO && retry <= Duration::from_millis(500),
        "{retry:?}"
    );
    // a create over the limit is refused and files nothing
    let refused = greedy
        .create_service_request(complaint(
            "Illegal Parking",
            "Blocked Hydrant",
            EMPIRE_STATE,
        ))
        .await
        .expect_err("still over the limit");
    assert_eq!(refused.code(), Code::ResourceExhausted);

    // another integrator and the staff are not slowed by it
    let mut polite = suite.intake_as(Role::Integrator, "partner-agency").await?;
    assert_eq!(
        polite
            .get_service_request(lookup())
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    let mut supervisor = suite.intake_as(Role::Supervisor, "S-900").await?;
    for _ in 0..20 {
        supervisor
            .list_service_requests(ListServiceRequestsRequest::default())
            .await?;
    }

    // after the delay it was given, the greedy one is served again
    tokio::time::sleep(retry + Duration::from_millis(50)).await;
    let filed = greedy
        .create_service_request(complaint(
            "Illegal Parking",
            "Blocked Hydrant",
            EMPIRE_STATE,
        ))
        .await?
        .into_inner()
        .service_request
        .unwrap();
    let db = suite.database().await?;
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM intake.service_requests")
        .fetch_one(&db)
        .await?;
    assert_eq!(
        count, 1,
        "only the admitted create filed: {}",
        filed.sr_number
    );
    assert_eq!(
        sqlx::query_as::<_, (String,)>("SELECT filed_by FROM intake.service_requests")
            .fetch_one(&db)
            .await?
            .0,
        INTEGRATOR
    );
    db.close().await;

    suite.stop().await
}

#[tokio::test]
async fn in_dispatch_the_token_is_the_actor_and_nobody_acts_under_anothers_name()
-> anyhow::Result<()> {
    let suite = Suite::start(SuiteOptions::default()).await?;
    let dispatch = suite.dispatch().await?;
    let unit = register_unit(&dispatch, "14-ADAM-1", "14", &["O-1", "O-2"], EMPIRE_STATE).await?;
    let job = cad::hydrant_at(&suite, EMPIRE_STATE).await?;
    cad::assign(&dispatch, &job.job_id, &unit.unit_id).await?;
    let before = cad::snapshot(&dispatch, &job.job_id).await?;

    let raw = suite.channel(Service::Dispatch).await?;
    let mut client =
        dispatch311_proto::dispatch::v1::dispatch_service_client::DispatchServiceClient::new(raw);

    // a device watches its own unit's assignments only
    let watch = || WatchAssignmentsRequest {
        unit_id: unit.unit_id.clone(),
        after_sequence: 0,
    };
    let someone_elses = client
        .watch_assignments(with_token(
            watch(),
            &suite.tokens.mint(Role::Officer, "O-9"),
        )?)
        .await
        .expect_err("not this officer's unit");
    assert_eq!(someone_elses.code(), Code::PermissionDenied);
    let mut own = client
        .watch_assignments(with_token(
            watch(),
            &suite.tokens.mint(Role::Officer, "O-2"),
        )?)
        .await?
        .into_inner();
    let current = tokio::time::timeout(Duration::from_secs(10), own.message())
        .await??
        .expect("the current assignment");
    assert_eq!(current.job.map(|j| j.job_id), Some(job.job_id.clone()));
    drop(own);
    let acknowledge = |actor: Option<Actor>| AcknowledgeJobRequest {
        actor,
        job_id: job.job_id.clone(),
        position: Some(EMPIRE_STATE),
    };
    // O-2's device naming O-1 as the actor
    let impersonation = client
        .acknowledge_job(with_token(
            acknowledge(Some(Actor {
                id: "O-1".into(),
                role: ActorRole::Officer as i32,
            })),
            &suite.tokens.mint(Role::Officer, "O-2"),
        )?)
        .await
        .expect_err("an officer cannot act as another");
    assert_eq!(impersonation.code(), Code::PermissionDenied);
    // an officer claiming to be a supervisor
    let promotion = client
        .acknowledge_job(with_token(
            acknowledge(Some(Actor {
                id: "O-2".into(),
                role: ActorRole::Supervisor as i32,
            })),
            &suite.tokens.mint(Role::Officer, "O-2"),
        )?)
        .await
        .expect_err("the role is the token's");
    assert_eq!(promotion.code(), Code::PermissionDenied);
    assert_eq!(cad::snapshot(&dispatch, &job.job_id).await?, before);

    // without an actor, the token's caller acts, and the log says so
    let acknowledged = client
        .acknowledge_job(with_token(
            acknowledge(None),
            &suite.tokens.mint(Role::Officer, "O-1"),
        )?)
        .await?
        .into_inner()
        .job
        .unwrap();
    assert_eq!(acknowledged.job_id, job.job_id);
    let last = cad::timeline(&dispatch, &job.job_id)
        .await?
        .pop()
        .expect("events");
    assert_eq!(
        last.actor,
        Some(Actor {
            id: "O-1".into(),
            role: ActorRole::Officer as i32,
        })
    );

    suite.stop().await
}

/// A JWKS document with the keys of all `sets`.
fn merged_jwks(sets: &[&str]) -> String {
    let keys: Vec<serde_json::Value> = sets
        .iter()
        .flat_map(|set| {
            serde_json::from_str::<serde_json::Value>(set).unwrap()["keys"]
                .as_array()
                .unwrap()
                .clone()
        })
        .collect();
    serde_json::json!({ "keys": keys }).to_string()
}

#[tokio::test]
async fn the_issuers_key_rotation_takes_effect_without_a_restart_and_a_broken_key_set_locks_nobody_out()
-> anyhow::Result<()> {
    let suite = Suite::start(SuiteOptions {
        env: vec![("DISPATCH311_AUTH_JWKS_RELOAD_SECS".into(), "0.2".into())],
        ..Default::default()
    })
    .await?;
    let pids: Vec<u32> = Service::ALL.iter().filter_map(|s| suite.pid(*s)).collect();
    let old_jwks = std::fs::read_to_string(suite.jwks_path())?;
    let rotated = dispatch311_auth::KeyPair::generate("rotated")?;
    let new_signer = rotated.signer(
        dispatch311_auth::DEFAULT_ISSUER,
        dispatch311_auth::DEFAULT_AUDIENCE,
    )?;
    let old_token = suite.tokens.mint(Role::Integrator, INTEGRATOR);
    let new_token = new_signer.mint(INTEGRATOR, Role::Integrator, Duration::from_secs(600))?;
    let lookup = GetServiceRequestRequest {
        key: Some(Key::SrNumber("SR-2026-0000001".into())),
    };
    // what intake and routing answer a call with `token`: NOT_FOUND / OK once
    // let in, UNAUTHENTICATED when not
    let answers = |token: String| {
        let suite = &suite;
        let lookup = lookup.clone();
        async move {
            let mut intake =
                dispatch311_proto::intake::v1::intake_service_client::IntakeServiceClient::new(
                    dispatch311_auth::BearerToken::new(&token)?
                        .wrap(suite.channel(Service::Intake).await?),
                );
            let mut routing =
                dispatch311_proto::routing::v1::routing_service_client::RoutingServiceClient::new(
                    dispatch311_auth::BearerToken::new(&token)?
                        .wrap(suite.channel(Service::Routing).await?),
                );
            let intake_code = match intake.get_service_request(lookup).await {
                Ok(_) => Code::Ok,
                Err(status) => status.code(),
            };
            let routing_code = match routing
                .list_routing_rules(
                    dispatch311_proto::routing::v1::ListRoutingRulesRequest::default(),
                )
                .await
            {
                Ok(_) => Code::Ok,
                Err(status) => status.code(),
            };
            anyhow::Ok((intake_code, routing_code))
        }
    };
    assert_eq!(
        answers(old_token.clone()).await?,
        (Code::NotFound, Code::Ok)
    );
    assert_eq!(
        answers(new_token.clone()).await?,
        (Code::Unauthenticated, Code::Unauthenticated),
        "a key the services do not know yet"
    );

    // the issuer publishes its new key next to the old one, then drops the old one
    std::fs::write(
        suite.jwks_path(),
        merged_jwks(&[&old_jwks, &rotated.jwks_json]),
    )?;
    eventually(Duration::from_secs(10), "the new key taken up", || {
        let answer = answers(new_token.clone());
        async move { Ok((answer.await? == (Code::NotFound, Code::Ok)).then_some(())) }
    })
    .await?;
    assert_eq!(
        answers(old_token.clone()).await?,
        (Code::NotFound, Code::Ok)
    );
    std::fs::write(suite.jwks_path(), &rotated.jwks_json)?;
    eventually(Duration::from_secs(10), "the old key dropped", || {
        let answer = answers(old_token.clone());
        async move {
            Ok((answer.await? == (Code::Unauthenticated, Code::Unauthenticated)).then_some(()))
        }
    })
    .await?;

    // a half-written key set is refused and the keys in use stay
    std::fs::write(suite.jwks_path(), "{\"keys\": [")?;
    eventually(
        Duration::from_secs(10),
        "the broken key set noticed",
        || {
            let noticed = suite
                .log_tail(Service::Intake, 50)
                .contains("the changed JWKS file is not usable");
            async move { Ok(noticed.then_some(())) }
        },
    )
    .await?;
    assert_eq!(
        answers(new_token.clone()).await?,
        (Code::NotFound, Code::Ok)
    );

    // all without a restart
    let after: Vec<u32> = Service::ALL.iter().filter_map(|s| suite.pid(*s)).collect();
    assert_eq!(pids, after);
    suite.stop().await
}
