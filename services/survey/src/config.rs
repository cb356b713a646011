//! Survey's configuration, from the environment (documented in the README).

use std::net::SocketAddr;

use anyhow::Context as _;

#[derive(Debug, Clone)]
pub struct SurveyConfig {
    /// `DISPATCH311_SURVEY_ADDR`, default `0.0.0.0:50054`; port 0 picks a free port.
    pub listen_addr: SocketAddr,
}

impl SurveyConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        let listen_addr = std::env::var("DISPATCH311_SURVEY_ADDR")
            .unwrap_or_else(|_| "0.0.0.0:50054".to_string())
            .parse()
            .context("DISPATCH311_SURVEY_ADDR must be host:port")?;
        Ok(Self { listen_addr })
    }
}
