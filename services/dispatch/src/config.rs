//! Dispatch's configuration: flags or environment variables, typed and
//! checked at start (`dispatch311-dispatch --help` lists them all).

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context as _;
use clap::Parser as _;
use dispatch311_domain::settings::{metres, positive_seconds, seconds};
use dispatch311_grpc::startup::{ServiceArgs, ServiceSettings};
use dispatch311_photos::PhotoStoreArgs;

/// Every setting of the dispatch service.
#[derive(Debug, clap::Parser)]
#[command(
    name = "dispatch311-dispatch",
    version,
    about = "dispatch311's dispatch service: precinct queues, units and the guarded job lifecycle",
    after_help = dispatch311_telemetry::ENVIRONMENT_HELP
)]
pub struct DispatchArgs {
    /// Where the gRPC API listens; port 0 picks a free port.
    #[arg(
        long = "listen",
        env = "DISPATCH311_DISPATCH_ADDR",
        value_name = "DISPATCH311_DISPATCH_ADDR",
        default_value = "0.0.0.0:50053"
    )]
    pub listen_addr: SocketAddr,
    /// Seconds between comparisons of the open jobs' timers with the queue:
    /// those Redis lost are armed again (also once at start).
    #[arg(
        long = "timer-reconcile-secs",
        env = "DISPATCH311_TIMER_RECONCILE_SECS",
        value_name = "DISPATCH311_TIMER_RECONCILE_SECS",
        default_value = "60",
        value_parser = positive_seconds
    )]
    pub timer_reconcile: Duration,
    #[command(flatten)]
    pub rules: DispatchRules,
    #[command(flatten)]
    pub event_log: EventLogArgs,
    /// A database of dispatch's own (e.g. on an instance apart); unset: the
    /// shared `DATABASE_URL`.
    #[arg(
        long = "dispatch-database-url",
        env = "DISPATCH311_DISPATCH_DATABASE_URL",
        value_name = "DISPATCH311_DISPATCH_DATABASE_URL",
        hide_env_values = true
    )]
    pub own_database_url: Option<String>,
    #[command(flatten)]
    pub service: ServiceArgs,
    #[command(flatten)]
    pub photos: PhotoStoreArgs,
}

#[derive(Debug, Clone)]
pub struct DispatchConfig {
    pub listen_addr: SocketAddr,
    /// Database, queue, token checks, TLS and the metrics endpoint.
    pub service: ServiceSettings,
    pub photos: PhotoStoreArgs,
    pub rules: DispatchRules,
    pub event_log: EventLogConfig,
    pub timer_reconcile: Duration,
}

impl DispatchConfig {
    /// The settings of this process: its flags and environment. A bad or
    /// missing value ends the process with a message naming the variable.
    pub fn load() -> anyhow::Result<Self> {
        Self::from_args(DispatchArgs::parse())
    }

    /// Checks what clap cannot (files, keys) and builds the settings.
    pub fn from_args(args: DispatchArgs) -> anyhow::Result<Self> {
        Ok(Self {
            listen_addr: args.listen_addr,
            service: args
                .service
                .settings(crate::SCHEMA)?
                .with_database_url(args.own_database_url),
            photos: args.photos,
            rules: args.rules,
            event_log: args.event_log.config()?,
            timer_reconcile: args.timer_reconcile,
        })
    }
}

/// How the event log's checkpoints are signed.
#[derive(Debug, Clone, clap::Args)]
pub struct EventLogArgs {
    /// The Ed25519 key checkpoints are signed with, a PKCS#8 PEM file kept
    /// outside PostgreSQL, so whoever owns the database cannot sign a
    /// rewritten log (`dispatch311-cli dev-keys` makes one for development).
    #[arg(
        long = "event-log-key",
        env = "DISPATCH311_EVENT_LOG_KEY",
        value_name = "DISPATCH311_EVENT_LOG_KEY"
    )]
    pub signing_key: PathBuf,
    /// The log's name, which is also the key's name in the signed notes.
    #[arg(
        long = "event-log-name",
        env = "DISPATCH311_EVENT_LOG_NAME",
        value_name = "DISPATCH311_EVENT_LOG_NAME",
        default_value = "dispatch311/event-log",
        value_parser = log_name
    )]
    pub log_name: String,
    /// Verifier keys of earlier signing keys, comma-separated, so checkpoints
    /// signed before a rotation still verify.
    #[arg(
        long = "event-log-verifier-keys",
        env = "DISPATCH311_EVENT_LOG_VERIFIER_KEYS",
        value_name = "DISPATCH311_EVENT_LOG_VERIFIER_KEYS",
        default_value = ""
    )]
    pub verifier_keys: String,
    /// Seconds between checkpoints when the log grew: a rewrite of events not
    /// yet in a checkpoint goes unseen, so this is the window.
    #[arg(
        long = "checkpoint-secs",
        env = "DISPATCH311_CHECKPOINT_SECS",
        value_name = "DISPATCH311_CHECKPOINT_SECS",
        default_value = "10",
        value_parser = positive_seconds
    )]
    pub checkpoint_interval: Duration,
}

fn log_name(text: &str) -> Result<String, String> {
    let name = text.trim();
    if name.is_empty() || name.contains(['+', ' ', '\n']) {
        return Err("must be a name without '+', spaces or line breaks".to_owned());
    }
    Ok(name.to_owned())
}

impl EventLogArgs {
    fn config(&self) -> anyhow::Result<EventLogConfig> {
        let path = self.signing_key.display();
        let pem = std::fs::read_to_string(&self.signing_key)
            .with_context(|| format!("reading DISPATCH311_EVENT_LOG_KEY {path}"))?;
        let signing_key = dispatch311_domain::event_log::signing_key_from_pem(&pem)
            .with_context(|| format!("DISPATCH311_EVENT_LOG_KEY {path}"))?;
        let earlier_keys = self
            .verifier_keys
            .split(',')
            .filter(|k| !k.trim().is_empty())
            .map(|k| {
                dispatch311_domain::event_log::parse_verifier_key(k)
                    .map(|(_, key)| key)
                    .context("DISPATCH311_EVENT_LOG_VERIFIER_KEYS")
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(EventLogConfig {
            signing_key,
            name: self.log_name.clone(),
            earlier_keys,
            interval: self.checkpoint_interval,
        })
    }
}

/// Signed checkpoints of the event log (see `checkpoints`).
#[derive(Clone)]
pub struct EventLogConfig {
    pub signing_key: ed25519_dalek::SigningKey,
    pub name: String,
    pub earlier_keys: Vec<ed25519_dalek::VerifyingKey>,
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

/// The accountability thresholds and timers.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct DispatchRules {
    /// Seconds an assignment may wait for its acknowledgement before the job
    /// goes back to the queue and the supervisor is alerted.
    #[arg(
        long = "ack-timeout-secs",
        env = "DISPATCH311_ACK_TIMEOUT_SECS",
        value_name = "DISPATCH311_ACK_TIMEOUT_SECS",
        default_value = "300",
        value_parser = seconds
    )]
    pub ack_timeout: Duration,
    /// Metres from the incident within which an arrival must be reported for
    /// an outcome that claims a visit.
    #[arg(
        long = "on-scene-radius-m",
        env = "DISPATCH311_ON_SCENE_RADIUS_M",
        value_name = "DISPATCH311_ON_SCENE_RADIUS_M",
        default_value = "150",
        value_parser = metres
    )]
    pub on_scene_radius_m: f64,
    /// Closures sooner than this many seconds after assignment are flagged.
    #[arg(
        long = "fast-closure-secs",
        env = "DISPATCH311_FAST_CLOSURE_SECS",
        value_name = "DISPATCH311_FAST_CLOSURE_SECS",
        default_value = "300",
        value_parser = seconds
    )]
    pub fast_closure: Duration,
    /// Shorter stays on scene, in seconds, are flagged.
    #[arg(
        long = "min-on-scene-secs",
        env = "DISPATCH311_MIN_ON_SCENE_SECS",
        value_name = "DISPATCH311_MIN_ON_SCENE_SECS",
        default_value = "60",
        value_parser = seconds
    )]
    pub min_on_scene: Duration,
    /// This many closures by one officer within the burst window are flagged.
    #[arg(
        long = "closure-burst-count",
        env = "DISPATCH311_CLOSURE_BURST_COUNT",
        value_name = "DISPATCH311_CLOSURE_BURST_COUNT",
        default_value_t = 5,
        value_parser = clap::value_parser!(u32).range(1..=1_000)
    )]
    pub burst_count: u32,
    /// The burst window, in seconds.
    #[arg(
        long = "closure-burst-secs",
        env = "DISPATCH311_CLOSURE_BURST_SECS",
        value_name = "DISPATCH311_CLOSURE_BURST_SECS",
        default_value = "600",
        value_parser = seconds
    )]
    pub burst_window: Duration,
    /// Closing from farther than this many metres from the incident is flagged.
    #[arg(
        long = "far-from-scene-m",
        env = "DISPATCH311_FAR_FROM_SCENE_M",
        value_name = "DISPATCH311_FAR_FROM_SCENE_M",
        default_value = "500",
        value_parser = metres
    )]
    pub far_from_scene_m: f64,
    /// For tests and drills: every job's SLA is due this many seconds after it
    /// is queued, whatever routing said.
    #[arg(
        long = "sla-override-secs",
        env = "DISPATCH311_SLA_OVERRIDE_SECS",
        value_name = "DISPATCH311_SLA_OVERRIDE_SECS",
        value_parser = seconds
    )]
    pub sla_override: Option<Duration>,
    /// Whether a routed report of an open job's incident is linked to that
    /// job (routing's duplicate rule for its type); false: every request is
    /// a job of its own, for a rollout or a test of one job at a time.
    #[arg(
        long = "link-duplicates",
        env = "DISPATCH311_LINK_DUPLICATES",
        value_name = "DISPATCH311_LINK_DUPLICATES",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub link_duplicates: bool,
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
            link_duplicates: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(clap::Parser)]
    struct Rules {
        #[command(flatten)]
        rules: DispatchRules,
    }

    #[test]
    fn every_setting_has_a_flag_and_a_variable_of_its_own() {
        use clap::CommandFactory as _;
        DispatchArgs::command().debug_assert();
    }

    #[test]
    fn unset_the_rules_are_their_defaults_and_nonsense_is_refused() {
        // (a DISPATCH311_* rule variable set around `cargo test` would change the first)
        let parsed = Rules::try_parse_from(["dispatch"]).unwrap();
        assert_eq!(parsed.rules, DispatchRules::default());
        let parsed = Rules::try_parse_from(["dispatch", "--ack-timeout-secs", "2.5"]).unwrap();
        assert_eq!(parsed.rules.ack_timeout, Duration::from_millis(2_500));
        for bad in [
            "--on-scene-radius-m=-5",
            "--ack-timeout-secs=soon",
            "--closure-burst-count=0",
        ] {
            let error = Rules::try_parse_from(["dispatch", bad])
                .err()
                .unwrap_or_else(|| panic!("{bad:?} accepted"))
                .to_string();
            // the message names the variable an operator sets
            assert!(error.contains("DISPATCH311_"), "{error}");
        }
    }
}
