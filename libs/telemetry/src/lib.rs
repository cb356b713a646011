//! Telemetry for every dispatch311 binary: tracing subscriber with JSON logs,
//! OpenTelemetry export, and trace-context propagation.

pub mod attributes;
pub mod propagation;
