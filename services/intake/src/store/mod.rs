//! Intake's storage: service requests, their timelines, complainant contacts
//! and the outbox, all in the `intake` schema. Contacts are sealed here
//! before they are written and opened here after they are read: the database
//! never holds them in plain text.

use std::sync::Arc;

use chrono::{DateTime, Datelike, SubsecRound, Utc};
use dispatch311_domain::{
    SrNumber,
    address_columns::AddressColumns,
    jobs::{kinds, queues},
    redact,
    status::{
        channel_from_name, channel_name, lifecycle_rank, priority_from_name, priority_name,
        resolution_from_name, resolution_name, status_from_name, status_name,
    },
    time::{from_timestamp, to_timestamp},
};
use dispatch311_proto::{
    common::v1::{Address, Channel, GeoPoint, Priority, ResolutionCode, ServiceRequestStatus},
    intake::v1::{
        Complainant, ComplainantMessage, ContactRelease, DeletedData, ReleasePurpose, Resolution,
        RetentionDeletion, ServiceRequest, TimelineEntry,
    },
    jobs::v1::{ComplainantAnswer, ComplainantQuestion, RouteJob, StatusUpdate},
};
use dispatch311_queue::{
    batch::{BatchError, Batcher, write_in_rounds},
    outbox,
};
use sqlx::{PgPool, Row, postgres::PgRow};
use uuid::Uuid;

use self::numbers::SrSequence;
use crate::{
    contact_crypto::{ContactCipher, ContactCryptoError},
    validate::{AuditListQuery, ContactReleaseRequest, NewServiceRequest},
};

mod audit;
mod contacts;
mod messages;
mod nearby;
mod numbers;
mod photos;
mod requests;
mod retention;

pub use self::{audit::*, contacts::*, messages::*, nearby::*, requests::*, retention::*};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Queue(#[from] dispatch311_queue::QueueError),
    #[error("cannot seal the complainant contact")]
    Seal(#[source] ContactCryptoError),
    /// Names the request and the key only: never what was sealed.
    #[error("cannot open the complainant contact of request {sr_id} sealed under key {key_id}")]
    Open {
        sr_id: Uuid,
        key_id: String,
        #[source]
        source: ContactCryptoError,
    },
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// The error of a statement that wrote several requests, shared by each.
    #[error(transparent)]
    Shared(Arc<StoreError>),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl dispatch311_grpc::status::StorageFailure for StoreError {
    fn unreachable_dependency(&self) -> Option<&'static str> {
        match self {
            Self::Database(e) => e.unreachable_dependency(),
            Self::Queue(e) => e.unreachable_dependency(),
            // logged with the request id and the key id, never what was sealed
            Self::Seal(_) | Self::Open { .. } => None,
            // the writer of new requests stops only with the process
            Self::Batch(_) => Some("intake"),
            Self::Shared(e) => e.unreachable_dependency(),
        }
    }
}

#[derive(Clone)]
pub struct Store {
    pool: PgPool,
    numbers: Arc<SrSequence>,
    contacts: ContactCipher,
    /// The writer of new requests, shared by every clone (see [`Store::create`]).
    filings: Arc<Batcher<Arc<Filing>, Filed>>,
}

impl Store {
    /// Starts the writer of new requests (it ends with the last clone).
    /// Must be called inside the Tokio runtime.
    pub fn new(pool: PgPool, contacts: ContactCipher) -> Self {
        let writer = pool.clone();
        let filings = Batcher::spawn("filings", MAX_FILINGS_PER_STATEMENT, move |filings| {
            let pool = writer.clone();
            async move { write_filings(&pool, filings).await }
        });
        Self {
            pool,
            numbers: Arc::default(),
            contacts,
            filings: Arc::new(filings),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}
