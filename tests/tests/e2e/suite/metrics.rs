//! What an SRE scrapes: every service serves `/metrics`, and the figures
//! match what happened — calls by method and status, deliveries and their
//! outcomes per queue, dead letters, the queues' and outboxes' backlogs, the
//! database pools — with nothing personal or identifying in any label.

use std::time::Duration;

use dispatch311_domain::jobs::{kinds, queues};
use dispatch311_proto::{
    common::v1::ResolutionCode, intake::v1::CreateServiceRequestRequest, jobs::v1::ReopenRequest,
};
use dispatch311_queue::{JobQueue, QueueConfig};
use dispatch311_tests::{
    cad::{
        COMPLAINANT_EMAIL, COMPLAINANT_NAME, COMPLAINANT_PHONE, EMPIRE_STATE, acknowledge, assign,
        close, close_request, complaint, register_unit, wait_for_job,
    },
    suite::{Service, Suite, SuiteOptions, eventually},
};

/// The value of the series `name` whose labels include every one of `labels`
/// (`key="value"`), summed over the series that match.
fn value(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            (metric == name && labels.iter().all(|label| rest.contains(label)))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

#[tokio::test]
async fn each_service_counts_what_it_did_and_names_no_one() -> anyhow::Result<()> {
    let suite = Suite::start(SuiteOptions::default()).await?;
    let mut intake = suite.intake().await?;

    // three police complaints, one refused for a latitude off the planet
    let mut sr_numbers = Vec::new();
    for _ in 0..3 {
        let sr = intake
            .create_service_request(complaint(
                "Illegal Parking",
                "Blocked Hydrant",
                EMPIRE_STATE,
            ))
            .await?
            .into_inner()
            .service_request
            .expect("the request");
        sr_numbers.push(sr.sr_number);
    }
    let mut off_the_planet = complaint("Illegal Parking", "Blocked Hydrant", EMPIRE_STATE);
    off_the_planet.location.as_mut().unwrap().latitude = 123.0;
    let refused = intake
        .create_service_request(CreateServiceRequestRequest { ..off_the_planet })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);

    let creates = |code: &'static str| {
        move |text: &str| {
            value(
                text,
                "rpc_server_call_duration_seconds_count",
                &[
                    r#"rpc_method="CreateServiceRequest""#,
                    &format!(r#"rpc_grpc_status_code="{code}""#),
                ],
            )
        }
    };
    let text = suite.metrics(Service::Intake).await?;
    assert_eq!(creates("0")(&text), 3.0, "three filed:\n{text}");
    assert_eq!(creates("3")(&text), 1.0, "one INVALID_ARGUMENT");
    assert!(
        value(&text, "db_client_connection_max", &[]) > 0.0,
        "{text}"
    );
    // the pool is probed for the wait a caller would have, from the start
    assert!(
        value(&text, "db_client_connection_wait_time_seconds_count", &[]) >= 1.0,
        "{text}"
    );
    // the three filings went through intake's batch writer, however grouped
    assert_eq!(
        value(&text, "dispatch311_batch_size_sum", &[r#"batch="filings""#]),
        3.0,
        "{text}"
    );

    // routing handled three route jobs and dispatch three dispatch jobs
    let handled = |service: Service, queue: &'static str, outcome: &'static str| {
        let suite = &suite;
        async move {
            let text = suite.metrics(service).await?;
            anyhow::Ok(value(
                &text,
                "messaging_process_duration_seconds_count",
                &[
                    &format!(r#"messaging_destination_name="{queue}""#),
                    &format!(r#"outcome="{outcome}""#),
                ],
            ))
        }
    };
    eventually(
        Duration::from_secs(20),
        "dispatch to take three jobs",
        || async {
            Ok((handled(Service::Dispatch, queues::DISPATCH, "done").await? == 3.0).then_some(()))
        },
    )
    .await?;
    assert_eq!(handled(Service::Routing, queues::ROUTE, "done").await?, 3.0);
    // each request's steps: filed → routed (routing), routed → queued (dispatch)
    let routing = suite.metrics(Service::Routing).await?;
    assert_eq!(
        value(
            &routing,
            "dispatch311_request_step_duration_seconds_count",
            &[r#"step="routed""#, r#"agency="NYPD""#, r#"priority="high""#],
        ),
        3.0,
        "{routing}"
    );
    let queued = value(
        &suite.metrics(Service::Dispatch).await?,
        "dispatch311_job_step_duration_seconds_count",
        &[r#"step="queued""#, r#"priority="high""#],
    );
    assert_eq!(queued, 3.0);

    // one job assigned and acknowledged; closing another, still queued, is refused
    let dispatch = suite.dispatch().await?;
    let unit = register_unit(&dispatch, "14-ADAM-1", "14", &["O-1"], EMPIRE_STATE).await?;
    let first = wait_for_job(&dispatch, &sr_numbers[0]).await?;
    let second = wait_for_job(&dispatch, &sr_numbers[1]).await?;
    assign(&dispatch, &first.job_id, &unit.unit_id).await?;
    acknowledge(&dispatch, &first.job_id, "O-1", EMPIRE_STATE).await?;
    let refusal = close(
        &dispatch,
        close_request(
            &second.job_id,
            "O-1",
            ResolutionCode::NoEvidence,
            EMPIRE_STATE,
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(refusal.code(), tonic::Code::FailedPrecondition);
    let text = suite.metrics(Service::Dispatch).await?;
    let step = |name: &str| {
        value(
            &text,
            "dispatch311_job_step_duration_seconds_count",
            &[
                &format!(r#"step="{name}""#),
                r#"borough="#,
                r#"priority="high""#,
            ],
        )
    };
    assert_eq!(
        (step("assigned"), step("acknowledged")),
        (1.0, 1.0),
        "{text}"
    );
    assert_eq!(step("closed"), 0.0);
    assert_eq!(
        value(&text, "dispatch311_job_refusals_total", &[]),
        1.0,
        "{text}"
    );

    // a reopen request for a job dispatch never had is dead-lettered, and seen
    let queue = JobQueue::connect(QueueConfig {
        redis_url: suite.redis_url.clone(),
        key_prefix: suite.redis_prefix.clone(),
        ..QueueConfig::default()
    })
    .await?;
    let unknown = ReopenRequest {
        sr_id: uuid::Uuid::now_v7().to_string(),
        sr_number: "SR-2026-9999999".into(),
        closure_number: 1,
        reason: "nothing was done".into(),
        review: false,
    };
    queue
        .publish(queues::REOPEN, kinds::REOPEN, &unknown.sr_id, &unknown)
        .await?;
    // the queue's figures are read every few seconds
    let text = eventually(
        Duration::from_secs(20),
        "the dead letter in the gauges",
        || async {
            let text = suite.metrics(Service::Dispatch).await?;
            let dead = value(
                &text,
                "dispatch311_queue_dead_letters",
                &[r#"messaging_destination_name="reopen""#],
            );
            Ok((dead == 1.0).then_some(text))
        },
    )
    .await?;
    assert_eq!(
        handled(Service::Dispatch, queues::REOPEN, "dead_letter").await?,
        1.0
    );
    assert_eq!(
        value(
            &text,
            "dispatch311_queue_lag",
            &[r#"messaging_destination_name="dispatch""#]
        ),
        0.0,
        "every dispatch job was delivered"
    );
    assert!(text.contains("dispatch311_outbox_rows"), "{text}");
    assert!(text.contains("db_client_connection_count"), "{text}");

    // no SR number, contact detail or free text in any service's metrics
    for service in Service::ALL {
        let text = suite.metrics(service).await?;
        for secret in sr_numbers
            .iter()
            .map(String::as_str)
            .chain([
                COMPLAINANT_NAME,
                COMPLAINANT_PHONE,
                COMPLAINANT_EMAIL,
                "SR-2026-9999999",
            ])
            .chain(["still there", "nothing was done"])
        {
            assert!(
                !text.contains(secret),
                "{} exposes {secret:?}",
                service.name()
            );
        }
    }
    suite.stop().await
}
