//! Telemetry for every dispatch311 binary: one call to [`init`] at start-up
//! gives JSON logs that carry trace ids, OpenTelemetry traces (and metrics,
//! see [`metrics`]) exported over OTLP/gRPC when a collector is configured, and W3C trace-context
//! propagation through gRPC calls ([`grpc`]) and job envelopes
//! ([`propagation`]), so one request is one trace across every service.
//!
//! Configuration is the standard environment:
//!
//! | variable | effect |
//! |---|---|
//! | `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES` | resource; the service name defaults to the binary's own |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` | export spans over OTLP/gRPC; without either, nothing is exported (spans still get real trace ids) |
//! | `OTEL_EXPORTER_OTLP_*` (headers, timeout, compression) | read by the exporter |
//! | `OTEL_TRACES_EXPORTER=none`, `OTEL_METRICS_EXPORTER=none` | no export of spans, or of metrics, even with an endpoint |
//! | `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG` | sampler; default parent-based always-on |
//! | `OTEL_BSP_*` (e.g. `OTEL_BSP_SCHEDULE_DELAY=100`) | batch span processor |
//! | `RUST_LOG` | log and span filter; default `info,h2=warn,tower=warn,hyper=warn,sqlx=warn` |
//! | `LOG_FORMAT` | `json` (default) or `text` for people reading a terminal |
//!
//! `RUST_LOG` filters spans as well as log lines: a span below the filter
//! level is never created, so it is neither exported nor propagated.

pub mod attributes;
pub mod grpc;
mod logs;
pub mod metrics;
pub mod propagation;

use std::{io::IsTerminal, time::Duration};

use anyhow::Context as _;
use opentelemetry::{Key, global, trace::TracerProvider as _};
use opentelemetry_otlp::SpanExporter;
use opentelemetry_sdk::{
    Resource,
    propagation::TraceContextPropagator,
    resource::{EnvResourceDetector, ResourceDetector},
    trace::SdkTracerProvider,
};
use tracing_subscriber::{EnvFilter, Layer as _, layer::SubscriberExt, util::SubscriberInitExt};

/// The telemetry variables, for the end of every binary's `--help`: the
/// OpenTelemetry SDK and the log filter read them themselves.
pub const ENVIRONMENT_HELP: &str = "\
Telemetry (standard variables):
  RUST_LOG                      log filter [default: info,h2=warn,tower=warn,hyper=warn,sqlx=warn]
  LOG_FORMAT                    json or text [default: json]
  OTEL_EXPORTER_OTLP_ENDPOINT   export spans over OTLP/gRPC (unset: no export)
  OTEL_SERVICE_NAME             service name in traces [default: the binary's name]
  OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG, OTEL_BSP_*,
  OTEL_EXPORTER_OTLP_* (headers, timeout, compression), OTEL_TRACES_EXPORTER=none,
  OTEL_METRICS_EXPORTER=none (metrics go over OTLP too when an endpoint is set)";

/// Log filter when `RUST_LOG` is unset: our own code at info, chatty
/// transport and database crates only when something is wrong.
pub const DEFAULT_LOG_FILTER: &str = "info,h2=warn,tower=warn,hyper=warn,sqlx=warn";

/// Which spans are traced and exported, independent of `RUST_LOG`: the
/// project's and the libraries' info-level spans, not their internals.
pub const SPAN_FILTER: &str = "info,h2=off,tower=off,hyper=off,sqlx=off";

/// Whether the spans inside a hop are worth making: only when spans leave
/// the process. Without an exporter the request, queue and RPC spans are
/// still made (they carry the trace ids the timelines keep and propagate),
/// but the per-statement, per-round-trip and batch spans would cost the
/// services their time (a fifth of `make bench`'s creates/s) for nobody.
static DETAIL_SPANS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether to make the detail spans (SQL statements, Redis round trips,
/// batch waits, relays): spans are exported. Unit tests turn them on with
/// [`enable_detail_spans`].
pub fn detail_spans() -> bool {
    DETAIL_SPANS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Makes the detail spans whatever the exporter (tests reading spans in process).
pub fn enable_detail_spans() {
    DETAIL_SPANS.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// How long dropping [`TelemetryGuard`] may wait for the last spans to leave.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Installs logging and tracing for the whole process. Call it once, first
/// thing inside the Tokio runtime (the OTLP exporter needs the runtime), and
/// keep the guard until the end of `main`.
///
/// A second call in the same process (tests) installs nothing and returns a
/// guard that does nothing.
///
/// ```no_run
/// #[tokio::main]
/// async fn main() -> anyhow::Result<()> {
///     let _telemetry = dispatch311_telemetry::init("intake")?;
///     tracing::info!("started");
///     Ok(())
/// }
/// ```
pub fn init(service_name: &'static str) -> anyhow::Result<TelemetryGuard> {
    global::set_text_map_propagator(TraceContextPropagator::new());

    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => {
            EnvFilter::try_new(&directives).context("invalid RUST_LOG")?
        }
        _ => EnvFilter::new(DEFAULT_LOG_FILTER),
    };
    let text_logs = match std::env::var("LOG_FORMAT").as_deref() {
        Err(_) | Ok("" | "json") => false,
        Ok("text") => true,
        Ok(other) => anyhow::bail!("LOG_FORMAT must be json or text, not {other:?}"),
    };

    let (provider, meters) = providers(service_name)?;
    // RUST_LOG filters log lines only: spans are made whatever the log level,
    // or a quiet service (RUST_LOG=warn) would stop tracing and propagating
    let otel_layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("dispatch311"))
        .with_filter(EnvFilter::new(SPAN_FILTER));
    let json_logs = (!text_logs).then(|| logs::json_layer(std::io::stderr));
    let text_logs = text_logs.then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
    });
    let installed = tracing_subscriber::registry()
        .with(otel_layer)
        .with(logs::OtelIdsLayer::default().with_filter(EnvFilter::new(SPAN_FILTER)))
        .with(json_logs.with_filter(filter.clone()))
        .with(text_logs.with_filter(filter))
        .try_init();
    if installed.is_err() {
        // Someone (an earlier call, a test harness) owns the global subscriber.
        let _ = provider.shutdown();
        let _ = meters.shutdown();
        return Ok(TelemetryGuard {
            provider: None,
            meters: None,
        });
    }
    global::set_tracer_provider(provider.clone());
    global::set_meter_provider(meters.clone());
    Ok(TelemetryGuard {
        provider: Some(provider),
        meters: Some(meters),
    })
}

/// Exports the spans still queued and shuts the tracer provider down when
/// dropped. Drop it at the end of `main`, while the runtime still runs.
#[must_use = "dropping the guard stops span export"]
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
    meters: Option<opentelemetry_sdk::metrics::SdkMeterProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(meters) = self.meters.take()
            && let Err(error) = meters.shutdown_with_timeout(SHUTDOWN_TIMEOUT)
        {
            tracing::debug!(%error, "exporting the last metrics failed");
        }
        let Some(provider) = self.provider.take() else {
            return;
        };
        // An unreachable collector is not worth failing shutdown over.
        if let Err(error) = provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
            tracing::debug!(%error, "exporting the last spans failed");
        }
    }
}

/// The tracer and meter providers, with the same resource.
fn providers(
    default_service_name: &str,
) -> anyhow::Result<(
    SdkTracerProvider,
    opentelemetry_sdk::metrics::SdkMeterProvider,
)> {
    let env = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|value| !value.trim().is_empty())
    };
    let resource = resource(default_service_name, env);
    DETAIL_SPANS.store(exports_spans(env), std::sync::atomic::Ordering::Relaxed);
    let meters = metrics::meter_provider(resource.clone(), env)?;
    Ok((tracer_provider(resource, env)?, meters))
}

/// The service's resource: its name (see [`service_name`]).
fn resource(default_service_name: &str, env: impl Fn(&str) -> Option<String>) -> Resource {
    let resource_attributes = EnvResourceDetector::new().detect();
    let service_name = service_name(
        env("OTEL_SERVICE_NAME"),
        resource_attributes
            .get(&Key::new("service.name"))
            .map(|name| name.to_string()),
        default_service_name,
    );
    Resource::builder().with_service_name(service_name).build()
}

fn tracer_provider(
    resource: Resource,
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<SdkTracerProvider> {
    // The builder reads OTEL_TRACES_SAMPLER; its default is parent-based always-on.
    let builder = SdkTracerProvider::builder().with_resource(resource);
    if !exports_spans(env) {
        return Ok(builder.build());
    }
    anyhow::ensure!(
        tokio::runtime::Handle::try_current().is_ok(),
        "telemetry must be initialised inside the tokio runtime to export spans"
    );
    // Endpoint, headers, timeout and compression come from OTEL_EXPORTER_OTLP_*.
    let exporter = SpanExporter::builder()
        .with_tonic()
        .build()
        .context("building the otlp span exporter")?;
    // The batch processor reads OTEL_BSP_* (schedule delay, queue and batch sizes).
    Ok(builder.with_batch_exporter(exporter).build())
}

/// OTEL_SERVICE_NAME wins over a `service.name` in OTEL_RESOURCE_ATTRIBUTES,
/// which wins over the name the binary passes.
fn service_name(
    from_service_name_env: Option<String>,
    from_resource_attributes: Option<String>,
    default: &str,
) -> String {
    from_service_name_env
        .or(from_resource_attributes)
        .unwrap_or_else(|| default.to_owned())
}

/// Spans are exported when an OTLP endpoint is configured and export is not
/// switched off.
fn exports_spans(env: impl Fn(&str) -> Option<String>) -> bool {
    let has_endpoint = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some()
        || env("OTEL_EXPORTER_OTLP_ENDPOINT").is_some();
    let switched_off = env("OTEL_TRACES_EXPORTER").is_some_and(|exporter| exporter == "none");
    has_endpoint && !switched_off
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    #[test]
    fn spans_are_exported_only_when_an_endpoint_is_configured() {
        assert!(!exports_spans(env_of(&[])));
        assert!(exports_spans(env_of(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://collector:4317"
        )])));
        assert!(exports_spans(env_of(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://collector:4317"
        )])));
        assert!(!exports_spans(env_of(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ])));
    }

    #[test]
    fn the_service_name_from_the_environment_wins_over_the_binarys() {
        assert_eq!(service_name(None, None, "intake"), "intake");
        assert_eq!(
            service_name(None, Some("from-attrs".into()), "intake"),
            "from-attrs"
        );
        assert_eq!(
            service_name(Some("from-env".into()), Some("from-attrs".into()), "intake"),
            "from-env"
        );
    }
}
