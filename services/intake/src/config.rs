//! Intake's configuration, from the environment (documented in the README).

use std::{net::SocketAddr, time::Duration};

use anyhow::Context as _;
use dispatch311_db::DbConfig;
use dispatch311_domain::CityBounds;
use dispatch311_queue::QueueConfig;

#[derive(Debug, Clone)]
pub struct IntakeConfig {
    /// `DISPATCH311_INTAKE_ADDR`, default `0.0.0.0:50051`; port 0 picks a free port.
    pub listen_addr: SocketAddr,
    pub db: DbConfig,
    pub queue: QueueConfig,
    /// `DISPATCH311_CITY_BOUNDS` as `min_lat,min_lon,max_lat,max_lon`; default New York City.
    pub city_bounds: CityBounds,
    /// `DISPATCH311_RECONCILE_AFTER_SECS`, default 120: a request still not
    /// routed or queued after this long gets its route job published again.
    pub reconcile_after: Duration,
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
        Ok(Self {
            listen_addr,
            db: DbConfig::from_env(crate::SCHEMA)?,
            queue: QueueConfig::from_env()?,
            city_bounds,
            reconcile_after,
        })
    }
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}
