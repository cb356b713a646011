//! The one error type of the queue library.

/// What can go wrong talking to the queue.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Redis refused a command or could not be reached.
    #[error("redis error: {0}")]
    Redis(#[from] redis::RedisError),
    /// The outbox table could not be read or written.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A configuration value is unusable, e.g. a key prefix containing a brace.
    #[error("invalid queue configuration: {0}")]
    Config(String),
    /// Fewer replicas than `wait_replicas` confirmed a publish in time.
    #[error("jobs for queue {queue:?} reached {replicas} replica(s), {wanted} wanted")]
    NotReplicated {
        queue: String,
        replicas: i64,
        wanted: u32,
    },
    /// A queue name, group name or job kind that cannot be used in a key or an entry.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidName {
        what: &'static str,
        value: String,
        reason: &'static str,
    },
}

/// Result of queue operations.
pub type Result<T, E = QueueError> = std::result::Result<T, E>;
