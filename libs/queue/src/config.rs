//! Queue settings.

use std::time::Duration;

use crate::error::{QueueError, Result};

/// Settings shared by publishers and consumers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// Redis URL, e.g. `redis://127.0.0.1:6379`; with `cluster`, one or more
    /// nodes of the cluster separated by commas (the rest are discovered).
    pub redis_url: String,
    /// Talk to a Redis Cluster: commands go to the node owning their slot and
    /// follow its failovers.
    pub cluster: bool,
    /// Replicas that must hold a published job before publishing counts as
    /// done (`WAIT`): with a replica per master, a job the outbox has let go
    /// of survives the failover of its master. 0 does not wait.
    pub wait_replicas: u32,
    /// Prepended to every key; empty in production, unique per test. Must not contain
    /// `{` or `}`, which would change the Redis Cluster hash tag of the keys.
    pub key_prefix: String,
    /// Deliveries of one job before it is dead-lettered (the first delivery counts).
    pub max_attempts: u32,
    /// Delay before the first retry; doubles on every further attempt.
    pub base_backoff: Duration,
    /// Upper bound of the retry delay.
    pub max_backoff: Duration,
    /// A pending job idle longer than this belongs to a consumer that died; another
    /// consumer claims it. Live consumers refresh their jobs well within this time.
    pub claim_idle: Duration,
    /// How long one read waits for new jobs; also bounds how long shutdown waits for a
    /// read in progress.
    pub block: Duration,
    /// Jobs one consumer handles at the same time.
    pub concurrency: usize,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            redis_url: "redis://127.0.0.1:6379".to_owned(),
            cluster: false,
            wait_replicas: 0,
            key_prefix: String::new(),
            max_attempts: 5,
            base_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            claim_idle: Duration::from_secs(30),
            block: Duration::from_secs(2),
            concurrency: 32,
        }
    }
}

/// The queue settings every service takes, from flags or the environment.
#[derive(Debug, Clone, clap::Args)]
pub struct QueueArgs {
    /// The Redis server the job queues live in; with `--redis-cluster`, one or
    /// more nodes of the Redis Cluster, separated by commas.
    #[arg(
        long = "redis-url",
        env = "REDIS_URL",
        value_name = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        hide_env_values = true
    )]
    pub redis_url: String,
    /// The Redis behind `REDIS_URL` is a Redis Cluster.
    #[arg(
        long = "redis-cluster",
        env = "DISPATCH311_REDIS_CLUSTER",
        value_name = "DISPATCH311_REDIS_CLUSTER",
        default_value_t = false,
        action = clap::ArgAction::Set
    )]
    pub cluster: bool,
    /// Replicas that must hold each published job before its outbox row is
    /// deleted (Redis `WAIT`); 0 does not wait. Set it to 1 on a cluster with a
    /// replica per master, so a master's failover loses no job.
    #[arg(
        long = "redis-wait-replicas",
        env = "DISPATCH311_REDIS_WAIT_REPLICAS",
        value_name = "DISPATCH311_REDIS_WAIT_REPLICAS",
        default_value_t = 0,
        value_parser = clap::value_parser!(u32).range(0..=16)
    )]
    pub wait_replicas: u32,
    /// Prepended to every Redis key: empty in production, one per test run.
    #[arg(
        long = "redis-prefix",
        env = "DISPATCH311_REDIS_PREFIX",
        value_name = "DISPATCH311_REDIS_PREFIX",
        default_value = ""
    )]
    pub key_prefix: String,
    /// Deliveries of one job before it is dead-lettered.
    #[arg(
        long = "queue-max-attempts",
        env = "DISPATCH311_QUEUE_MAX_ATTEMPTS",
        value_name = "DISPATCH311_QUEUE_MAX_ATTEMPTS",
        default_value_t = 5,
        value_parser = clap::value_parser!(u32).range(1..=1_000)
    )]
    pub max_attempts: u32,
    /// Milliseconds a delivered job may stay unacknowledged before another
    /// consumer takes it over (its consumer is presumed dead).
    #[arg(
        long = "queue-claim-idle-ms",
        env = "DISPATCH311_QUEUE_CLAIM_IDLE_MS",
        value_name = "DISPATCH311_QUEUE_CLAIM_IDLE_MS",
        default_value = "30000",
        value_parser = dispatch311_domain::settings::positive_millis
    )]
    pub claim_idle: Duration,
    /// Jobs one consumer handles at the same time.
    #[arg(
        long = "queue-concurrency",
        env = "DISPATCH311_QUEUE_CONCURRENCY",
        value_name = "DISPATCH311_QUEUE_CONCURRENCY",
        default_value_t = 32,
        value_parser = clap::value_parser!(u32).range(1..=10_000)
    )]
    pub concurrency: u32,
}

impl QueueArgs {
    /// The settings, checked.
    pub fn config(&self) -> Result<QueueConfig> {
        let config = QueueConfig {
            redis_url: self.redis_url.clone(),
            cluster: self.cluster,
            wait_replicas: self.wait_replicas,
            key_prefix: self.key_prefix.clone(),
            max_attempts: self.max_attempts,
            claim_idle: self.claim_idle,
            concurrency: self.concurrency as usize,
            ..QueueConfig::default()
        };
        config.validate()?;
        Ok(config)
    }
}

impl QueueConfig {
    /// Checks the values that would otherwise fail later and less clearly.
    pub fn validate(&self) -> Result<()> {
        if self.key_prefix.contains(['{', '}']) {
            return Err(QueueError::Config(format!(
                "key prefix {:?} must not contain braces",
                self.key_prefix
            )));
        }
        if !self.cluster && self.redis_url.contains(',') {
            return Err(QueueError::Config(
                "REDIS_URL lists several nodes: that is a Redis Cluster (set DISPATCH311_REDIS_CLUSTER=true) or a typo".to_owned(),
            ));
        }
        if self.max_attempts == 0 {
            return Err(QueueError::Config(
                "max_attempts must be at least 1".to_owned(),
            ));
        }
        if self.concurrency == 0 {
            return Err(QueueError::Config(
                "concurrency must be at least 1".to_owned(),
            ));
        }
        if self.claim_idle.is_zero() {
            return Err(QueueError::Config("claim_idle must be positive".to_owned()));
        }
        if self.block.is_zero() {
            // BLOCK 0 means "wait forever" to Redis, which would make shutdown hang
            return Err(QueueError::Config("block must be positive".to_owned()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_a_prefix_that_would_change_the_hash_tag() {
        let config = QueueConfig {
            key_prefix: "a{b}:".to_owned(),
            ..QueueConfig::default()
        };
        assert!(config.validate().is_err());
        assert!(QueueConfig::default().validate().is_ok());
    }

    #[test]
    fn several_nodes_only_for_a_cluster() {
        let nodes = "redis://10.0.0.1:6379,redis://10.0.0.2:6379".to_owned();
        let server = QueueConfig {
            redis_url: nodes.clone(),
            ..QueueConfig::default()
        };
        assert!(server.validate().is_err());
        let cluster = QueueConfig {
            redis_url: nodes,
            cluster: true,
            ..QueueConfig::default()
        };
        assert!(cluster.validate().is_ok());
    }
}
