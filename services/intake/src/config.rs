//! Intake's configuration: flags or environment variables, typed and
//! checked at start (`dispatch311-intake --help` lists them all).

use std::{net::SocketAddr, time::Duration};

use clap::Parser as _;
use dispatch311_domain::{
    CityBounds,
    settings::{days, positive_seconds},
};
use dispatch311_grpc::startup::{ServiceArgs, ServiceSettings};
use dispatch311_photos::PhotoStoreArgs;

use crate::{contact_crypto::ContactCipher, store::RetentionPolicy};

/// Every setting of the intake service.
#[derive(Debug, clap::Parser)]
#[command(
    name = "dispatch311-intake",
    version,
    about = "dispatch311's intake service: files 311 requests, keeps complainants' contacts sealed, answers status",
    after_help = dispatch311_telemetry::ENVIRONMENT_HELP
)]
pub struct IntakeArgs {
    /// Without a command, serve the gRPC API.
    #[command(subcommand)]
    pub command: Option<IntakeCommand>,
    /// Where the gRPC API listens; port 0 picks a free port.
    #[arg(
        long = "listen",
        env = "DISPATCH311_INTAKE_ADDR",
        value_name = "DISPATCH311_INTAKE_ADDR",
        default_value = "0.0.0.0:50051"
    )]
    pub listen_addr: SocketAddr,
    /// The city's bounds, min_lat,min_lon,max_lat,max_lon: a request placed
    /// outside them is refused (default: New York City).
    #[arg(
        long = "city-bounds",
        env = "DISPATCH311_CITY_BOUNDS",
        value_name = "DISPATCH311_CITY_BOUNDS",
        value_parser = city_bounds
    )]
    pub city_bounds: Option<CityBounds>,
    /// Seconds after which a request still not routed or queued gets its
    /// route job published again.
    #[arg(
        long = "reconcile-after-secs",
        env = "DISPATCH311_RECONCILE_AFTER_SECS",
        value_name = "DISPATCH311_RECONCILE_AFTER_SECS",
        default_value = "120",
        value_parser = positive_seconds
    )]
    pub reconcile_after: Duration,
    /// The keys that seal complainant contacts at rest, `id:base64,…` with
    /// the current key first. No default: a key everyone knows would seal
    /// nothing (`make run` makes a development key).
    #[arg(
        long = "contact-keys",
        env = "DISPATCH311_CONTACT_KEYS",
        value_name = "DISPATCH311_CONTACT_KEYS",
        hide_env_values = true
    )]
    pub contact_keys: String,
    /// Days contacts and original descriptions are kept after the request
    /// finished (fractions allowed); keep it at least the survey's token lifetime.
    #[arg(
        long = "contact-retention-days",
        env = "DISPATCH311_CONTACT_RETENTION_DAYS",
        value_name = "DISPATCH311_CONTACT_RETENTION_DAYS",
        default_value = "30",
        value_parser = days
    )]
    pub contact_retention: Duration,
    /// Days voice recording references are kept after filing.
    #[arg(
        long = "voice-retention-days",
        env = "DISPATCH311_VOICE_RETENTION_DAYS",
        value_name = "DISPATCH311_VOICE_RETENTION_DAYS",
        default_value = "14",
        value_parser = days
    )]
    pub voice_retention: Duration,
    /// Days a photo uploaded but never filed with a request is kept.
    #[arg(
        long = "unfiled-photo-days",
        env = "DISPATCH311_UNFILED_PHOTO_DAYS",
        value_name = "DISPATCH311_UNFILED_PHOTO_DAYS",
        default_value = "1",
        value_parser = days
    )]
    pub unfiled_photos: Duration,
    /// Seconds between retention sweeps (1 to 86400).
    #[arg(
        long = "retention-sweep-secs",
        env = "DISPATCH311_RETENTION_SWEEP_SECS",
        value_name = "DISPATCH311_RETENTION_SWEEP_SECS",
        default_value_t = 600,
        value_parser = clap::value_parser!(u32).range(1..=86_400)
    )]
    pub retention_sweep_secs: u32,
    /// A database of intake's own (e.g. on an instance apart); unset: the
    /// shared `DATABASE_URL`.
    #[arg(
        long = "intake-database-url",
        env = "DISPATCH311_INTAKE_DATABASE_URL",
        value_name = "DISPATCH311_INTAKE_DATABASE_URL",
        hide_env_values = true
    )]
    pub own_database_url: Option<String>,
    #[command(flatten)]
    pub service: ServiceArgs,
    #[command(flatten)]
    pub photos: PhotoStoreArgs,
}

/// What the binary does besides serving.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum IntakeCommand {
    /// Re-seal every contact and description under the current key (the
    /// first of DISPATCH311_CONTACT_KEYS), so an old key can be retired.
    Rekey {
        /// Contacts re-sealed per transaction.
        #[arg(long, default_value_t = 500,
            value_parser = clap::value_parser!(i64).range(1..=100_000))]
        batch_size: i64,
    },
}

fn city_bounds(text: &str) -> Result<CityBounds, String> {
    CityBounds::parse(text).ok_or_else(|| "must be min_lat,min_lon,max_lat,max_lon".to_owned())
}

#[derive(Debug, Clone)]
pub struct IntakeConfig {
    pub listen_addr: SocketAddr,
    /// Database, queue, token checks, TLS and the metrics endpoint.
    pub service: ServiceSettings,
    pub photos: PhotoStoreArgs,
    pub city_bounds: CityBounds,
    pub reconcile_after: Duration,
    pub contact_cipher: ContactCipher,
    pub retention: RetentionPolicy,
}

impl IntakeConfig {
    /// The command and settings of this process: its flags and environment.
    /// A bad or missing value ends the process with a message naming the variable.
    pub fn load() -> anyhow::Result<(Option<IntakeCommand>, Self)> {
        let args = IntakeArgs::parse();
        let command = args.command.clone();
        Ok((command, Self::from_args(args)?))
    }

    /// Checks what clap cannot (the keys) and builds the settings.
    pub fn from_args(args: IntakeArgs) -> anyhow::Result<Self> {
        let chrono_of =
            |d: Duration| chrono::Duration::from_std(d).expect("at most ten years fit chrono");
        Ok(Self {
            listen_addr: args.listen_addr,
            service: args
                .service
                .settings(crate::SCHEMA)?
                .with_database_url(args.own_database_url),
            photos: args.photos,
            city_bounds: args.city_bounds.unwrap_or(CityBounds::NEW_YORK_CITY),
            reconcile_after: args.reconcile_after,
            contact_cipher: ContactCipher::parse(&args.contact_keys)?,
            retention: RetentionPolicy {
                personal_data_after: chrono_of(args.contact_retention),
                voice_recordings_after: chrono_of(args.voice_retention),
                unfiled_photos_after: chrono_of(args.unfiled_photos),
                every: chrono::Duration::seconds(args.retention_sweep_secs.into()),
                batch: RETENTION_BATCH,
            },
        })
    }
}

/// Requests (and recordings) one retention sweep handles; a full batch
/// schedules the next sweep at once.
const RETENTION_BATCH: i64 = 1_000;

#[cfg(test)]
mod tests {
    use clap::{CommandFactory as _, Parser as _};

    use super::*;

    #[test]
    fn every_setting_has_a_flag_and_a_variable_of_its_own() {
        IntakeArgs::command().debug_assert();
    }

    /// The rekey batch size a command line asks for.
    fn batch_size(args: &[&str]) -> Result<i64, clap::Error> {
        let line = [
            "dispatch311-intake",
            "--contact-keys",
            "k1:x",
            "--auth-jwks",
            "/j",
            "rekey",
        ];
        let parsed = IntakeArgs::try_parse_from(line.iter().chain(args))?;
        match parsed.command {
            Some(IntakeCommand::Rekey { batch_size }) => Ok(batch_size),
            None => panic!("no rekey command"),
        }
    }

    #[test]
    fn the_batch_size_is_500_unless_given() {
        assert_eq!(batch_size(&[]).unwrap(), 500);
        assert_eq!(batch_size(&["--batch-size", "2"]).unwrap(), 2);
        for bad in [
            &["--batch-size", "0"][..],
            &["--batch-size", "x"],
            &["--batch"],
            &["2"],
        ] {
            assert!(batch_size(bad).is_err(), "{bad:?}");
        }
    }
}
