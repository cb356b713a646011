//! Channels for calling another dispatch311 service (or one under test) with
//! the caller's trace context attached, so the callee's span joins the trace.

use std::time::Duration;

use anyhow::Context as _;
use dispatch311_telemetry::grpc::{TraceContextInterceptor, TracedChannel};
use tonic::{service::interceptor::InterceptedService, transport::Endpoint};

/// How long establishing a connection may take before a call fails UNAVAILABLE.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a call may wait for its response headers (the whole call for
/// unary RPCs; streams are not cut). `tonic::Request::set_timeout` sets a
/// shorter deadline that the server is told about too.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A channel to `endpoint` (`http://host:port`, or `host:port`) that connects
/// on first use and reconnects after failures, so a service can start before
/// the services it calls. Must be called inside the Tokio runtime.
///
/// ```no_run
/// # async fn example() -> anyhow::Result<()> {
/// use dispatch311_proto::intake::v1::intake_service_client::IntakeServiceClient;
///
/// let channel = dispatch311_grpc::client::connect_lazy("http://127.0.0.1:50051")?;
/// let client: IntakeServiceClient<dispatch311_telemetry::grpc::TracedChannel> =
///     IntakeServiceClient::new(channel);
/// # Ok(())
/// # }
/// ```
pub fn connect_lazy(endpoint: &str) -> anyhow::Result<TracedChannel> {
    let uri = if endpoint.contains("://") {
        endpoint.to_owned()
    } else {
        format!("http://{endpoint}")
    };
    let channel = Endpoint::from_shared(uri)
        .with_context(|| format!("invalid grpc endpoint {endpoint:?}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .connect_lazy();
    Ok(InterceptedService::new(channel, TraceContextInterceptor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepts_an_address_with_or_without_scheme_and_rejects_garbage() {
        assert!(connect_lazy("http://127.0.0.1:50051").is_ok());
        assert!(connect_lazy("localhost:50051").is_ok());
        let error = connect_lazy("not a uri").unwrap_err();
        assert!(
            error.to_string().contains("invalid grpc endpoint"),
            "{error}"
        );
    }
}
