//! Mutual TLS, end to end with the real binaries: with `DISPATCH311_TLS_*`
//! set, every service serves only TLS and asks callers for a certificate of
//! the trusted CA, and survey reaches intake the same way. A whole request
//! (filed, routed, dispatched, closed, its survey contact released) still
//! works; callers without a certificate, with one from another CA, or
//! speaking plain HTTP/2 are turned away before any RPC runs, even with a
//! valid token, and change nothing; and a client does not trust a server
//! whose certificate another CA signed.

use dispatch311_auth::Role;
use dispatch311_grpc::tls::{TlsConfig, dev::DevCertificates};
use dispatch311_proto::{
    common::v1::{ResolutionCode, ServiceRequestStatus},
    intake::v1::intake_service_client::IntakeServiceClient,
    survey::v1::GetSurveyContactRequest,
};
use dispatch311_tests::{
    cad::{
        COMPLAINANT_EMAIL, COMPLAINANT_NAME, EMPIRE_STATE, complaint, register_unit, wait_for_job,
        wait_for_sr_status,
    },
    suite::{INTEGRATOR, Service, Suite, SuiteOptions},
    survey::{Poller, close_at_scene, closure_of},
};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

async fn stored_requests(suite: &Suite) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM intake.service_requests")
            .fetch_one(&suite.database().await?)
            .await?,
    )
}

/// Files a complaint through `endpoint` with the suite integrator's valid
/// token; the error if the call fails.
async fn file_through(suite: &Suite, endpoint: Endpoint) -> Result<(), tonic::Status> {
    let channel = endpoint.connect_lazy();
    let token = suite
        .tokens
        .bearer(Role::Integrator, INTEGRATOR)
        .expect("the suite mints tokens");
    IntakeServiceClient::new(token.wrap(channel))
        .create_service_request(complaint(
            "Illegal Parking",
            "Blocked Hydrant",
            EMPIRE_STATE,
        ))
        .await
        .map(|_| ())
}

/// The connection failed before any RPC ran: the token was valid, so a
/// refusal by the auth layer (UNAUTHENTICATED, PERMISSION_DENIED) would
/// mean TLS let the caller in.
fn turned_away(result: Result<(), tonic::Status>, who: &str) {
    let status = match result {
        Ok(()) => panic!("{who} got in"),
        Err(status) => status,
    };
    assert!(
        !matches!(
            status.code(),
            tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
        ),
        "{who} reached the service: {status:?}"
    );
    let transport = std::error::Error::source(&status)
        .is_some_and(|source| source.is::<tonic::transport::Error>());
    assert!(transport, "{who}: not a connection failure: {status:?}");
}

#[tokio::test]
async fn with_mutual_tls_a_request_goes_all_the_way_and_callers_without_a_trusted_certificate_are_turned_away()
-> anyhow::Result<()> {
    let suite = Suite::start(SuiteOptions {
        mutual_tls: true,
        ..SuiteOptions::default()
    })
    .await?;
    assert!(suite.url(Service::Intake).starts_with("https://"));

    // the whole path, survey calling intake over mutual TLS for the contact
    let mut intake = suite.intake().await?;
    let dispatch = suite.dispatch().await?;
    let mut survey = suite.survey().await?;
    let filed = intake
        .create_service_request(complaint(
            "Illegal Parking",
            "Blocked Hydrant",
            EMPIRE_STATE,
        ))
        .await?
        .into_inner()
        .service_request
        .unwrap();
    let job = wait_for_job(&dispatch, &filed.sr_number).await?;
    let unit = register_unit(&dispatch, "14-TLS-1", "14", &["O-14-7"], EMPIRE_STATE).await?;
    close_at_scene(&dispatch, &job, &unit, "O-14-7", ResolutionCode::NoEvidence).await?;
    wait_for_sr_status(&suite, &filed.sr_number, ServiceRequestStatus::Closed).await?;
    let closure = Poller::new(survey.clone(), 100)
        .wait_for(&filed.sr_number, closure_of(&filed.sr_number, 1))
        .await?;
    let contact = survey
        .get_survey_contact(GetSurveyContactRequest {
            survey_token: closure.survey_token,
        })
        .await?
        .into_inner();
    assert_eq!(contact.name, COMPLAINANT_NAME);
    assert_eq!(contact.email, COMPLAINANT_EMAIL);

    // callers the services do not let in, each with a valid token
    let (ours, _) = suite.tls.as_ref().expect("the suite runs mutual TLS");
    let ca = Certificate::from_pem(&ours.ca_pem);
    let intake_url = suite.url(Service::Intake);
    let https = || Endpoint::from_shared(intake_url.clone()).unwrap();
    let before = stored_requests(&suite).await?;

    let no_certificate = https().tls_config(ClientTlsConfig::new().ca_certificate(ca.clone()))?;
    turned_away(
        file_through(&suite, no_certificate).await,
        "a caller without a certificate",
    );

    let strangers = DevCertificates::generate("someone else's CA")?;
    let foreign_certificate = https().tls_config(
        TlsConfig::from_pem(&strangers.cert_pem, &strangers.key_pem, &ours.ca_pem).client(),
    )?;
    turned_away(
        file_through(&suite, foreign_certificate).await,
        "a caller with another CA's certificate",
    );

    let plain = Endpoint::from_shared(intake_url.replacen("https://", "http://", 1))?;
    turned_away(file_through(&suite, plain).await, "a plain HTTP/2 caller");

    assert_eq!(
        stored_requests(&suite).await?,
        before,
        "a refused caller stored something"
    );

    // and our certificate does not make a server trusted that another CA signed
    let trusting_strangers = https().tls_config(
        TlsConfig::from_pem(&ours.cert_pem, &ours.key_pem, &strangers.ca_pem).client(),
    )?;
    turned_away(
        file_through(&suite, trusting_strangers).await,
        "a client that trusts only another CA",
    );

    // the suite's own certificate still works after all that
    let trusted = https().tls_config(suite.client_tls().unwrap().client())?;
    file_through(&suite, trusted).await?;
    assert_eq!(stored_requests(&suite).await?, before + 1);

    suite.stop().await
}

/// The kubelet probes gRPC health without a client certificate: with
/// `DISPATCH311_HEALTH_ADDR` a service answers health alone, in plaintext,
/// there, while its API stays mutual TLS only.
#[tokio::test]
async fn probes_reach_health_in_plaintext_on_its_own_port_and_nothing_else() -> anyhow::Result<()> {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let health_port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
        probe.local_addr()?.port()
    };
    let suite = Suite::start(SuiteOptions {
        mutual_tls: true,
        env: vec![(
            "DISPATCH311_HEALTH_ADDR".into(),
            format!("127.0.0.1:{health_port}"),
        )],
        ..SuiteOptions::only(&[Service::Intake])
    })
    .await?;
    let plaintext = Endpoint::from_shared(format!("http://127.0.0.1:{health_port}"))?
        .connect()
        .await?;
    let answer = HealthClient::new(plaintext.clone())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await?
        .into_inner();
    assert_eq!(answer.status, ServingStatus::Serving as i32);
    // health is all there is on that port
    let refused = IntakeServiceClient::new(plaintext)
        .get_service_request(dispatch311_proto::intake::v1::GetServiceRequestRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unimplemented, "{refused:?}");
    // and the API's own port still turns plaintext away
    let api = Endpoint::from_shared(suite.url(Service::Intake).replace("https://", "http://"))?;
    assert!(file_through(&suite, api).await.is_err());

    // a container's health check: the binary's `probe` asks that port
    let probe = |health_addr: String| -> anyhow::Result<std::process::ExitStatus> {
        Ok(
            std::process::Command::new(dispatch311_tests::suite::binary_named("intake")?)
                .arg("probe")
                .env_clear()
                .env("DISPATCH311_HEALTH_ADDR", health_addr)
                .stderr(std::process::Stdio::null())
                .status()?,
        )
    };
    assert!(probe(format!("127.0.0.1:{health_port}"))?.success());
    let nothing_there = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    assert_eq!(probe(nothing_there.to_string())?.code(), Some(1));
    suite.stop().await
}
