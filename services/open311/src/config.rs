//! The gateway's configuration: flags or environment variables, typed and
//! checked at start (`dispatch311-open311 --help` lists them all).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser as _;
use dispatch311_auth::{SignerArgs, TokenSigner};
use dispatch311_grpc::{metrics::MetricsArgs, tls::TlsArgs};

use crate::keys::ApiKeys;

/// Every setting of the gateway.
#[derive(Debug, clap::Parser)]
#[command(
    name = "dispatch311-open311",
    version,
    about = "dispatch311's Open311 GeoReport v2 gateway: 311 apps and CRMs file and follow requests over the standard REST API",
    after_help = dispatch311_telemetry::ENVIRONMENT_HELP
)]
pub struct GatewayArgs {
    /// Where the HTTP server listens (put TLS in front of it); port 0 picks a free port.
    #[arg(
        long = "listen",
        env = "DISPATCH311_OPEN311_ADDR",
        value_name = "DISPATCH311_OPEN311_ADDR",
        default_value = "0.0.0.0:8312"
    )]
    pub listen_addr: SocketAddr,
    /// Intake's gRPC API (filing, reading requests, photos).
    #[arg(
        long = "intake-url",
        env = "DISPATCH311_INTAKE_URL",
        value_name = "DISPATCH311_INTAKE_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub intake_url: String,
    /// Routing's gRPC API (the services: its rules).
    #[arg(
        long = "routing-url",
        env = "DISPATCH311_ROUTING_URL",
        value_name = "DISPATCH311_ROUTING_URL",
        default_value = "http://127.0.0.1:50052"
    )]
    pub routing_url: String,
    /// The API keys: one line per key, `<sha256 of the key, hex> <integrator
    /// id> [survey-consent]`. Only hashes are kept; `survey-consent` says the
    /// integrator's users agreed to a satisfaction survey when they give a
    /// phone or an e-mail. Re-read on every change of the file.
    #[arg(
        long = "api-keys",
        env = "DISPATCH311_OPEN311_API_KEYS",
        value_name = "DISPATCH311_OPEN311_API_KEYS"
    )]
    pub api_keys: PathBuf,
    /// The jurisdiction this gateway serves, e.g. `nyc.gov`; a request that
    /// names another gets 404. Unset: `jurisdiction_id` is ignored.
    #[arg(
        long = "jurisdiction",
        env = "DISPATCH311_OPEN311_JURISDICTION",
        value_name = "DISPATCH311_OPEN311_JURISDICTION"
    )]
    pub jurisdiction: Option<String>,
    /// The gateway's address as clients reach it, for the discovery document.
    #[arg(
        long = "public-url",
        env = "DISPATCH311_OPEN311_PUBLIC_URL",
        value_name = "DISPATCH311_OPEN311_PUBLIC_URL",
        default_value = "http://127.0.0.1:8312"
    )]
    pub public_url: String,
    /// Who to contact about the API, for the discovery document.
    #[arg(
        long = "contact",
        env = "DISPATCH311_OPEN311_CONTACT",
        value_name = "DISPATCH311_OPEN311_CONTACT",
        default_value = "311 integrations team"
    )]
    pub contact: String,
    /// Where to ask for an API key, for the discovery document.
    #[arg(
        long = "key-service",
        env = "DISPATCH311_OPEN311_KEY_SERVICE",
        value_name = "DISPATCH311_OPEN311_KEY_SERVICE",
        default_value = "Ask the city's 311 integrations team for an api_key"
    )]
    pub key_service: String,
    /// The gateway signs a short-lived token for the integrator behind each
    /// key (DISPATCH311_AUTH_SIGNING_KEY, a key of the gateway's own whose
    /// public half is in the services' JWKS).
    #[command(flatten)]
    pub signer: SignerArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub metrics: MetricsArgs,
}

/// The checked settings.
pub struct GatewayConfig {
    pub listen_addr: SocketAddr,
    pub intake_url: String,
    pub routing_url: String,
    pub api_keys: ApiKeys,
    pub jurisdiction: Option<String>,
    pub public_url: String,
    pub contact: String,
    pub key_service: String,
    pub signer: TokenSigner,
    pub tls: Option<dispatch311_grpc::tls::TlsConfig>,
    pub metrics_addr: Option<SocketAddr>,
}

impl std::fmt::Debug for GatewayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayConfig")
            .field("listen_addr", &self.listen_addr)
            .field("intake_url", &self.intake_url)
            .field("routing_url", &self.routing_url)
            .field("jurisdiction", &self.jurisdiction)
            .finish_non_exhaustive()
    }
}

impl GatewayConfig {
    pub fn load() -> anyhow::Result<Self> {
        Self::from_args(GatewayArgs::parse())
    }

    pub fn from_args(args: GatewayArgs) -> anyhow::Result<Self> {
        let api_keys = ApiKeys::load(&args.api_keys)?;
        let signer = args.signer.signer().context(
            "the gateway signs its integrators' tokens: set DISPATCH311_AUTH_SIGNING_KEY \
             (and DISPATCH311_AUTH_KEY_ID) to a key whose public half the services trust",
        )?;
        Ok(Self {
            listen_addr: args.listen_addr,
            intake_url: args.intake_url,
            routing_url: args.routing_url,
            api_keys,
            jurisdiction: args
                .jurisdiction
                .map(|j| j.trim().to_string())
                .filter(|j| !j.is_empty()),
            public_url: args.public_url.trim_end_matches('/').to_string(),
            contact: args.contact,
            key_service: args.key_service,
            signer,
            tls: args.tls.config()?,
            metrics_addr: args.metrics.metrics_addr,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_flags_are_consistent() {
        GatewayArgs::command().debug_assert();
    }
}
