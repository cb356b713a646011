//! Queue settings.

use std::time::Duration;

use crate::error::{QueueError, Result};

/// Settings shared by publishers and consumers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// Redis URL, e.g. `redis://127.0.0.1:6379`.
    pub redis_url: String,
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

impl QueueConfig {
    /// Defaults, overridden by the environment where set: `REDIS_URL`,
    /// `DISPATCH311_REDIS_PREFIX`, `DISPATCH311_QUEUE_MAX_ATTEMPTS`,
    /// `DISPATCH311_QUEUE_CLAIM_IDLE_MS` and `DISPATCH311_QUEUE_CONCURRENCY`.
    pub fn from_env() -> Result<Self> {
        let mut config = Self::default();
        if let Ok(url) = std::env::var("REDIS_URL") {
            config.redis_url = url;
        }
        if let Ok(prefix) = std::env::var("DISPATCH311_REDIS_PREFIX") {
            config.key_prefix = prefix;
        }
        if let Some(attempts) = env_number("DISPATCH311_QUEUE_MAX_ATTEMPTS")? {
            config.max_attempts = attempts as u32;
        }
        if let Some(ms) = env_number("DISPATCH311_QUEUE_CLAIM_IDLE_MS")? {
            config.claim_idle = Duration::from_millis(ms);
        }
        if let Some(n) = env_number("DISPATCH311_QUEUE_CONCURRENCY")? {
            config.concurrency = n as usize;
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks the values that would otherwise fail later and less clearly.
    pub fn validate(&self) -> Result<()> {
        if self.key_prefix.contains(['{', '}']) {
            return Err(QueueError::Config(format!(
                "key prefix {:?} must not contain braces",
                self.key_prefix
            )));
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

fn env_number(name: &str) -> Result<Option<u64>> {
    match std::env::var(name) {
        Ok(value) => value.trim().parse().map(Some).map_err(|_| {
            QueueError::Config(format!("{name} must be a whole number, not {value:?}"))
        }),
        Err(_) => Ok(None),
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
}
