//! Dispatch's configuration, from the environment (documented in the README).

use std::net::SocketAddr;

use anyhow::Context as _;
use dispatch311_db::DbConfig;
use dispatch311_queue::QueueConfig;

#[derive(Debug, Clone)]
pub struct DispatchConfig {
    /// `DISPATCH311_DISPATCH_ADDR`, default `0.0.0.0:50053`; port 0 picks a free port.
    pub listen_addr: SocketAddr,
    pub db: DbConfig,
    pub queue: QueueConfig,
}

impl DispatchConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        let listen_addr = std::env::var("DISPATCH311_DISPATCH_ADDR")
            .unwrap_or_else(|_| "0.0.0.0:50053".to_string())
            .parse()
            .context("DISPATCH311_DISPATCH_ADDR must be host:port")?;
        Ok(Self {
            listen_addr,
            db: DbConfig::from_env(crate::SCHEMA)?,
            queue: QueueConfig::from_env()?,
        })
    }
}
