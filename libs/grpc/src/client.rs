//! Channels for calling another dispatch311 service (or one under test) with
//! the caller's trace context attached, so the callee's span joins the trace.

use std::time::Duration;

use anyhow::Context as _;
use dispatch311_telemetry::grpc::{TracedChannel, traced};
use tonic::transport::Endpoint;

use crate::tls::TlsConfig;

/// How long establishing a connection may take before a call fails UNAVAILABLE.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a call may wait for its response headers (the whole call for
/// unary RPCs; streams are not cut). `tonic::Request::set_timeout` sets a
/// shorter deadline that the server is told about too.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A channel to `endpoint` (`http://host:port`, or `host:port`) that connects
/// on first use and reconnects after failures, so a service can start before
/// the services it calls. With `tls` the endpoint must be `https://` (or
/// have no scheme) and the connection is mutual TLS. Must be called inside
/// the Tokio runtime.
///
/// ```no_run
/// # async fn example() -> anyhow::Result<()> {
/// use dispatch311_proto::intake::v1::intake_service_client::IntakeServiceClient;
///
/// let channel = dispatch311_grpc::client::connect_lazy("http://127.0.0.1:50051", None)?;
/// let client: IntakeServiceClient<dispatch311_telemetry::grpc::TracedChannel> =
///     IntakeServiceClient::new(channel);
/// # Ok(())
/// # }
/// ```
pub fn connect_lazy(endpoint: &str, tls: Option<&TlsConfig>) -> anyhow::Result<TracedChannel> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let uri = if endpoint.contains("://") {
        endpoint.to_owned()
    } else {
        format!("{scheme}://{endpoint}")
    };
    anyhow::ensure!(
        uri.starts_with(&format!("{scheme}://")),
        "grpc endpoint {endpoint:?} must be {scheme}:// when mutual TLS is {}",
        if tls.is_some() { "on" } else { "off" }
    );
    let mut endpoint = Endpoint::from_shared(uri)
        .with_context(|| format!("invalid grpc endpoint {endpoint:?}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT);
    if let Some(tls) = tls {
        endpoint = endpoint
            .tls_config(tls.client())
            .context("the TLS certificate, key or CA (DISPATCH311_TLS_*) is not usable")?;
    }
    Ok(traced(endpoint.connect_lazy()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepts_an_address_with_or_without_scheme_and_rejects_garbage() {
        assert!(connect_lazy("http://127.0.0.1:50051", None).is_ok());
        assert!(connect_lazy("localhost:50051", None).is_ok());
        assert!(connect_lazy("https://localhost:50051", None).is_err());
        let error = connect_lazy("not a uri", None).unwrap_err();
        assert!(
            error.to_string().contains("invalid grpc endpoint"),
            "{error}"
        );
    }
}
