//! Redis key names of a queue.

use crate::error::{QueueError, Result};

/// The keys of one queue, all in the same Redis Cluster slot (the queue name is the
/// hash tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueKeys {
    /// Stream of jobs ready for delivery or in flight.
    pub stream: String,
    /// Sorted set of scheduled jobs and retries, scored by due time in ms.
    pub delayed: String,
    /// Stream of dead-lettered jobs.
    pub dead: String,
}

impl QueueKeys {
    /// Keys of `queue` under `prefix` (validated by the caller's config).
    pub fn new(prefix: &str, queue: &str) -> Result<Self> {
        validate_name("queue name", queue)?;
        let base = format!("{prefix}dispatch311:{{{queue}}}");
        Ok(Self {
            stream: format!("{base}:stream"),
            delayed: format!("{base}:delayed"),
            dead: format!("{base}:dead"),
        })
    }
}

/// Queue names, group names and job kinds end up in keys, entry fields and the
/// header of delayed-set members: no braces (hash tags), no whitespace or control
/// characters (the delayed-set header is newline-separated).
pub(crate) fn validate_name(what: &'static str, value: &str) -> Result<()> {
    let reason = if value.is_empty() {
        "must not be empty"
    } else if value.contains(['{', '}']) {
        "must not contain braces"
    } else if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        "must not contain whitespace or control characters"
    } else {
        return Ok(());
    };
    Err(QueueError::InvalidName {
        what,
        value: value.to_owned(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_the_queue_hash_tag() {
        let keys = QueueKeys::new("t1:", "route").unwrap();
        assert_eq!(keys.stream, "t1:dispatch311:{route}:stream");
        assert_eq!(keys.delayed, "t1:dispatch311:{route}:delayed");
        assert_eq!(keys.dead, "t1:dispatch311:{route}:dead");
    }

    #[test]
    fn rejects_names_that_break_keys() {
        for bad in ["", "a{b", "a}b", "a b", "a\nb"] {
            assert!(QueueKeys::new("", bad).is_err(), "{bad:?} accepted");
        }
    }
}
