//! `dispatch311-<service> probe`: asks the service running beside it whether
//! it serves (grpc.health.v1, the whole server) and exits 0 if it does, 1 if
//! not. For container health checks in images without a shell or a probe
//! binary: `["CMD", "/usr/local/bin/dispatch311-intake", "probe"]`.
//!
//! It asks the health-only port (`DISPATCH311_HEALTH_ADDR`) when there is
//! one, else the API's listen address: with mutual TLS on, set the health
//! port, which answers in plaintext (the probe presents no certificate).

use std::time::Duration;

use tonic::transport::Endpoint;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// How long the probe waits for an answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// When the process was started as `<binary> probe`, probes and returns its
/// exit code; `None` otherwise (start the service). `listen_var` and
/// `default_listen` are the service's listen setting and its default.
pub async fn run_if_asked(listen_var: &str, default_listen: &str) -> Option<i32> {
    if std::env::args().nth(1).as_deref() != Some("probe") {
        return None;
    }
    let address = std::env::var("DISPATCH311_HEALTH_ADDR")
        .ok()
        .filter(|a| !a.trim().is_empty())
        .or_else(|| {
            std::env::var(listen_var)
                .ok()
                .filter(|a| !a.trim().is_empty())
        })
        .unwrap_or_else(|| default_listen.to_owned());
    Some(match probe(&address).await {
        Ok(()) => 0,
        Err(why) => {
            eprintln!("probe {address}: {why}");
            1
        }
    })
}

async fn probe(address: &str) -> anyhow::Result<()> {
    // a service listening on every interface answers on loopback
    let address = address
        .replace("0.0.0.0", "127.0.0.1")
        .replace("[::]", "[::1]");
    let channel = Endpoint::from_shared(format!("http://{address}"))?
        .connect_timeout(PROBE_TIMEOUT)
        .timeout(PROBE_TIMEOUT)
        .connect()
        .await?;
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await?
        .into_inner();
    anyhow::ensure!(
        answer.status == ServingStatus::Serving as i32,
        "not serving ({:?})",
        ServingStatus::try_from(answer.status).unwrap_or(ServingStatus::Unknown)
    );
    Ok(())
}
