//! The console's configuration: flags or environment variables, typed and
//! checked at start (`dispatch311-console --help` lists them all).

use std::net::SocketAddr;

use anyhow::Context as _;
use base64::Engine as _;
use clap::Parser as _;
use dispatch311_auth::{SignerArgs, TokenSigner, TokenVerifier};
use dispatch311_grpc::{metrics::MetricsArgs, tls::TlsArgs};

use crate::oidc::OidcSettings;
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
    /// Sign-in through the city's identity provider (OpenID Connect,
    /// authorization code with PKCE): its issuer URL, e.g.
    /// `https://login.city.example/realms/nypd`. Needs the client id, the
    /// public URL and DISPATCH311_AUTH_JWKS.
    #[arg(
        long = "oidc-issuer",
        env = "DISPATCH311_CONSOLE_OIDC_ISSUER",
        value_name = "DISPATCH311_CONSOLE_OIDC_ISSUER"
    )]
    pub oidc_issuer: Option<String>,
    /// The console's client id at the identity provider.
    #[arg(
        long = "oidc-client-id",
        env = "DISPATCH311_CONSOLE_OIDC_CLIENT_ID",
        value_name = "DISPATCH311_CONSOLE_OIDC_CLIENT_ID"
    )]
    pub oidc_client_id: Option<String>,
    /// The client secret, for a confidential client (a public client relies
    /// on PKCE alone).
    #[arg(
        long = "oidc-client-secret",
        env = "DISPATCH311_CONSOLE_OIDC_CLIENT_SECRET",
        value_name = "DISPATCH311_CONSOLE_OIDC_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub oidc_client_secret: Option<String>,
    /// The scopes asked for.
    #[arg(
        long = "oidc-scopes",
        env = "DISPATCH311_CONSOLE_OIDC_SCOPES",
        value_name = "DISPATCH311_CONSOLE_OIDC_SCOPES",
        default_value = "openid"
    )]
    pub oidc_scopes: String,
    /// The console's address as browsers reach it, e.g.
    /// `https://console.city.example`: the provider sends people back to
    /// `<this>/sign-in/callback`, which must be registered with it.
    #[arg(
        long = "public-url",
        env = "DISPATCH311_CONSOLE_PUBLIC_URL",
        value_name = "DISPATCH311_CONSOLE_PUBLIC_URL"
    )]
    pub public_url: Option<String>,
    /// The services' token key set: a token from the provider is taken only
    /// if it verifies as the services will verify it (with
    /// DISPATCH311_AUTH_ISSUER and DISPATCH311_AUTH_AUDIENCE).
    #[arg(
        long = "auth-jwks",
        env = "DISPATCH311_AUTH_JWKS",
        value_name = "DISPATCH311_AUTH_JWKS"
    )]
    pub auth_jwks: Option<std::path::PathBuf>,
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
    /// The identity provider's sign-in, when it is configured.
    pub oidc: Option<(OidcSettings, TokenVerifier)>,
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
            .field(
                "oidc_issuer",
                &self.oidc.as_ref().map(|(settings, _)| &settings.issuer),
            )
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
        let oidc = match &args.oidc_issuer {
            Some(issuer) => Some(oidc_settings(&args, issuer)?),
            None => None,
        };
        anyhow::ensure!(
            dev_signer.is_some() || oidc.is_some(),
            "nobody could sign in: set DISPATCH311_CONSOLE_OIDC_ISSUER (the city's identity \
             provider) or, for development only, DISPATCH311_CONSOLE_DEV_SIGN_IN=true"
        );
        Ok(Self {
            oidc,
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

/// The identity provider's settings, checked: every piece the flow needs,
/// HTTPS except on loopback (a developer's or a test's provider).
fn oidc_settings(
    args: &ConsoleArgs,
    issuer: &str,
) -> anyhow::Result<(OidcSettings, TokenVerifier)> {
    let secure_or_local = |url: &str| {
        url.starts_with("https://")
            || url.starts_with("http://127.0.0.1")
            || url.starts_with("http://localhost")
            || url.starts_with("http://[::1]")
    };
    anyhow::ensure!(
        secure_or_local(issuer),
        "DISPATCH311_CONSOLE_OIDC_ISSUER must be an https:// URL (http:// only on loopback)"
    );
    let client_id = args
        .oidc_client_id
        .clone()
        .context("DISPATCH311_CONSOLE_OIDC_ISSUER needs DISPATCH311_CONSOLE_OIDC_CLIENT_ID")?;
    let public_url = args
        .public_url
        .as_deref()
        .context("DISPATCH311_CONSOLE_OIDC_ISSUER needs DISPATCH311_CONSOLE_PUBLIC_URL (where browsers reach the console)")?;
    anyhow::ensure!(
        secure_or_local(public_url),
        "DISPATCH311_CONSOLE_PUBLIC_URL must be an https:// URL (http:// only on loopback)"
    );
    let jwks_path = args
        .auth_jwks
        .as_ref()
        .context("DISPATCH311_CONSOLE_OIDC_ISSUER needs DISPATCH311_AUTH_JWKS, the key set the services verify tokens with")?;
    let jwks = std::fs::read_to_string(jwks_path)
        .with_context(|| format!("reading DISPATCH311_AUTH_JWKS {}", jwks_path.display()))?;
    let verifier = TokenVerifier::from_jwks(&jwks, &args.signer.issuer, &args.signer.audience)?;
    Ok((
        OidcSettings {
            issuer: issuer.to_string(),
            client_id,
            client_secret: args.oidc_client_secret.clone(),
            redirect_url: format!("{}/sign-in/callback", public_url.trim_end_matches('/')),
            scopes: args.oidc_scopes.clone(),
        },
        verifier,
    ))
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
    fn a_console_nobody_can_sign_in_to_does_not_start() {
        let args = ConsoleArgs::try_parse_from([
            "dispatch311-console",
            "--session-key",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ])
        .unwrap();
        let error = ConsoleConfig::from_args(args).unwrap_err().to_string();
        assert!(error.contains("nobody could sign in"), "{error}");
    }

    #[test]
    fn an_identity_provider_over_plain_http_elsewhere_than_loopback_is_refused() {
        let args = ConsoleArgs::try_parse_from([
            "dispatch311-console",
            "--session-key",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "--oidc-issuer",
            "http://login.city.example",
        ])
        .unwrap();
        let error = ConsoleConfig::from_args(args).unwrap_err().to_string();
        assert!(error.contains("https://"), "{error}");
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
