//! Who may call what. Every RPC of every dispatch311 service is
//! authenticated with a signed bearer token (a JWT: EdDSA, issuer, audience,
//! expiry, subject, role) and authorized by one policy table
//! ([`policy::POLICY`]), in one tower layer ([`AuthLayer`]) that also applies
//! per-caller rate limits. Handlers read the admitted [`Caller`] with
//! [`caller`].
//!
//! Configuration (each service, from the environment):
//! - `DISPATCH311_AUTH_JWKS`: path of the JWKS file with the public keys
//!   tokens are verified with (required); re-read every
//!   `DISPATCH311_AUTH_JWKS_RELOAD_SECS` (default 60, 0: never), so the
//!   issuer's key rotation needs no restart;
//! - `DISPATCH311_AUTH_ISSUER` (default `dispatch311-dev`) and
//!   `DISPATCH311_AUTH_AUDIENCE` (default `dispatch311`);
//! - `DISPATCH311_RATE_LIMIT_PER_SECOND` (default 50) and
//!   `DISPATCH311_RATE_LIMIT_BURST` (default 100): per integrator or public
//!   caller, per replica.
//!
//! A service that calls another on a caller's behalf (survey → intake for a
//! contact release) forwards the caller's token, so the callee checks and
//! records the real caller.

pub mod client;
mod layer;
pub mod policy;
pub mod rate_limit;
mod role;
pub mod tokens;

use std::{path::PathBuf, time::Duration};

use anyhow::Context as _;

pub use client::{Authenticated, BearerToken};
pub use layer::{AuthLayer, AuthService, caller};
pub use policy::View;
pub use rate_limit::RateLimit;
pub use role::{Role, UnknownRole};
pub use tokens::{KeyPair, TokenSigner, TokenVerifier};

/// The issuer tokens must name when `DISPATCH311_AUTH_ISSUER` is unset.
pub const DEFAULT_ISSUER: &str = "dispatch311-dev";
/// The audience tokens must name when `DISPATCH311_AUTH_AUDIENCE` is unset.
pub const DEFAULT_AUDIENCE: &str = "dispatch311";

/// The caller an RPC runs for, as the auth layer admitted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's subject: an integrator id, a badge number, a service name.
    pub subject: String,
    pub role: Role,
    /// What the policy table lets this role see through this RPC.
    pub view: View,
}

/// How a server checks its callers.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub jwks_path: PathBuf,
    pub issuer: String,
    pub audience: String,
    pub rate_limit: RateLimit,
    /// How often the JWKS file is checked for new keys; `None`: never.
    pub jwks_reload: Option<Duration>,
}

/// How often the JWKS file is re-read when `DISPATCH311_AUTH_JWKS_RELOAD_SECS` is unset.
pub const DEFAULT_JWKS_RELOAD: Duration = Duration::from_secs(60);

/// How a server checks its callers, from flags or the environment.
#[derive(Debug, Clone, clap::Args)]
pub struct AuthArgs {
    /// The JWKS file of the token issuer's public keys; every RPC needs a
    /// bearer token verified by one of them (`make run` makes development
    /// keys under .local/dev-keys).
    #[arg(
        long = "auth-jwks",
        env = "DISPATCH311_AUTH_JWKS",
        value_name = "DISPATCH311_AUTH_JWKS"
    )]
    pub jwks_path: PathBuf,
    /// Seconds between checks of the JWKS file for rotated keys; 0: never.
    #[arg(
        long = "auth-jwks-reload-secs",
        env = "DISPATCH311_AUTH_JWKS_RELOAD_SECS",
        value_name = "DISPATCH311_AUTH_JWKS_RELOAD_SECS",
        default_value = "60",
        value_parser = dispatch311_domain::settings::seconds
    )]
    pub jwks_reload: Duration,
    /// The issuer tokens must name.
    #[arg(
        long = "auth-issuer",
        env = "DISPATCH311_AUTH_ISSUER",
        value_name = "DISPATCH311_AUTH_ISSUER",
        default_value = DEFAULT_ISSUER
    )]
    pub issuer: String,
    /// The audience tokens must name.
    #[arg(
        long = "auth-audience",
        env = "DISPATCH311_AUTH_AUDIENCE",
        value_name = "DISPATCH311_AUTH_AUDIENCE",
        default_value = DEFAULT_AUDIENCE
    )]
    pub audience: String,
    /// Requests per second one integrator or public caller may make, per replica.
    #[arg(
        long = "rate-limit-per-second",
        env = "DISPATCH311_RATE_LIMIT_PER_SECOND",
        value_name = "DISPATCH311_RATE_LIMIT_PER_SECOND",
        default_value = "50",
        value_parser = rate
    )]
    pub per_second: f64,
    /// Requests one caller may make at once before the rate applies
    /// (default: twice the rate).
    #[arg(
        long = "rate-limit-burst",
        env = "DISPATCH311_RATE_LIMIT_BURST",
        value_name = "DISPATCH311_RATE_LIMIT_BURST",
        value_parser = rate
    )]
    pub burst: Option<f64>,
}

/// A rate or burst: a number above 0.
fn rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(value) if value.is_finite() && value > 0.0 => Ok(value),
        _ => Err("must be a number above 0".to_owned()),
    }
}

impl AuthArgs {
    pub fn config(&self) -> anyhow::Result<AuthConfig> {
        let burst = self.burst.unwrap_or(self.per_second * 2.0);
        anyhow::ensure!(
            burst >= 1.0,
            "DISPATCH311_RATE_LIMIT_BURST must be at least 1"
        );
        Ok(AuthConfig {
            jwks_path: self.jwks_path.clone(),
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            rate_limit: RateLimit {
                per_second: self.per_second,
                burst,
            },
            jwks_reload: (!self.jwks_reload.is_zero()).then_some(self.jwks_reload),
        })
    }
}

impl AuthConfig {
    /// Reads the key set and builds the server layer. Inside a Tokio
    /// runtime, also starts re-reading the key set every `jwks_reload`.
    pub fn layer(&self) -> anyhow::Result<AuthLayer> {
        let jwks = std::fs::read_to_string(&self.jwks_path)
            .with_context(|| format!("reading the JWKS file {}", self.jwks_path.display()))?;
        let verifier = TokenVerifier::from_jwks(&jwks, &self.issuer, &self.audience)
            .with_context(|| format!("loading the JWKS file {}", self.jwks_path.display()))?;
        if let (Some(every), Ok(runtime)) =
            (self.jwks_reload, tokio::runtime::Handle::try_current())
        {
            runtime.spawn(reload_jwks(
                self.jwks_path.clone(),
                verifier.clone(),
                every,
                jwks,
            ));
        }
        Ok(AuthLayer::new(verifier, self.rate_limit))
    }
}

/// Re-reads the JWKS file every `every` and hands a changed one to the
/// verifier. A file that cannot be read or holds no usable keys leaves the
/// keys in use (an error is logged once per change): a half-written file
/// must not lock everyone out. Runs as long as the process.
async fn reload_jwks(path: PathBuf, verifier: TokenVerifier, every: Duration, mut loaded: String) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let text = match tokio::fs::read_to_string(&path).await {
            Ok(text) => text,
            Err(error) => {
                tracing::warn!(jwks = %path.display(), %error, "cannot read the JWKS file; the keys in use stay");
                continue;
            }
        };
        if text == loaded {
            continue;
        }
        match verifier.replace_keys(&text) {
            Ok(key_ids) => {
                tracing::info!(jwks = %path.display(), ?key_ids, "token keys reloaded");
            }
            Err(error) => tracing::error!(
                jwks = %path.display(),
                error = format!("{error:#}"),
                "the changed JWKS file is not usable; the keys in use stay"
            ),
        }
        loaded = text;
    }
}

/// The key id `dispatch311-cli dev-keys` gives the development key.
pub const DEV_KEY_ID: &str = "dev1";

/// Where development tokens are signed (the cli, the benchmark): in
/// production tokens come from the city's identity provider instead.
#[derive(Debug, Clone, clap::Args)]
pub struct SignerArgs {
    /// The development signing key, a PKCS#8 PEM file (`make run` makes
    /// .local/dev-keys/auth-signing-key.pem).
    #[arg(
        long = "auth-signing-key",
        env = "DISPATCH311_AUTH_SIGNING_KEY",
        value_name = "DISPATCH311_AUTH_SIGNING_KEY"
    )]
    pub signing_key: Option<PathBuf>,
    /// The id of the signing key in the services' JWKS.
    #[arg(
        long = "auth-key-id",
        env = "DISPATCH311_AUTH_KEY_ID",
        value_name = "DISPATCH311_AUTH_KEY_ID",
        default_value = DEV_KEY_ID
    )]
    pub key_id: String,
    /// The issuer the services expect.
    #[arg(
        long = "auth-issuer",
        env = "DISPATCH311_AUTH_ISSUER",
        value_name = "DISPATCH311_AUTH_ISSUER",
        default_value = DEFAULT_ISSUER
    )]
    pub issuer: String,
    /// The audience the services expect.
    #[arg(
        long = "auth-audience",
        env = "DISPATCH311_AUTH_AUDIENCE",
        value_name = "DISPATCH311_AUTH_AUDIENCE",
        default_value = DEFAULT_AUDIENCE
    )]
    pub audience: String,
}

impl SignerArgs {
    /// The signer; an error that says what to set when no key is named.
    pub fn signer(&self) -> anyhow::Result<TokenSigner> {
        let path = self.signing_key.as_ref().ok_or_else(|| {
            anyhow::anyhow!(
                "DISPATCH311_AUTH_SIGNING_KEY is not set: point it at the development signing key \
                 (`make run` makes .local/dev-keys/auth-signing-key.pem), or pass a token"
            )
        })?;
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        TokenSigner::from_pem(&self.key_id, &pem, &self.issuer, &self.audience)
            .with_context(|| format!("loading the signing key {}", path.display()))
    }
}

/// [`SignerArgs::signer`] from the environment alone.
pub fn signer_from_env() -> anyhow::Result<TokenSigner> {
    #[derive(clap::Parser)]
    struct FromEnv {
        #[command(flatten)]
        signer: SignerArgs,
    }
    let parsed = <FromEnv as clap::Parser>::try_parse_from(["signer"])?;
    parsed.signer.signer()
}
