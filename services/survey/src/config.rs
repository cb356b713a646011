//! Survey's configuration, from the environment (documented in the README).

use std::{net::SocketAddr, time::Duration};

use anyhow::Context as _;
use dispatch311_db::DbConfig;
use dispatch311_queue::QueueConfig;

/// How long a survey token stays valid when `DISPATCH311_SURVEY_TOKEN_DAYS` is unset.
pub const DEFAULT_TOKEN_DAYS: f64 = 30.0;

const SECONDS_PER_DAY: f64 = 86_400.0;

#[derive(Debug, Clone)]
pub struct SurveyConfig {
    /// `DISPATCH311_SURVEY_ADDR`, default `0.0.0.0:50054`; port 0 picks a free port.
    pub listen_addr: SocketAddr,
    pub db: DbConfig,
    pub queue: QueueConfig,
    /// Bearer-token verification and rate limits (`DISPATCH311_AUTH_*`,
    /// `DISPATCH311_RATE_LIMIT_*`; see `dispatch311_auth`).
    pub auth: dispatch311_auth::AuthConfig,
    /// Mutual TLS on the server and the clients (`DISPATCH311_TLS_*`; off
    /// when unset; see `dispatch311_grpc::tls`).
    pub tls: Option<dispatch311_grpc::tls::TlsConfig>,
    /// `DISPATCH311_INTAKE_URL`, default `http://127.0.0.1:50051`: where
    /// contact details are released from.
    pub intake_url: String,
    /// `DISPATCH311_SURVEY_TOKEN_DAYS` (30, fractions allowed): how long a
    /// survey token is valid after it is handed out.
    pub token_ttl: Duration,
    /// `DISPATCH311_SURVEY_TOKEN_PURGE_DAYS` (7, fractions allowed): how long
    /// after expiring an unused token's hash is deleted (an answered one stays
    /// with its answer). The purge runs every `DISPATCH311_SURVEY_PURGE_SECS`
    /// (3600).
    pub token_purge_after: Duration,
    pub purge_every: Duration,
}

impl SurveyConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        let listen_addr = env_or("DISPATCH311_SURVEY_ADDR", "0.0.0.0:50054")
            .parse()
            .context("DISPATCH311_SURVEY_ADDR must be host:port")?;
        let token_days = std::env::var("DISPATCH311_SURVEY_TOKEN_DAYS").ok();
        Ok(Self {
            listen_addr,
            db: DbConfig::from_env(crate::SCHEMA)?,
            queue: QueueConfig::from_env()?,
            auth: dispatch311_auth::AuthConfig::from_env()?,
            tls: dispatch311_grpc::tls::TlsConfig::from_env()?,
            intake_url: env_or("DISPATCH311_INTAKE_URL", "http://127.0.0.1:50051"),
            token_ttl: token_ttl(token_days.as_deref())?,
            token_purge_after: Duration::from_secs_f64(
                positive("DISPATCH311_SURVEY_TOKEN_PURGE_DAYS", 7.0, 3_650.0)? * SECONDS_PER_DAY,
            ),
            purge_every: Duration::from_secs_f64(
                positive("DISPATCH311_SURVEY_PURGE_SECS", 3_600.0, 86_400.0)?.max(0.1),
            ),
        })
    }
}

/// The token lifetime for a `DISPATCH311_SURVEY_TOKEN_DAYS` value (`None`: unset).
pub fn token_ttl(days: Option<&str>) -> anyhow::Result<Duration> {
    let days = match days.map(str::trim) {
        None | Some("") => DEFAULT_TOKEN_DAYS,
        Some(text) => text
            .parse::<f64>()
            .context("DISPATCH311_SURVEY_TOKEN_DAYS must be a number of days")?,
    };
    anyhow::ensure!(
        days.is_finite() && days > 0.0 && days <= 3_650.0,
        "DISPATCH311_SURVEY_TOKEN_DAYS must be more than 0 and at most 3650 days"
    );
    Ok(Duration::from_secs_f64(days * SECONDS_PER_DAY))
}

/// A number from 0 to `max` from `name`, or `default` when unset.
fn positive(name: &str, default: f64, max: f64) -> anyhow::Result<f64> {
    let Ok(text) = std::env::var(name) else {
        return Ok(default);
    };
    let value: f64 = text
        .trim()
        .parse()
        .with_context(|| format!("{name} must be a number"))?;
    anyhow::ensure!(
        value.is_finite() && (0.0..=max).contains(&value),
        "{name} must be from 0 to {max}"
    );
    Ok(value)
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_last_thirty_days_unless_told_otherwise() {
        assert_eq!(token_ttl(None).unwrap(), Duration::from_secs(30 * 86_400));
        assert_eq!(
            token_ttl(Some("")).unwrap(),
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(
            token_ttl(Some(" 7 ")).unwrap(),
            Duration::from_secs(7 * 86_400)
        );
        assert_eq!(token_ttl(Some("0.5")).unwrap(), Duration::from_secs(43_200));
    }

    #[test]
    fn nonsense_lifetimes_are_refused() {
        for value in ["0", "-3", "thirty", "NaN", "inf", "100000"] {
            assert!(token_ttl(Some(value)).is_err(), "{value}");
        }
    }
}
