//! `init` end to end, as a service binary runs it: a child process (this
//! binary again) configured only by OTEL_* variables logs inside a span; this
//! process runs an OTLP/gRPC receiver and checks that the span arrives on the
//! batch schedule with the service name, and that the child's JSON log line
//! carries the same trace id.
//!
//! No test harness: `init` reads the environment and installs process-wide
//! state, so the child must be a process of its own.

use std::{process::Stdio, time::Duration};

use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::any_value::Value,
};
use tokio::{net::TcpListener, sync::mpsc};
use tokio_stream::wrappers::TcpListenerStream;

const CHILD: &str = "DISPATCH311_TELEMETRY_EXPORT_CHILD";
/// How long the child stays up after its span ends. Spans exported only at
/// shutdown (the 5 s default schedule) would arrive after this.
const CHILD_LIFETIME: Duration = Duration::from_secs(4);

fn main() {
    if std::env::var_os(CHILD).is_some() {
        child();
    } else {
        parent();
        println!("test otlp_export ... ok");
    }
}

#[tokio::main]
async fn child() {
    let guard = dispatch311_telemetry::init("name-the-binary-passes").unwrap();
    tracing::info_span!("emit").in_scope(|| tracing::info!("inside the exported span"));
    tokio::time::sleep(CHILD_LIFETIME).await;
    drop(guard);
}

struct Receiver(mpsc::UnboundedSender<ExportTraceServiceRequest>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let _ = self.0.send(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tokio::main]
async fn parent() {
    let (exported, mut exports) = mpsc::unbounded_channel();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Receiver(exported)))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );

    let child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .env(CHILD, "1")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{address}"))
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("OTEL_SERVICE_NAME", "intake-under-test")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_TRACES_EXPORTER")
        .env_remove("OTEL_TRACES_SAMPLER")
        .env_remove("OTEL_RESOURCE_ATTRIBUTES")
        .env_remove("RUST_LOG")
        .env_remove("LOG_FORMAT")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    let request = tokio::time::timeout(CHILD_LIFETIME / 2, exports.recv())
        .await
        .expect("the span is exported on the 100 ms schedule, not only at shutdown")
        .unwrap();
    let resource_spans = &request.resource_spans[0];
    let service_name = resource_spans
        .resource
        .as_ref()
        .unwrap()
        .attributes
        .iter()
        .find(|attribute| attribute.key == "service.name")
        .and_then(|attribute| attribute.value.as_ref()?.value.clone());
    assert_eq!(
        service_name,
        Some(Value::StringValue("intake-under-test".into()))
    );
    let span = &resource_spans.scope_spans[0].spans[0];
    assert_eq!(span.name, "emit");
    let trace_id: String = span
        .trace_id
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();

    let output = child.wait_with_output().await.unwrap();
    assert!(output.status.success(), "child failed: {output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    let line: serde_json::Value = stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|line| line["message"] == "inside the exported span")
        .unwrap_or_else(|| panic!("no JSON log line from the span in:\n{stderr}"));
    assert_eq!(line["trace_id"], trace_id.as_str());
    assert_eq!(line["level"], "INFO");
}
