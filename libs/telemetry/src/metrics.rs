//! Metrics: every instrument goes through the OpenTelemetry SDK the traces
//! use. [`init`](crate::init) installs a meter provider whose Prometheus
//! reader fills one registry, rendered by [`render`] for the `/metrics`
//! endpoint (served by `dispatch311_grpc::metrics`), and which also exports
//! over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `…_METRICS_ENDPOINT`) is
//! set and `OTEL_METRICS_EXPORTER` is not `none`.
//!
//! Names and units follow the OpenTelemetry semantic conventions (the
//! Prometheus names add the unit and `_total`, e.g.
//! `rpc_server_call_duration_seconds`). Labels are bounded sets (method,
//! status code, queue, state…): never an SR number, an id, free text or
//! anything personal.

use std::sync::OnceLock;

use anyhow::Context as _;
use opentelemetry::{global, metrics::Meter};
use opentelemetry_sdk::{Resource, metrics::SdkMeterProvider};
use prometheus::{Encoder as _, TextEncoder};

static REGISTRY: OnceLock<prometheus::Registry> = OnceLock::new();

/// The meter every dispatch311 instrument is made from (a no-op one until
/// `init` ran, e.g. in unit tests).
pub fn meter() -> Meter {
    global::meter("dispatch311")
}

/// The meter provider of the process: the Prometheus registry, and OTLP
/// export when configured.
pub(crate) fn meter_provider(
    resource: Resource,
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<SdkMeterProvider> {
    // a second `init` (tests) gets a registry of its own: its provider is
    // shut down at once, and the first one's collector stays registered
    let registry = match REGISTRY.get() {
        Some(_) => prometheus::Registry::new(),
        None => REGISTRY.get_or_init(prometheus::Registry::new).clone(),
    };
    let prometheus = opentelemetry_prometheus::exporter()
        .with_registry(registry)
        .without_target_info()
        .scope_info_enabled(false)
        .build()
        .context("building the prometheus metrics reader")?;
    let mut builder = SdkMeterProvider::builder()
        .with_resource(resource)
        .with_reader(prometheus);
    if exports_metrics(env) && tokio::runtime::Handle::try_current().is_ok() {
        let otlp = opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .build()
            .context("building the otlp metric exporter")?;
        builder = builder.with_periodic_exporter(otlp);
    }
    Ok(builder.build())
}

/// Metrics are exported over OTLP when an endpoint is configured and export
/// is not switched off.
fn exports_metrics(env: impl Fn(&str) -> Option<String>) -> bool {
    let has_endpoint = env("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT").is_some()
        || env("OTEL_EXPORTER_OTLP_ENDPOINT").is_some();
    let switched_off = env("OTEL_METRICS_EXPORTER").is_some_and(|exporter| exporter == "none");
    has_endpoint && !switched_off
}

/// Every metric of the process in Prometheus' text format (version 0.0.4),
/// as of now; empty before `init`.
pub fn render() -> String {
    let Some(registry) = REGISTRY.get() else {
        return String::new();
    };
    let mut text = Vec::new();
    if let Err(error) = TextEncoder::new().encode(&registry.gather(), &mut text) {
        tracing::warn!(%error, "encoding the metrics failed");
    }
    String::from_utf8(text).unwrap_or_default()
}

/// The content type of [`render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otlp_metrics_only_with_an_endpoint_and_not_switched_off() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| value.to_string())
            }
        };
        assert!(!exports_metrics(env(&[])));
        assert!(exports_metrics(env(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://c:4317"
        )])));
        assert!(!exports_metrics(env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ("OTEL_METRICS_EXPORTER", "none"),
        ])));
    }
}
