//! Dispatch's configuration, from the environment (documented in the README).

use std::{net::SocketAddr, time::Duration};

use anyhow::Context as _;
use dispatch311_db::DbConfig;
use dispatch311_queue::QueueConfig;

#[derive(Debug, Clone)]
pub struct DispatchConfig {
    /// `DISPATCH311_DISPATCH_ADDR`, default `0.0.0.0:50053`; port 0 picks a free port.
    pub listen_addr: SocketAddr,
    pub db: DbConfig,
    pub queue: QueueConfig,
    /// Bearer-token verification and rate limits (`DISPATCH311_AUTH_*`,
    /// `DISPATCH311_RATE_LIMIT_*`; see `dispatch311_auth`).
    pub auth: dispatch311_auth::AuthConfig,
    /// Mutual TLS on the server and the clients (`DISPATCH311_TLS_*`; off
    /// when unset; see `dispatch311_grpc::tls`).
    pub tls: Option<dispatch311_grpc::tls::TlsConfig>,
    pub rules: DispatchRules,
    pub event_log: EventLogConfig,
    /// `DISPATCH311_TIMER_RECONCILE_SECS` (60): how often the timers of open
    /// jobs are compared with the queue, and those Redis lost armed again
    /// (also once at start).
    pub timer_reconcile: Duration,
}

/// Signed checkpoints of the event log (see `checkpoints`).
#[derive(Clone)]
pub struct EventLogConfig {
    /// `DISPATCH311_EVENT_LOG_KEY` (required): a PKCS#8 PEM file with the
    /// Ed25519 key checkpoints are signed with. Kept outside PostgreSQL, so
    /// whoever owns the database cannot sign a rewritten log.
    pub signing_key: ed25519_dalek::SigningKey,
    /// `DISPATCH311_EVENT_LOG_NAME` (`dispatch311/event-log`): the log's name,
    /// which is also the key's name in the signed notes.
    pub name: String,
    /// `DISPATCH311_EVENT_LOG_VERIFIER_KEYS`: verifier keys of earlier signing
    /// keys, comma-separated, so checkpoints signed before a rotation still verify.
    pub earlier_keys: Vec<ed25519_dalek::VerifyingKey>,
    /// `DISPATCH311_CHECKPOINT_SECS` (10): how often a checkpoint is signed when
    /// the log grew. A rewrite of events not yet in a checkpoint goes unseen,
    /// so this is the window.
    pub interval: Duration,
}

impl std::fmt::Debug for EventLogConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLogConfig")
            .field("name", &self.name)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl EventLogConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        let path = std::env::var("DISPATCH311_EVENT_LOG_KEY")
            .ok()
            .filter(|p| !p.trim().is_empty())
            .context(
                "DISPATCH311_EVENT_LOG_KEY must name the PKCS#8 PEM file of the Ed25519 key that signs \
                 the event log's checkpoints (`dispatch311-cli dev-keys` makes one for development)",
            )?;
        let pem = std::fs::read_to_string(path.trim())
            .with_context(|| format!("reading DISPATCH311_EVENT_LOG_KEY {path}"))?;
        let signing_key = dispatch311_domain::event_log::signing_key_from_pem(&pem)
            .with_context(|| format!("DISPATCH311_EVENT_LOG_KEY {path}"))?;
        let name = std::env::var("DISPATCH311_EVENT_LOG_NAME")
            .ok()
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "dispatch311/event-log".to_owned());
        anyhow::ensure!(
            !name.contains(['+', ' ', '\n']),
            "DISPATCH311_EVENT_LOG_NAME must not contain '+', spaces or line breaks"
        );
        let earlier_keys = std::env::var("DISPATCH311_EVENT_LOG_VERIFIER_KEYS")
            .unwrap_or_default()
            .split(',')
            .filter(|k| !k.trim().is_empty())
            .map(|k| {
                dispatch311_domain::event_log::parse_verifier_key(k)
                    .map(|(_, key)| key)
                    .with_context(|| "DISPATCH311_EVENT_LOG_VERIFIER_KEYS")
            })
            .collect::<anyhow::Result<_>>()?;
        let interval = env_number("DISPATCH311_CHECKPOINT_SECS")?
            .map_or(Duration::from_secs(10), Duration::from_secs_f64);
        anyhow::ensure!(
            !interval.is_zero(),
            "DISPATCH311_CHECKPOINT_SECS must be above 0"
        );
        Ok(Self {
            signing_key,
            name,
            earlier_keys,
            interval,
        })
    }
}

/// The accountability thresholds and timers, each from its own variable.
#[derive(Debug, Clone, PartialEq)]
pub struct DispatchRules {
    /// `DISPATCH311_ACK_TIMEOUT_SECS` (300): an assignment not acknowledged
    /// within this goes back to the queue and the supervisor is alerted.
    pub ack_timeout: Duration,
    /// `DISPATCH311_ON_SCENE_RADIUS_M` (150): how near the incident an arrival
    /// must be reported for an outcome that claims a visit.
    pub on_scene_radius_m: f64,
    /// `DISPATCH311_FAST_CLOSURE_SECS` (300): closures sooner than this after
    /// assignment are flagged.
    pub fast_closure: Duration,
    /// `DISPATCH311_MIN_ON_SCENE_SECS` (60): shorter stays on scene are flagged.
    pub min_on_scene: Duration,
    /// `DISPATCH311_CLOSURE_BURST_COUNT` (5) closures by one officer within
    /// `DISPATCH311_CLOSURE_BURST_SECS` (600) are flagged.
    pub burst_count: u32,
    pub burst_window: Duration,
    /// `DISPATCH311_FAR_FROM_SCENE_M` (500): closing from farther is flagged.
    pub far_from_scene_m: f64,
    /// `DISPATCH311_SLA_OVERRIDE_SECS` (unset): for tests and drills, every
    /// job's SLA is due this long after it is queued, whatever routing said.
    pub sla_override: Option<Duration>,
}

impl Default for DispatchRules {
    fn default() -> Self {
        Self {
            ack_timeout: Duration::from_secs(300),
            on_scene_radius_m: 150.0,
            fast_closure: Duration::from_secs(300),
            min_on_scene: Duration::from_secs(60),
            burst_count: 5,
            burst_window: Duration::from_secs(600),
            far_from_scene_m: 500.0,
            sla_override: None,
        }
    }
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
            auth: dispatch311_auth::AuthConfig::from_env()?,
            tls: dispatch311_grpc::tls::TlsConfig::from_env()?,
            rules: DispatchRules::from_env()?,
            event_log: EventLogConfig::from_env()?,
            timer_reconcile: env_number("DISPATCH311_TIMER_RECONCILE_SECS")?
                .filter(|secs| *secs > 0.0)
                .map_or(Duration::from_secs(60), Duration::from_secs_f64),
        })
    }
}

impl DispatchRules {
    pub fn from_env() -> anyhow::Result<Self> {
        let defaults = Self::default();
        let secs = |name: &str, default: Duration| -> anyhow::Result<Duration> {
            Ok(env_number(name)?
                .map(Duration::from_secs_f64)
                .unwrap_or(default))
        };
        Ok(Self {
            ack_timeout: secs("DISPATCH311_ACK_TIMEOUT_SECS", defaults.ack_timeout)?,
            on_scene_radius_m: env_number("DISPATCH311_ON_SCENE_RADIUS_M")?
                .unwrap_or(defaults.on_scene_radius_m),
            fast_closure: secs("DISPATCH311_FAST_CLOSURE_SECS", defaults.fast_closure)?,
            min_on_scene: secs("DISPATCH311_MIN_ON_SCENE_SECS", defaults.min_on_scene)?,
            burst_count: env_number("DISPATCH311_CLOSURE_BURST_COUNT")?
                .map_or(defaults.burst_count, |n| n as u32),
            burst_window: secs("DISPATCH311_CLOSURE_BURST_SECS", defaults.burst_window)?,
            far_from_scene_m: env_number("DISPATCH311_FAR_FROM_SCENE_M")?
                .unwrap_or(defaults.far_from_scene_m),
            sla_override: env_number("DISPATCH311_SLA_OVERRIDE_SECS")?.map(Duration::from_secs_f64),
        })
    }
}

fn env_number(name: &str) -> anyhow::Result<Option<f64>> {
    match std::env::var(name) {
        Ok(value) => {
            let number: f64 = value
                .trim()
                .parse()
                .with_context(|| format!("{name} must be a number"))?;
            anyhow::ensure!(
                number.is_finite() && number >= 0.0,
                "{name} must be a positive number"
            );
            Ok(Some(number))
        }
        Err(_) => Ok(None),
    }
}
