//! One trace per request: the spans of intake's CreateServiceRequest, the
//! queue hops and the routing and dispatch consumers, exported by the real
//! processes to a real OTLP receiver, share one trace id — the one intake
//! keeps on the request.

use std::time::Duration;

use dispatch311_proto::{
    common::v1::{Channel, GeoPoint, ServiceRequestStatus},
    intake::v1::{
        CreateServiceRequestRequest, GetServiceRequestRequest, get_service_request_request,
    },
};
use dispatch311_tests::{
    otlp::{OtlpReceiver, ReceivedSpan},
    suite::{Suite, SuiteOptions, eventually},
};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

#[tokio::test]
async fn a_request_is_one_trace_across_every_service_and_queue_hop() -> anyhow::Result<()> {
    let receiver = OtlpReceiver::start().await?;
    let suite = Suite::start(SuiteOptions {
        otlp_endpoint: Some(receiver.endpoint()),
        ..SuiteOptions::default()
    })
    .await?;
    let mut intake = suite.intake().await?;

    let created = intake
        .create_service_request(CreateServiceRequestRequest {
            request_id: "trace-1".into(),
            complaint_type: "Blocked Driveway".into(),
            descriptor: "No Access".into(),
            location: Some(GeoPoint {
                latitude: 40.7484,
                longitude: -73.9857,
            }),
            description: "driveway blocked by a red sedan".into(),
            channel: Channel::Phone as i32,
            ..Default::default()
        })
        .await?
        .into_inner()
        .service_request
        .unwrap();
    let trace_id = created.trace_id.clone();

    eventually(Duration::from_secs(20), "the request to be queued", || {
        let mut intake = intake.clone();
        let key = get_service_request_request::Key::SrNumber(created.sr_number.clone());
        async move {
            let sr = intake
                .get_service_request(GetServiceRequestRequest { key: Some(key) })
                .await?
                .into_inner();
            Ok(
                (sr.service_request.unwrap().status == ServiceRequestStatus::Queued as i32)
                    .then_some(()),
            )
        }
    })
    .await?;

    let in_trace = |spans: &[ReceivedSpan],
                    service: &str,
                    name: &str,
                    kind: SpanKind|
     -> Option<ReceivedSpan> {
        spans
            .iter()
            .find(|s| {
                s.trace_id == trace_id
                    && s.service.ends_with(service)
                    && s.name == name
                    && s.kind == kind
            })
            .cloned()
    };
    let spans = receiver
        .wait_for(Duration::from_secs(20), |spans| {
            let publish_status = in_trace(spans, "dispatch", "publish status", SpanKind::Producer)?;
            // intake consumes two status updates (routed, queued): take dispatch's
            let process_status = spans
                .iter()
                .find(|s| s.name == "process status" && s.parent_span_id == publish_status.span_id)?
                .clone();
            Some((
                in_trace(
                    spans,
                    "intake",
                    "dispatch311.intake.v1.IntakeService/CreateServiceRequest",
                    SpanKind::Server,
                )?,
                in_trace(spans, "intake", "publish route", SpanKind::Producer)?,
                in_trace(spans, "routing", "process route", SpanKind::Consumer)?,
                in_trace(spans, "routing", "publish dispatch", SpanKind::Producer)?,
                in_trace(spans, "dispatch", "process dispatch", SpanKind::Consumer)?,
                publish_status,
                process_status,
            ))
        })
        .await?;
    let (
        create,
        publish_route,
        process_route,
        publish_dispatch,
        process_dispatch,
        publish_status,
        process_status,
    ) = spans;

    // each hop is the child of the one before it
    assert_eq!(
        publish_route.parent_span_id, create.span_id,
        "intake publishes within CreateServiceRequest"
    );
    assert_eq!(
        process_route.parent_span_id, publish_route.span_id,
        "routing consumes what intake published"
    );
    assert_eq!(publish_dispatch.parent_span_id, process_route.span_id);
    assert_eq!(
        process_dispatch.parent_span_id, publish_dispatch.span_id,
        "dispatch consumes what routing published"
    );
    assert_eq!(publish_status.parent_span_id, process_dispatch.span_id);
    assert_eq!(
        (process_status.trace_id.as_str(), process_status.kind),
        (trace_id.as_str(), SpanKind::Consumer)
    );

    // queue hops carry messaging attributes and the time spent waiting
    assert_eq!(
        process_route
            .attributes
            .get("messaging.destination.name")
            .map(String::as_str),
        Some("route")
    );
    assert!(
        process_route
            .attributes
            .contains_key("dispatch311.queue.wait_ms"),
        "{:?}",
        process_route.attributes
    );
    assert_eq!(
        process_dispatch.attributes.get("dispatch311.sr.number"),
        Some(&created.sr_number)
    );

    // the complainant's own words stay out of every span
    assert!(receiver.spans().iter().all(|s| {
        s.attributes
            .values()
            .all(|v| !v.contains("driveway blocked by"))
    }));

    suite.stop().await
}

#[tokio::test]
async fn quiet_logs_do_not_turn_tracing_off() -> anyhow::Result<()> {
    let receiver = OtlpReceiver::start().await?;
    let suite = Suite::start(SuiteOptions {
        otlp_endpoint: Some(receiver.endpoint()),
        env: vec![("RUST_LOG".into(), "warn".into())],
        ..SuiteOptions::default()
    })
    .await?;
    let created = suite
        .intake()
        .await?
        .create_service_request(CreateServiceRequestRequest {
            request_id: "quiet-1".into(),
            complaint_type: "Noise - Street/Sidewalk".into(),
            location: Some(GeoPoint {
                latitude: 40.7484,
                longitude: -73.9857,
            }),
            channel: Channel::Web as i32,
            ..Default::default()
        })
        .await?
        .into_inner()
        .service_request
        .unwrap();
    assert_eq!(
        created.trace_id.len(),
        32,
        "a trace id with RUST_LOG=warn: {:?}",
        created.trace_id
    );
    assert_ne!(created.trace_id, "0".repeat(32));
    let trace_id = created.trace_id.clone();
    receiver
        .wait_for(Duration::from_secs(20), |spans| {
            spans
                .iter()
                .find(|s| s.trace_id == trace_id && s.name == "process route")
                .cloned()
        })
        .await?;
    suite.stop().await
}
