//! The console's configuration: flags or environment variables, typed and
//! checked at start (`dispatch311-console --help` lists them all).

use std::net::SocketAddr;

use anyhow::Context as _;
use base64::Engine as _;
use clap::Parser as _;
use dispatch311_auth::{SignerArgs, TokenSigner};
use dispatch311_grpc::{metrics::MetricsArgs, tls::TlsArgs};

use crate::session::SessionKey;

/// Every setting of the console.
#[derive(Debug, clap::Parser)]
#[command(
    name = "dispatch311-console",
    version,
    about = "dispatch311's console: the supervisor's live board and the officer's screen, in the browser",
    after_help = dispatch311_telemetry::ENVIRONMENT_HELP
)]
pub struct ConsoleArgs {
    /// Where the web server listens (plain HTTP: put TLS in front of it, and
    /// set DISPATCH311_CONSOLE_SECURE_COOKIES); port 0 picks a free port.
    #[arg(
        long = "listen",
        env = "DISPATCH311_CONSOLE_ADDR",
        value_name = "DISPATCH311_CONSOLE_ADDR",
        default_value = "0.0.0.0:8311"
    )]
    pub listen_addr: SocketAddr,
    /// Dispatch's gRPC API.
    #[arg(
        long = "dispatch-url",
        env = "DISPATCH311_DISPATCH_URL",
        value_name = "DISPATCH311_DISPATCH_URL",
        default_value = "http://127.0.0.1:50053"
    )]
    pub dispatch_url: String,
    /// Survey's gRPC API (the satisfaction figures).
    #[arg(
        long = "survey-url",
        env = "DISPATCH311_SURVEY_URL",
        value_name = "DISPATCH311_SURVEY_URL",
        default_value = "http://127.0.0.1:50054"
    )]
    pub survey_url: String,
    /// The key that seals session cookies: 32 bytes, base64. Every replica
    /// of the console needs the same one; a new one signs everyone out.
    #[arg(
        long = "session-key",
        env = "DISPATCH311_CONSOLE_SESSION_KEY",
        value_name = "DISPATCH311_CONSOLE_SESSION_KEY",
        hide_env_values = true
    )]
    pub session_key: String,
    /// Session cookies only over HTTPS (`Secure`): on wherever the console
    /// is served over TLS, which is everywhere but a developer's machine.
    #[arg(
        long = "secure-cookies",
        env = "DISPATCH311_CONSOLE_SECURE_COOKIES",
        value_name = "DISPATCH311_CONSOLE_SECURE_COOKIES",
        default_value = "true",
        action = clap::ArgAction::Set
    )]
    pub secure_cookies: bool,
    /// Offer the development sign-in: anyone picks any role, and the console
    /// signs the token with the development key (DISPATCH311_AUTH_SIGNING_KEY).
    /// For `make run` only; never where the city's identity provider signs.
    #[arg(
        long = "dev-sign-in",
        env = "DISPATCH311_CONSOLE_DEV_SIGN_IN",
        value_name = "DISPATCH311_CONSOLE_DEV_SIGN_IN",
        default_value = "false",
        action = clap::ArgAction::Set
    )]
    pub dev_sign_in: bool,
    /// Hours a session lasts (the token signed for it lasts as long).
    #[arg(
        long = "session-hours",
        env = "DISPATCH311_CONSOLE_SESSION_HOURS",
        value_name = "DISPATCH311_CONSOLE_SESSION_HOURS",
        default_value = "10",
        value_parser = clap::value_parser!(u64).range(1..=24)
    )]
    pub session_hours: u64,
    #[command(flatten)]
    pub signer: SignerArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub metrics: MetricsArgs,
}

/// The checked settings.
pub struct ConsoleConfig {
    pub listen_addr: SocketAddr,
    pub dispatch_url: String,
    pub survey_url: String,
    pub session_key: SessionKey,
    pub secure_cookies: bool,
    /// The development sign-in's signer, when it is offered.
    pub dev_signer: Option<TokenSigner>,
    pub session_hours: u64,
    pub tls: Option<dispatch311_grpc::tls::TlsConfig>,
    pub metrics_addr: Option<SocketAddr>,
}

impl std::fmt::Debug for ConsoleConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleConfig")
            .field("listen_addr", &self.listen_addr)
            .field("dispatch_url", &self.dispatch_url)
            .field("survey_url", &self.survey_url)
            .field("secure_cookies", &self.secure_cookies)
            .field("dev_sign_in", &self.dev_signer.is_some())
            .finish_non_exhaustive()
    }
}

impl ConsoleConfig {
    /// From the command line and the environment.
    pub fn load() -> anyhow::Result<Self> {
        Self::from_args(ConsoleArgs::parse())
    }

    pub fn from_args(args: ConsoleArgs) -> anyhow::Result<Self> {
        let key = base64::engine::general_purpose::STANDARD
            .decode(args.session_key.trim())
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .context(
                "DISPATCH311_CONSOLE_SESSION_KEY must be 32 random bytes in base64 \
                 (e.g. `head -c 32 /dev/urandom | base64`)",
            )?;
        let dev_signer = if args.dev_sign_in {
            Some(
                args.signer
                    .signer()
                    .context("DISPATCH311_CONSOLE_DEV_SIGN_IN needs the development signing key")?,
            )
        } else {
            None
        };
        Ok(Self {
            listen_addr: args.listen_addr,
            dispatch_url: args.dispatch_url,
            survey_url: args.survey_url,
            session_key: SessionKey::new(key),
            secure_cookies: args.secure_cookies,
            dev_signer,
            session_hours: args.session_hours,
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
        ConsoleArgs::command().debug_assert();
    }

    #[test]
    fn a_session_key_that_is_not_32_bytes_is_refused_with_what_to_do() {
        let args =
            ConsoleArgs::try_parse_from(["dispatch311-console", "--session-key", "c2hvcnQ="])
                .unwrap();
        let error = ConsoleConfig::from_args(args).unwrap_err().to_string();
        assert!(error.contains("32 random bytes"), "{error}");
    }
}
