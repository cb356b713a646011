//! Routing's configuration: flags or environment variables, typed and
//! checked at start (`dispatch311-routing --help` lists them all).

use std::{net::SocketAddr, path::PathBuf};

use clap::Parser as _;
use dispatch311_grpc::startup::{ServiceArgs, ServiceSettings};

/// Every setting of the routing service.
#[derive(Debug, clap::Parser)]
#[command(
    name = "dispatch311-routing",
    version,
    about = "dispatch311's routing service: which agency, precinct and priority each request goes to, and why",
    after_help = dispatch311_telemetry::ENVIRONMENT_HELP
)]
pub struct RoutingArgs {
    /// Where the gRPC API listens; port 0 picks a free port.
    #[arg(
        long = "listen",
        env = "DISPATCH311_ROUTING_ADDR",
        value_name = "DISPATCH311_ROUTING_ADDR",
        default_value = "0.0.0.0:50052"
    )]
    pub listen_addr: SocketAddr,
    /// A rules file (default: the table built into the binary, config/rules.toml).
    #[arg(
        long = "rules",
        env = "DISPATCH311_ROUTING_RULES",
        value_name = "DISPATCH311_ROUTING_RULES"
    )]
    pub rules_path: Option<PathBuf>,
    /// A GeoJSON precinct map (default: the city's 78 NYPD precincts built
    /// into the binary, config/nypd-precincts.geojson).
    #[arg(
        long = "precinct-map",
        env = "DISPATCH311_PRECINCT_MAP",
        value_name = "DISPATCH311_PRECINCT_MAP"
    )]
    pub precinct_map_path: Option<PathBuf>,
    /// A database of routing's own (e.g. on an instance apart); unset: the
    /// shared `DATABASE_URL`.
    #[arg(
        long = "routing-database-url",
        env = "DISPATCH311_ROUTING_DATABASE_URL",
        value_name = "DISPATCH311_ROUTING_DATABASE_URL",
        hide_env_values = true
    )]
    pub own_database_url: Option<String>,
    #[command(flatten)]
    pub service: ServiceArgs,
}

#[derive(Debug, Clone)]
pub struct RoutingConfig {
    pub listen_addr: SocketAddr,
    /// Database, queue, token checks, TLS and the metrics endpoint.
    pub service: ServiceSettings,
    pub rules_path: Option<PathBuf>,
    pub precinct_map_path: Option<PathBuf>,
}

impl RoutingConfig {
    /// The settings of this process: its flags and environment. A bad or
    /// missing value ends the process with a message naming the variable.
    pub fn load() -> anyhow::Result<Self> {
        Self::from_args(RoutingArgs::parse())
    }

    pub fn from_args(args: RoutingArgs) -> anyhow::Result<Self> {
        let path = |p: Option<PathBuf>| p.filter(|p| !p.as_os_str().is_empty());
        Ok(Self {
            listen_addr: args.listen_addr,
            service: args
                .service
                .settings(crate::SCHEMA)?
                .with_database_url(args.own_database_url),
            rules_path: path(args.rules_path),
            precinct_map_path: path(args.precinct_map_path),
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn every_setting_has_a_flag_and_a_variable_of_its_own() {
        RoutingArgs::command().debug_assert();
    }
}
