//! Intake's configuration, from the environment (documented in the README).

use std::{net::SocketAddr, time::Duration};

use anyhow::Context as _;
use dispatch311_db::DbConfig;
use dispatch311_domain::CityBounds;
use dispatch311_queue::QueueConfig;

use crate::{
    contact_crypto::{self, ContactCipher},
    store::RetentionPolicy,
};

#[derive(Debug, Clone)]
pub struct IntakeConfig {
    /// `DISPATCH311_INTAKE_ADDR`, default `0.0.0.0:50051`; port 0 picks a free port.
    pub listen_addr: SocketAddr,
    pub db: DbConfig,
    pub queue: QueueConfig,
    /// Bearer-token verification and rate limits (`DISPATCH311_AUTH_*`,
    /// `DISPATCH311_RATE_LIMIT_*`; see `dispatch311_auth`).
    pub auth: dispatch311_auth::AuthConfig,
    /// Mutual TLS on the server and the clients (`DISPATCH311_TLS_*`; off
    /// when unset; see `dispatch311_grpc::tls`).
    pub tls: Option<dispatch311_grpc::tls::TlsConfig>,
    /// `DISPATCH311_CITY_BOUNDS` as `min_lat,min_lon,max_lat,max_lon`; default New York City.
    pub city_bounds: CityBounds,
    /// `DISPATCH311_RECONCILE_AFTER_SECS`, default 120: a request still not
    /// routed or queued after this long gets its route job published again.
    pub reconcile_after: Duration,
    /// `DISPATCH311_CONTACT_KEYS`, required: the keys that seal complainant
    /// contacts at rest, as `id:base64,…` with the current key first.
    pub contact_cipher: ContactCipher,
    /// `DISPATCH311_CONTACT_RETENTION_DAYS` (default 30, the survey's default
    /// window: keep it at least `DISPATCH311_SURVEY_TOKEN_DAYS`),
    /// `DISPATCH311_VOICE_RETENTION_DAYS` (default 14),
    /// `DISPATCH311_UNFILED_PHOTO_DAYS` (default 1) — fractions allowed —
    /// and `DISPATCH311_RETENTION_SWEEP_SECS` (default 600).
    pub retention: RetentionPolicy,
}

impl IntakeConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        let listen_addr = env_or("DISPATCH311_INTAKE_ADDR", "0.0.0.0:50051")
            .parse()
            .context("DISPATCH311_INTAKE_ADDR must be host:port")?;
        let city_bounds = match std::env::var("DISPATCH311_CITY_BOUNDS") {
            Ok(v) => CityBounds::parse(&v)
                .context("DISPATCH311_CITY_BOUNDS must be min_lat,min_lon,max_lat,max_lon")?,
            Err(_) => CityBounds::NEW_YORK_CITY,
        };
        let reconcile_after = Duration::from_secs(
            env_or("DISPATCH311_RECONCILE_AFTER_SECS", "120")
                .parse()
                .context("DISPATCH311_RECONCILE_AFTER_SECS must be a whole number of seconds")?,
        );
        // no default key: a key everyone knows would seal nothing
        let keys = std::env::var(contact_crypto::KEYS_VAR).with_context(|| {
            format!(
                "{} is required: the keys that seal complainant contacts, as id:base64 \
                 (e.g. k1:$(head -c 32 /dev/urandom | base64)); `make run` makes a development key",
                contact_crypto::KEYS_VAR
            )
        })?;
        let contact_cipher = ContactCipher::parse(&keys)?;
        let retention = RetentionPolicy {
            personal_data_after: days("DISPATCH311_CONTACT_RETENTION_DAYS", 30.0)?,
            voice_recordings_after: days("DISPATCH311_VOICE_RETENTION_DAYS", 14.0)?,
            unfiled_photos_after: days("DISPATCH311_UNFILED_PHOTO_DAYS", 1.0)?,
            every: chrono::Duration::seconds(
                env_or("DISPATCH311_RETENTION_SWEEP_SECS", "600")
                    .parse::<i64>()
                    .ok()
                    .filter(|s| (1..=86_400).contains(s))
                    .context("DISPATCH311_RETENTION_SWEEP_SECS must be 1 to 86400 seconds")?,
            ),
            batch: RETENTION_BATCH,
        };
        Ok(Self {
            listen_addr,
            db: DbConfig::from_env(crate::SCHEMA)?,
            queue: QueueConfig::from_env()?,
            auth: dispatch311_auth::AuthConfig::from_env()?,
            tls: dispatch311_grpc::tls::TlsConfig::from_env()?,
            city_bounds,
            reconcile_after,
            contact_cipher,
            retention,
        })
    }
}

/// Requests (and recordings) one retention sweep handles; a full batch
/// schedules the next sweep at once.
const RETENTION_BATCH: i64 = 1_000;

/// A retention period in days (fractions allowed) from `name`, or `default`.
fn days(name: &str, default: f64) -> anyhow::Result<chrono::Duration> {
    let days = match std::env::var(name).ok().filter(|v| !v.trim().is_empty()) {
        None => default,
        Some(text) => text
            .trim()
            .parse::<f64>()
            .with_context(|| format!("{name} must be a number of days"))?,
    };
    anyhow::ensure!(
        days.is_finite() && days > 0.0 && days <= 3_650.0,
        "{name} must be more than 0 and at most 3650 days"
    );
    Ok(chrono::Duration::milliseconds((days * 86_400_000.0) as i64))
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}
