//! Routing's configuration, from the environment (documented in the README).

use std::{net::SocketAddr, path::PathBuf};

use anyhow::Context as _;
use dispatch311_db::DbConfig;
use dispatch311_queue::QueueConfig;

#[derive(Debug, Clone)]
pub struct RoutingConfig {
    /// `DISPATCH311_ROUTING_ADDR`, default `0.0.0.0:50052`; port 0 picks a free port.
    pub listen_addr: SocketAddr,
    pub db: DbConfig,
    pub queue: QueueConfig,
    /// Bearer-token verification and rate limits (`DISPATCH311_AUTH_*`,
    /// `DISPATCH311_RATE_LIMIT_*`; see `dispatch311_auth`).
    pub auth: dispatch311_auth::AuthConfig,
    /// Mutual TLS on the server and the clients (`DISPATCH311_TLS_*`; off
    /// when unset; see `dispatch311_grpc::tls`).
    pub tls: Option<dispatch311_grpc::tls::TlsConfig>,
    /// `DISPATCH311_ROUTING_RULES`: a rules file; default the table built into
    /// the binary (`config/rules.toml`).
    pub rules_path: Option<PathBuf>,
    /// `DISPATCH311_PRECINCT_MAP`: a GeoJSON precinct map; default the small
    /// demo map built into the binary (`config/demo-precincts.geojson`).
    pub precinct_map_path: Option<PathBuf>,
}

impl RoutingConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        let listen_addr = std::env::var("DISPATCH311_ROUTING_ADDR")
            .unwrap_or_else(|_| "0.0.0.0:50052".to_string())
            .parse()
            .context("DISPATCH311_ROUTING_ADDR must be host:port")?;
        let path = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Ok(Self {
            listen_addr,
            db: DbConfig::from_env(crate::SCHEMA)?,
            queue: QueueConfig::from_env()?,
            auth: dispatch311_auth::AuthConfig::from_env()?,
            tls: dispatch311_grpc::tls::TlsConfig::from_env()?,
            rules_path: path("DISPATCH311_ROUTING_RULES"),
            precinct_map_path: path("DISPATCH311_PRECINCT_MAP"),
        })
    }
}
