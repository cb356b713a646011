//! Survey's configuration: flags or environment variables, typed and
//! checked at start (`dispatch311-survey --help` lists them all).

use std::{net::SocketAddr, time::Duration};

use clap::Parser as _;
use dispatch311_grpc::startup::{ServiceArgs, ServiceSettings};

/// How long a survey token stays valid when `DISPATCH311_SURVEY_TOKEN_DAYS` is unset.
pub const DEFAULT_TOKEN_DAYS: f64 = 30.0;

const SECONDS_PER_DAY: f64 = 86_400.0;

/// Every setting of the survey service.
#[derive(Debug, clap::Parser)]
#[command(
    name = "dispatch311-survey",
    version,
    about = "dispatch311's survey service: a satisfaction survey after every closed police job",
    after_help = dispatch311_telemetry::ENVIRONMENT_HELP
)]
pub struct SurveyArgs {
    /// Where the gRPC API listens; port 0 picks a free port.
    #[arg(
        long = "listen",
        env = "DISPATCH311_SURVEY_ADDR",
        value_name = "DISPATCH311_SURVEY_ADDR",
        default_value = "0.0.0.0:50054"
    )]
    pub listen_addr: SocketAddr,
    /// Where contact details are released from (intake's gRPC API).
    #[arg(
        long = "intake-url",
        env = "DISPATCH311_INTAKE_URL",
        value_name = "DISPATCH311_INTAKE_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub intake_url: String,
    /// Days a survey token is valid after it is handed out (fractions allowed).
    #[arg(
        long = "survey-token-days",
        env = "DISPATCH311_SURVEY_TOKEN_DAYS",
        value_name = "DISPATCH311_SURVEY_TOKEN_DAYS",
        default_value = "30",
        value_parser = token_ttl
    )]
    pub token_ttl: Duration,
    /// Days after expiring an unused token's hash is deleted (an answered one
    /// stays with its answer); 0 to 3650.
    #[arg(
        long = "survey-token-purge-days",
        env = "DISPATCH311_SURVEY_TOKEN_PURGE_DAYS",
        value_name = "DISPATCH311_SURVEY_TOKEN_PURGE_DAYS",
        default_value = "7",
        value_parser = purge_days
    )]
    pub token_purge_after: Duration,
    /// Seconds between purges of expired tokens (at least 0.1, at most 86400).
    #[arg(
        long = "survey-purge-secs",
        env = "DISPATCH311_SURVEY_PURGE_SECS",
        value_name = "DISPATCH311_SURVEY_PURGE_SECS",
        default_value = "3600",
        value_parser = purge_every
    )]
    pub purge_every: Duration,
    /// A database of survey's own (e.g. on an instance apart); unset: the
    /// shared `DATABASE_URL`.
    #[arg(
        long = "survey-database-url",
        env = "DISPATCH311_SURVEY_DATABASE_URL",
        value_name = "DISPATCH311_SURVEY_DATABASE_URL",
        hide_env_values = true
    )]
    pub own_database_url: Option<String>,
    #[command(flatten)]
    pub service: ServiceArgs,
}

#[derive(Debug, Clone)]
pub struct SurveyConfig {
    pub listen_addr: SocketAddr,
    /// Database, queue, token checks, TLS and the metrics endpoint.
    pub service: ServiceSettings,
    pub intake_url: String,
    pub token_ttl: Duration,
    pub token_purge_after: Duration,
    pub purge_every: Duration,
}

impl SurveyConfig {
    /// The settings of this process: its flags and environment. A bad or
    /// missing value ends the process with a message naming the variable.
    pub fn load() -> anyhow::Result<Self> {
        Self::from_args(SurveyArgs::parse())
    }

    pub fn from_args(args: SurveyArgs) -> anyhow::Result<Self> {
        Ok(Self {
            listen_addr: args.listen_addr,
            service: args
                .service
                .settings(crate::SCHEMA)?
                .with_database_url(args.own_database_url),
            intake_url: args.intake_url,
            token_ttl: args.token_ttl,
            token_purge_after: args.token_purge_after,
            purge_every: args.purge_every,
        })
    }
}

/// The token lifetime for a `DISPATCH311_SURVEY_TOKEN_DAYS` value.
pub fn token_ttl(days: &str) -> Result<Duration, String> {
    let days = match days.trim() {
        "" => DEFAULT_TOKEN_DAYS,
        text => text
            .parse::<f64>()
            .map_err(|_| format!("{text:?} is not a number of days"))?,
    };
    if !(days.is_finite() && days > 0.0 && days <= 3_650.0) {
        return Err("must be more than 0 and at most 3650 days".to_owned());
    }
    Ok(Duration::from_secs_f64(days * SECONDS_PER_DAY))
}

/// A number from 0 to `max`.
fn bounded(text: &str, max: f64) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if !(value.is_finite() && (0.0..=max).contains(&value)) {
        return Err(format!("must be from 0 to {max}"));
    }
    Ok(value)
}

fn purge_days(text: &str) -> Result<Duration, String> {
    bounded(text, 3_650.0).map(|days| Duration::from_secs_f64(days * SECONDS_PER_DAY))
}

fn purge_every(text: &str) -> Result<Duration, String> {
    bounded(text, 86_400.0).map(|secs| Duration::from_secs_f64(secs.max(0.1)))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn every_setting_has_a_flag_and_a_variable_of_its_own() {
        SurveyArgs::command().debug_assert();
    }

    #[test]
    fn tokens_last_thirty_days_unless_told_otherwise() {
        assert_eq!(token_ttl("30").unwrap(), Duration::from_secs(30 * 86_400));
        assert_eq!(token_ttl("").unwrap(), Duration::from_secs(30 * 86_400));
        assert_eq!(token_ttl(" 7 ").unwrap(), Duration::from_secs(7 * 86_400));
        assert_eq!(token_ttl("0.5").unwrap(), Duration::from_secs(43_200));
    }

    #[test]
    fn nonsense_lifetimes_are_refused() {
        for value in ["0", "-3", "thirty", "NaN", "inf", "100000"] {
            assert!(token_ttl(value).is_err(), "{value}");
        }
    }
}
