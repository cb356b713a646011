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

impl AuthConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        let jwks_path = std::env::var("DISPATCH311_AUTH_JWKS").map_err(|_| {
            anyhow::anyhow!(
                "DISPATCH311_AUTH_JWKS is not set: every RPC needs a verified bearer token; \
                 point it at the JWKS file of the token issuer's public keys \
                 (`make run` creates development keys under .local/dev-keys)"
            )
        })?;
        let per_second = env_number("DISPATCH311_RATE_LIMIT_PER_SECOND", 50.0)?;
        let burst = env_number("DISPATCH311_RATE_LIMIT_BURST", per_second * 2.0)?;
        anyhow::ensure!(
            per_second > 0.0 && burst >= 1.0,
            "DISPATCH311_RATE_LIMIT_PER_SECOND must be above 0 and DISPATCH311_RATE_LIMIT_BURST at least 1"
        );
        let reload_secs = env_number(
            "DISPATCH311_AUTH_JWKS_RELOAD_SECS",
            DEFAULT_JWKS_RELOAD.as_secs_f64(),
        )?;
        anyhow::ensure!(
            reload_secs.is_finite() && reload_secs >= 0.0,
            "DISPATCH311_AUTH_JWKS_RELOAD_SECS must be 0 (never) or a number of seconds"
        );
        Ok(Self {
            jwks_path: jwks_path.into(),
            issuer: env_or("DISPATCH311_AUTH_ISSUER", DEFAULT_ISSUER),
            audience: env_or("DISPATCH311_AUTH_AUDIENCE", DEFAULT_AUDIENCE),
            rate_limit: RateLimit { per_second, burst },
            jwks_reload: (reload_secs > 0.0).then(|| Duration::from_secs_f64(reload_secs)),
        })
    }

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

/// A signer for development tokens (the cli, the benchmark), from
/// `DISPATCH311_AUTH_SIGNING_KEY` (PKCS#8 PEM file), `DISPATCH311_AUTH_KEY_ID`
/// (default `dev1`) and the issuer and audience the services expect. In
/// production tokens come from the city's identity provider instead.
pub fn signer_from_env() -> anyhow::Result<TokenSigner> {
    let path = std::env::var("DISPATCH311_AUTH_SIGNING_KEY").map_err(|_| {
        anyhow::anyhow!(
            "DISPATCH311_AUTH_SIGNING_KEY is not set: point it at the development signing key \
             (`make run` makes .local/dev-keys/auth-signing-key.pem), or pass a token"
        )
    })?;
    let pem = std::fs::read(&path).with_context(|| format!("reading {path}"))?;
    TokenSigner::from_pem(
        &env_or("DISPATCH311_AUTH_KEY_ID", DEV_KEY_ID),
        &pem,
        &env_or("DISPATCH311_AUTH_ISSUER", DEFAULT_ISSUER),
        &env_or("DISPATCH311_AUTH_AUDIENCE", DEFAULT_AUDIENCE),
    )
    .with_context(|| format!("loading the signing key {path}"))
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
        .unwrap_or_else(|| default.to_string())
}

fn env_number(name: &str, default: f64) -> anyhow::Result<f64> {
    match std::env::var(name).ok().filter(|v| !v.trim().is_empty()) {
        None => Ok(default),
        Some(text) => text
            .trim()
            .parse()
            .with_context(|| format!("{name} must be a number")),
    }
}
