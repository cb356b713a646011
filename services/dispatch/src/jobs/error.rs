//! Why a change to a job or a unit did not happen, in the domain's words.
//! The gRPC adapter turns each into a status (`api::status`), once.

use dispatch311_grpc::status::StorageFailure as _;
use dispatch311_queue::QueueError;
use uuid::Uuid;

use crate::{jobs::state_machine::Refusal, store::StoreError};

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// There is no such job, unit, photo…
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    /// A rule refused the change (the rule names it, e.g.
    /// `POLICE_MATTER_NOT_OUTSIDE_JURISDICTION`); `subject` is `jobs/<id>` or
    /// `units/<id>`. Nothing changed.
    #[error("refused by {}: {}", .refusal.rule, .refusal.description)]
    Refused { refusal: Refusal, subject: String },
    /// The actor may not do this to this job (not its unit's officer…).
    #[error("not allowed: {0}")]
    NotAllowed(String),
    /// An argument that only the job as it is shows to be wrong (a photo
    /// index past the job's photos, a reassignment without a reason).
    #[error("{field}: {description}")]
    BadArgument {
        field: &'static str,
        description: String,
    },
    /// The job or unit with this id changed under every attempt.
    #[error("{0} changed under every attempt")]
    Busy(Uuid),
    /// The object store holding the photos could not be read.
    #[error("the photo store cannot be read")]
    PhotoStore(#[source] dispatch311_photos::PhotoStoreError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl JobError {
    pub fn not_found(what: &'static str, id: impl ToString) -> Self {
        Self::NotFound {
            what,
            id: id.to_string(),
        }
    }

    /// A refusal of a change to job `job_id` by `rule`.
    pub fn refused(rule: &'static str, job_id: Uuid, description: impl Into<String>) -> Self {
        Refusal::new(rule, description).for_job(job_id)
    }

    pub fn bad_argument(field: &'static str, description: impl Into<String>) -> Self {
        Self::BadArgument {
            field,
            description: description.into(),
        }
    }

    /// Whether the same change can never succeed as asked (a refusal, a
    /// missing job, an actor or argument the job rules out): a queued job
    /// that fails so is dead-lettered, not retried.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::NotFound { .. }
                | Self::Refused { .. }
                | Self::NotAllowed(_)
                | Self::BadArgument { .. }
        )
    }

    /// Whether retrying later may succeed (PostgreSQL or Redis was away).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Store(e) if e.unreachable_dependency().is_some())
    }
}

impl From<sqlx::Error> for JobError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(StoreError::Database(e))
    }
}

impl From<QueueError> for JobError {
    fn from(e: QueueError) -> Self {
        Self::Store(StoreError::Queue(e))
    }
}

impl Refusal {
    /// The refusal of a change to job `job_id`.
    pub fn for_job(self, job_id: Uuid) -> JobError {
        JobError::Refused {
            refusal: self,
            subject: format!("jobs/{job_id}"),
        }
    }

    /// The refusal of a change to unit `unit_id`.
    pub fn for_unit(self, unit_id: Uuid) -> JobError {
        JobError::Refused {
            refusal: self,
            subject: format!("units/{unit_id}"),
        }
    }
}
