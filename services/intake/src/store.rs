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

use crate::{
    contact_crypto::{ContactCipher, ContactCryptoError},
    numbers::SrSequence,
    validate::{AuditListQuery, ContactReleaseRequest, NewServiceRequest},
};

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

/// One batch of new requests: a statement per round (an integrator's request
/// id at most once per statement), a result per request.
async fn write_filings(pool: &PgPool, filings: Vec<Arc<Filing>>) -> Vec<Filed> {
    write_in_rounds(
        &filings,
        |filing| (filing.filed_by.clone(), filing.request_id.clone()),
        |round| {
            let statement: Vec<&Filing> = round.into_iter().map(|filing| &**filing).collect();
            async move { insert_filings(pool, &statement).await }
        },
    )
    .await
}

/// What `create` did: a new request, or the one first filed with this key;
/// or nothing, because a photo id is not an upload of this integrator that
/// is free to file.
pub enum Created {
    New(ServiceRequest),
    Existing(ServiceRequest),
    PhotosUnavailable,
}

/// A key to look a request up by.
pub enum SrKey {
    Number(String),
    Id(Uuid),
}

/// Filters and keyset position of a list call.
pub struct ListFilter {
    pub status: Option<ServiceRequestStatus>,
    pub complaint_type: Option<String>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    /// (created_at, sr_id) of the last row of the previous page.
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub limit: usize,
    /// Only the requests this integrator filed.
    pub filed_by: Option<String>,
}

/// What asking for a complainant's contact found.
#[derive(Debug)]
pub enum Release {
    /// No request has this number.
    UnknownRequest,
    /// The request is anonymous, or its contact is gone.
    NoContact,
    /// The complainant did not consent to be contacted: nothing released.
    NoConsent,
    /// The contact, released and recorded.
    Released(Complainant),
}

/// A row of an audit record (a release, a retention deletion) with its
/// keyset position: newest first by (`recorded_at`, `id`).
pub struct AuditRow<T> {
    pub id: i64,
    pub recorded_at: DateTime<Utc>,
    pub record: T,
}

const RECEIVED_MESSAGE: &str = "request received";

/// The tables whose values are sealed with the contact keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedTable {
    /// `complainant_contacts`: name, phone, e-mail.
    Contacts,
    /// `sealed_descriptions`: the complainant's own words, unredacted.
    Descriptions,
}

impl SealedTable {
    pub const ALL: [SealedTable; 2] = [SealedTable::Contacts, SealedTable::Descriptions];

    fn table(self) -> &'static str {
        match self {
            SealedTable::Contacts => "complainant_contacts",
            SealedTable::Descriptions => "sealed_descriptions",
        }
    }

    /// The associated data a value of request `sr_id` is sealed with: a
    /// value copied to another request, or from one table to the other,
    /// does not open.
    pub fn aad(self, sr_id: Uuid) -> Vec<u8> {
        let mut aad = sr_id.as_bytes().to_vec();
        if self == SealedTable::Descriptions {
            aad.extend_from_slice(b"|description");
        }
        aad
    }
}

/// What `answer_message` did.
pub enum Answered {
    Done(ComplainantMessage),
    /// No such question about a request of this integrator.
    Unknown,
    AlreadyAnswered,
}

fn message_from_row(row: &PgRow) -> ComplainantMessage {
    ComplainantMessage {
        message_id: row.get::<Uuid, _>("message_id").to_string(),
        sr_number: row.get("sr_number"),
        from: row.get("asker"),
        question: row.get("question"),
        asked_at: Some(to_timestamp(row.get("asked_at"))),
        answer: row.get::<Option<String>, _>("answer").unwrap_or_default(),
        answered_at: row
            .get::<Option<DateTime<Utc>>, _>("answered_at")
            .map(to_timestamp),
    }
}

/// How long personal data is kept, and how often the sweep runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Contacts and original descriptions: this long after the request
    /// finished (closed, cancelled, referred, duplicate).
    pub personal_data_after: chrono::Duration,
    /// Voice recording references: this long after filing.
    pub voice_recordings_after: chrono::Duration,
    /// Photos uploaded but never filed with a request: this long after upload.
    pub unfiled_photos_after: chrono::Duration,
    /// Time between sweeps.
    pub every: chrono::Duration,
    /// Most requests (and most recordings) one sweep handles.
    pub batch: i64,
}

/// What one retention sweep deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepReport {
    /// Photos uploaded and never filed, whose rows are gone: their files are
    /// deleted after the commit.
    pub unfiled_photos: Vec<Uuid>,
    /// Requests whose personal data was deleted.
    pub requests: u64,
    pub contacts: u64,
    pub descriptions: u64,
    pub voice_recordings: u64,
    /// When the next sweep is due, if this one scheduled it.
    pub next_due_at: Option<DateTime<Utc>>,
}

/// The job that runs a sweep, delivered at `due`.
fn retention_sweep_envelope(
    due: DateTime<Utc>,
) -> Result<dispatch311_proto::jobs::v1::JobEnvelope, dispatch311_queue::QueueError> {
    let sweep = dispatch311_proto::jobs::v1::RetentionSweep {
        due_at: Some(to_timestamp(due)),
    };
    // not about one request: the sweep's id stands in for the request id
    let (mut envelope, _span) = dispatch311_queue::new_traced_envelope(
        queues::RETENTION,
        kinds::RETENTION_SWEEP,
        "retention",
        &sweep,
    )?;
    let at: std::time::SystemTime = due.into();
    envelope.deliver_at = Some(dispatch311_proto::Timestamp::from(at));
    Ok(envelope)
}

/// What a `rekey_batch` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RekeyBatch {
    /// Contacts now sealed under the current key.
    pub resealed: usize,
    /// The last contact looked at: the next batch starts after it; `None`
    /// when no contact was left to look at.
    pub last: Option<Uuid>,
}

#[derive(Clone)]
pub struct Store {
    pool: PgPool,
    numbers: Arc<SrSequence>,
    contacts: ContactCipher,
    /// The writer of new requests, shared by every clone (see [`Store::create`]).
    filings: Arc<Batcher<Arc<Filing>, Filed>>,
}

/// The most new requests one statement writes.
const MAX_FILINGS_PER_STATEMENT: usize = 64;

/// Per new request: whether it was written (false: its request id was
/// filed before), or the error of its statement.
type Filed = Result<bool, Arc<StoreError>>;

/// A new request ready to be written: its row, the complainant's sealed
/// contact and description, and its route job, as [`Store::create`]
/// prepared them.
struct Filing {
    sr_id: Uuid,
    filed_by: String,
    request_id: String,
    channel: Channel,
    trace_id: String,
    created_at: DateTime<Utc>,
    observed_at: DateTime<Utc>,
    /// JSON
    photos: String,
    voice_recording_uri: Option<String>,
    photo_ids: Vec<Uuid>,
    contact: Option<crate::contact_crypto::Sealed>,
    consented: bool,
    description: Option<crate::contact_crypto::Sealed>,
    job: RouteJob,
    route: outbox::OutboxRow,
}

impl Filing {
    /// The request as it was just written.
    fn service_request(&self) -> ServiceRequest {
        let status = ServiceRequestStatus::Received;
        let job = &self.job;
        ServiceRequest {
            sr_id: job.sr_id.clone(),
            sr_number: job.sr_number.clone(),
            complaint_type: job.complaint_type.clone(),
            descriptor: job.descriptor.clone(),
            location: job.location,
            address: job.address.clone(),
            channel: self.channel as i32,
            status: status as i32,
            photo_count: job.photo_count,
            timeline: vec![TimelineEntry {
                status: status as i32,
                occurred_at: Some(to_timestamp(self.created_at)),
                source: "intake".into(),
                message: RECEIVED_MESSAGE.into(),
            }],
            trace_id: self.trace_id.clone(),
            created_at: Some(to_timestamp(self.created_at)),
            updated_at: Some(to_timestamp(self.created_at)),
            ..Default::default()
        }
    }
}

/// New requests as the parallel arrays [`insert_filings`] unnests; their
/// photos are flattened into (`photo_sr_id`, `photo_id`, `photo_position`).
#[derive(Default)]
struct FilingColumns<'a> {
    sr_id: Vec<Uuid>,
    sr_number: Vec<&'a str>,
    request_id: Vec<&'a str>,
    complaint_type: Vec<&'a str>,
    descriptor: Vec<&'a str>,
    latitude: Vec<Option<f64>>,
    longitude: Vec<Option<f64>>,
    address: AddressColumns<'a>,
    photos: Vec<&'a str>,
    channel: Vec<&'static str>,
    trace_id: Vec<&'a str>,
    created_at: Vec<DateTime<Utc>>,
    observed_at: Vec<DateTime<Utc>>,
    description_for_responders: Vec<&'a str>,
    filed_by: Vec<&'a str>,
    voice_recording_uri: Vec<Option<&'a str>>,
    contact_key_id: Vec<Option<&'a str>>,
    contact: Vec<Option<&'a [u8]>>,
    consented: Vec<bool>,
    description_key_id: Vec<Option<&'a str>>,
    description: Vec<Option<&'a [u8]>>,
    route_queue: Vec<&'a str>,
    route: Vec<&'a [u8]>,
    photo_sr_id: Vec<Uuid>,
    photo_id: Vec<Uuid>,
    photo_position: Vec<i32>,
}

impl<'a> FilingColumns<'a> {
    fn push(&mut self, filing: &'a Filing) {
        let job = &filing.job;
        self.sr_id.push(filing.sr_id);
        self.sr_number.push(&job.sr_number);
        self.request_id.push(&filing.request_id);
        self.complaint_type.push(&job.complaint_type);
        self.descriptor.push(&job.descriptor);
        self.latitude.push(job.location.map(|l| l.latitude));
        self.longitude.push(job.location.map(|l| l.longitude));
        self.address.push(job.address.as_ref());
        self.photos.push(&filing.photos);
        self.channel.push(channel_name(filing.channel));
        self.trace_id.push(&filing.trace_id);
        self.created_at.push(filing.created_at);
        self.observed_at.push(filing.observed_at);
        self.description_for_responders
            .push(&job.description_for_responders);
        self.filed_by.push(&filing.filed_by);
        self.voice_recording_uri
            .push(filing.voice_recording_uri.as_deref());
        self.contact_key_id
            .push(filing.contact.as_ref().map(|c| c.key_id.as_str()));
        self.contact
            .push(filing.contact.as_ref().map(|c| c.blob.as_slice()));
        self.consented.push(filing.consented);
        self.description_key_id
            .push(filing.description.as_ref().map(|d| d.key_id.as_str()));
        self.description
            .push(filing.description.as_ref().map(|d| d.blob.as_slice()));
        self.route_queue.push(&filing.route.queue);
        self.route.push(&filing.route.envelope);
        for (position, photo_id) in filing.photo_ids.iter().enumerate() {
            self.photo_sr_id.push(filing.sr_id);
            self.photo_id.push(*photo_id);
            self.photo_position.push(position as i32);
        }
    }
}

/// Writes new requests, each with its first timeline entry, sealed contact
/// and description, photos and route job, in one statement. Returns, per
/// request, whether it was written (false: its request id was filed
/// before). Each (integrator, request id) may appear once.
async fn insert_filings(pool: &PgPool, filings: &[&Filing]) -> StoreResult<Vec<bool>> {
    if filings.is_empty() {
        return Ok(Vec::new());
    }
    let mut c = FilingColumns::default();
    for filing in filings {
        c.push(filing);
    }
    let status = ServiceRequestStatus::Received;
    let written: Vec<Uuid> = sqlx::query_scalar(
        "WITH input AS ( \
            SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::float8[], \
                $7::float8[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], \
                $14::text[], $15::timestamptz[], $16::timestamptz[], $17::text[], $18::text[], $19::text[], \
                $20::text[], $21::bytea[], $22::bool[], $23::text[], $24::bytea[], $25::text[], $26::bytea[]) \
                WITH ORDINALITY \
            AS i(sr_id, sr_number, request_id, complaint_type, descriptor, latitude, longitude, street_address, \
                cross_street, borough, postal_code, photos, channel, trace_id, created_at, observed_at, \
                description_for_responders, filed_by, voice_recording_uri, contact_key_id, contact, consented, \
                description_key_id, description, route_queue, route, ord)), \
         sr AS ( \
            INSERT INTO service_requests (sr_id, sr_number, request_id, complaint_type, descriptor, latitude, \
                longitude, street_address, cross_street, borough, postal_code, photos, channel, \
                status, status_rank, trace_id, created_at, updated_at, observed_at, description_for_responders, \
                filed_by, voice_recording_uri) \
            SELECT i.sr_id, i.sr_number, i.request_id, i.complaint_type, i.descriptor, i.latitude, i.longitude, \
                i.street_address, i.cross_street, i.borough, i.postal_code, i.photos::jsonb, i.channel, \
                $30, $31, i.trace_id, i.created_at, i.created_at, i.observed_at, i.description_for_responders, \
                i.filed_by, i.voice_recording_uri \
            FROM input i ORDER BY i.ord \
            ON CONFLICT (filed_by, request_id) DO NOTHING RETURNING sr_id), \
         written AS (SELECT i.* FROM input i JOIN sr USING (sr_id)), \
         contact AS ( \
            INSERT INTO complainant_contacts (sr_id, key_id, sealed, consent_to_contact) \
            SELECT sr_id, contact_key_id, contact, consented FROM written WHERE contact IS NOT NULL), \
         description AS ( \
            INSERT INTO sealed_descriptions (sr_id, key_id, sealed) \
            SELECT sr_id, description_key_id, description FROM written WHERE description IS NOT NULL), \
         attached AS ( \
            UPDATE photos p SET sr_id = w.sr_id, position = u.position \
            FROM unnest($27::uuid[], $28::uuid[], $29::int4[]) AS u(sr_id, photo_id, position) \
                JOIN written w USING (sr_id) \
            WHERE p.photo_id = u.photo_id AND p.uploaded_by = w.filed_by AND p.sr_id IS NULL), \
         timeline AS ( \
            INSERT INTO timeline_entries (sr_id, status, occurred_at, source, message, transition_key) \
            SELECT sr_id, $30, created_at, 'intake', $32, 'intake:received' FROM written ORDER BY ord), \
         job AS (INSERT INTO outbox (queue, envelope) SELECT route_queue, route FROM written ORDER BY ord) \
         SELECT sr_id FROM sr",
    )
    .bind(&c.sr_id)
    .bind(&c.sr_number)
    .bind(&c.request_id)
    .bind(&c.complaint_type)
    .bind(&c.descriptor)
    .bind(&c.latitude)
    .bind(&c.longitude)
    .bind(&c.address.street_address)
    .bind(&c.address.cross_street)
    .bind(&c.address.borough)
    .bind(&c.address.postal_code)
    .bind(&c.photos)
    .bind(&c.channel)
    .bind(&c.trace_id)
    .bind(&c.created_at)
    .bind(&c.observed_at)
    .bind(&c.description_for_responders)
    .bind(&c.filed_by)
    .bind(&c.voice_recording_uri)
    .bind(&c.contact_key_id)
    .bind(&c.contact)
    .bind(&c.consented)
    .bind(&c.description_key_id)
    .bind(&c.description)
    .bind(&c.route_queue)
    .bind(&c.route)
    .bind(&c.photo_sr_id)
    .bind(&c.photo_id)
    .bind(&c.photo_position)
    .bind(status_name(status))
    .bind(i16::from(lifecycle_rank(status)))
    .bind(RECEIVED_MESSAGE)
    .fetch_all(pool)
    .await?;
    Ok(filings
        .iter()
        .map(|filing| written.contains(&filing.sr_id))
        .collect())
}

const SR_COLUMNS: &str = "sr_id, sr_number, complaint_type, descriptor, latitude, longitude, street_address, \
    cross_street, borough, postal_code, photos, channel, status, agency, precinct, priority, sla_due_at, \
    resolution_code, resolution_text, resolved_at, trace_id, created_at, updated_at, \
    (SELECT count(*) FROM photos p WHERE p.sr_id = service_requests.sr_id) AS uploaded_photos";

impl Store {
    /// Starts the writer of new requests (it ends with the last clone).
    /// Must be called inside the Tokio runtime.
    pub fn new(pool: PgPool, contacts: ContactCipher) -> Self {
        let writer = pool.clone();
        let filings = Batcher::spawn(MAX_FILINGS_PER_STATEMENT, move |filings| {
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

    /// Stores a new request, its first timeline entry, the complainant's
    /// contact and the route job in one statement (one transaction). A request
    /// id seen before returns the request it created, and writes nothing.
    /// Files `new` for the integrator `filed_by`; its request id is unique
    /// among that integrator's requests.
    ///
    /// Requests filed at the same moment are written together: each is
    /// prepared here, in its caller's span, and one writer stores what is
    /// waiting in one statement and one commit (see `dispatch311_queue::batch`),
    /// so under load a commit carries many requests.
    pub async fn create(
        &self,
        new: &NewServiceRequest,
        filed_by: &str,
        trace_id: &str,
    ) -> StoreResult<Created> {
        if !new.photo_ids.is_empty() {
            // the integrator's own uploads, free or already filed with this
            // very request (a repeat of the same request id)
            let usable: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM photos WHERE photo_id = ANY($1) AND uploaded_by = $2 \
                 AND (sr_id IS NULL OR sr_id = \
                      (SELECT sr_id FROM service_requests WHERE filed_by = $2 AND request_id = $3))",
            )
            .bind(&new.photo_ids)
            .bind(filed_by)
            .bind(&new.request_id)
            .fetch_one(&self.pool)
            .await?;
            if usable != new.photo_ids.len() as i64 {
                return Ok(Created::PhotosUnavailable);
            }
        }
        let filing = Arc::new(self.prepare_filing(new, filed_by, trace_id).await?);
        let inserted = match self.filings.submit(Arc::clone(&filing)).await {
            Ok(Ok(inserted)) => inserted,
            Ok(Err(shared)) => return Err(StoreError::Shared(shared)),
            Err(stopped) => return Err(stopped.into()),
        };
        if !inserted {
            let existing = self.get_by_request_id(filed_by, &new.request_id).await?;
            return Ok(Created::Existing(
                existing.expect("a conflicting request id has a row"),
            ));
        }
        // the caller sees what was just committed; no need to read it back
        Ok(Created::New(filing.service_request()))
    }

    /// Everything a new request writes, made ready before its statement.
    async fn prepare_filing(
        &self,
        new: &NewServiceRequest,
        filed_by: &str,
        trace_id: &str,
    ) -> StoreResult<Filing> {
        let sr_id = Uuid::now_v7();
        // PostgreSQL keeps microseconds: the answer must match later reads
        let now = Utc::now().trunc_subsecs(6);
        // the number goes into the route job, so it is drawn first; a repeated
        // request id leaves a gap in the numbers, which is harmless
        let sequence = self.numbers.next(&self.pool).await?;
        let sr_number = SrNumber::new(now.year(), sequence).to_string();
        let photos = serde_json::Value::Array(
            new.photos
                .iter()
                .map(|p| serde_json::json!({"uri": p.uri, "content_type": p.content_type}))
                .collect(),
        )
        .to_string();
        let consented = new
            .complainant
            .as_ref()
            .is_some_and(|c| c.consent_to_contact);
        let contact = match &new.complainant {
            Some(contact) => Some(seal_contact(&self.contacts, sr_id, contact)?),
            None => None,
        };
        let description = if new.description.is_empty() {
            None
        } else {
            Some(
                self.contacts
                    .encrypt(
                        new.description.as_bytes(),
                        &SealedTable::Descriptions.aad(sr_id),
                    )
                    .map_err(StoreError::Seal)?,
            )
        };
        let job = RouteJob {
            sr_id: sr_id.to_string(),
            sr_number,
            complaint_type: new.complaint_type.to_string(),
            descriptor: new.descriptor.clone(),
            location: new.location.map(|(latitude, longitude)| GeoPoint {
                latitude,
                longitude,
            }),
            address: Some(new.address.clone()),
            photo_count: (new.photos.len() + new.photo_ids.len()) as u32,
            photo_ids: new.photo_ids.iter().map(Uuid::to_string).collect(),
            created_at: Some(to_timestamp(now)),
            complainant_consented: consented,
            description_for_responders: redact::for_responders(
                &new.description,
                new.complainant.as_ref().map_or("", |c| c.name.as_str()),
            ),
        };
        let route = outbox::prepare(queues::ROUTE, kinds::ROUTE, &job.sr_id, &job)?;
        Ok(Filing {
            sr_id,
            filed_by: filed_by.to_string(),
            request_id: new.request_id.clone(),
            channel: new.channel,
            trace_id: trace_id.to_string(),
            created_at: now,
            observed_at: new.observed_at,
            photos,
            voice_recording_uri: new.voice_recording_uri.clone(),
            photo_ids: new.photo_ids.clone(),
            contact,
            consented,
            description,
            job,
            route,
        })
    }

    /// The public view of one request with its timeline; with `filed_by`,
    /// only if that integrator filed it.
    pub async fn get(
        &self,
        key: &SrKey,
        filed_by: Option<&str>,
    ) -> StoreResult<Option<ServiceRequest>> {
        let row = match key {
            SrKey::Id(id) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {SR_COLUMNS} FROM service_requests \
                     WHERE sr_id = $1 AND ($2::text IS NULL OR filed_by = $2)"
                )))
                .bind(id)
                .bind(filed_by)
                .fetch_optional(&self.pool)
                .await?
            }
            SrKey::Number(number) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {SR_COLUMNS} FROM service_requests \
                     WHERE sr_number = $1 AND ($2::text IS NULL OR filed_by = $2)"
                )))
                .bind(number)
                .bind(filed_by)
                .fetch_optional(&self.pool)
                .await?
            }
        };
        let Some(row) = row else { return Ok(None) };
        let mut request = public_view(&row);
        let sr_id: Uuid = row.get("sr_id");
        request.timeline = sqlx::query(
            "SELECT status, occurred_at, source, message FROM timeline_entries WHERE sr_id = $1 ORDER BY occurred_at, id",
        )
        .bind(sr_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| TimelineEntry {
            status: status_from_name(r.get("status")).unwrap_or_default() as i32,
            occurred_at: Some(to_timestamp(r.get("occurred_at"))),
            source: r.get("source"),
            message: r.get("message"),
        })
        .collect();
        Ok(Some(request))
    }

    async fn get_by_request_id(
        &self,
        filed_by: &str,
        request_id: &str,
    ) -> StoreResult<Option<ServiceRequest>> {
        let sr_id: Option<Uuid> = sqlx::query_scalar(
            "SELECT sr_id FROM service_requests WHERE filed_by = $1 AND request_id = $2",
        )
        .bind(filed_by)
        .bind(request_id)
        .fetch_optional(&self.pool)
        .await?;
        match sr_id {
            Some(id) => self.get(&SrKey::Id(id), None).await,
            None => Ok(None),
        }
    }

    /// Requests newest first, without timelines.
    pub async fn list(&self, filter: &ListFilter) -> StoreResult<Vec<ServiceRequest>> {
        let (after_at, after_id) = filter.after.unzip();
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SR_COLUMNS} FROM service_requests \
             WHERE ($1::text IS NULL OR status = $1) \
               AND ($2::text IS NULL OR lower(complaint_type) = lower($2)) \
               AND ($3::timestamptz IS NULL OR created_at >= $3) \
               AND ($4::timestamptz IS NULL OR created_at < $4) \
               AND ($5::timestamptz IS NULL OR (created_at, sr_id) < ($5, $6)) \
               AND ($8::text IS NULL OR filed_by = $8) \
             ORDER BY created_at DESC, sr_id DESC LIMIT $7"
        )))
        .bind(filter.status.map(status_name))
        .bind(filter.complaint_type.as_deref())
        .bind(filter.created_after)
        .bind(filter.created_before)
        .bind(after_at)
        .bind(after_id)
        .bind(filter.limit as i64)
        .bind(filter.filed_by.as_deref())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(public_view).collect())
    }

    /// Applies status updates from the other services, in one statement,
    /// and says for each: `None` if the request is not intake's (dead-letter
    /// it), `Some(true)` if it moved the request on, `Some(false)` if it was
    /// applied before. Each request may appear once: an UPDATE changes a row
    /// once per statement (the caller splits a batch into rounds, see
    /// `status_updates`).
    ///
    /// The timeline entry is appended once per transition, and only an
    /// appended entry moves the request. Before dispatch, the furthest step
    /// wins (the update re-reads a row changed concurrently); from dispatch
    /// on, its event sequence orders the updates, because its lifecycle can
    /// go back (reassigned, reopened). The survey's SURVEYED ends a CLOSED
    /// request's lifecycle; arriving after a reopening, it only joins the
    /// timeline.
    pub async fn apply_status_updates(
        &self,
        updates: &[(Uuid, &StatusUpdate)],
    ) -> StoreResult<Vec<Option<bool>>> {
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        let mut columns = StatusUpdateColumns::default();
        for (ord, (sr_id, update)) in updates.iter().enumerate() {
            columns.push(ord as i32, *sr_id, update);
        }
        let rows = sqlx::query(
            "WITH input AS ( \
                SELECT * FROM unnest($1::uuid[], $2::int2[], $3::text[], $4::text[], $5::text[], \
                    $6::text[], $7::timestamptz[], $8::text[], $9::text[], $10::timestamptz[], \
                    $11::text[], $12::text[], $13::text[], $14::int8[], $15::int4[]) \
                AS u(sr_id, new_rank, new_status, agency, precinct, priority, sla_due_at, \
                    resolution, resolution_text, occurred_at, source, message, transition_key, \
                    sequence, ord)), \
             target AS (SELECT i.sr_id FROM input i \
                WHERE EXISTS (SELECT 1 FROM service_requests s WHERE s.sr_id = i.sr_id)), \
             appended AS ( \
                INSERT INTO timeline_entries (sr_id, status, occurred_at, source, message, transition_key) \
                SELECT i.sr_id, i.new_status, i.occurred_at, i.source, i.message, i.transition_key \
                FROM input i JOIN target USING (sr_id) \
                ON CONFLICT (sr_id, transition_key) DO NOTHING RETURNING sr_id), \
             updated AS ( \
                UPDATE service_requests s SET \
                    status = CASE WHEN i.sequence > 0 THEN (CASE WHEN i.sequence > s.dispatch_sequence THEN i.new_status ELSE s.status END) \
                                  WHEN i.new_status = 'SURVEYED' THEN (CASE WHEN s.status = 'CLOSED' THEN 'SURVEYED' ELSE s.status END) \
                                  WHEN i.new_rank >= s.status_rank AND s.dispatch_sequence = 0 THEN i.new_status ELSE s.status END, \
                    status_rank = CASE WHEN i.sequence > 0 THEN (CASE WHEN i.sequence > s.dispatch_sequence THEN i.new_rank ELSE s.status_rank END) \
                                  WHEN i.new_status = 'SURVEYED' THEN (CASE WHEN s.status = 'CLOSED' THEN i.new_rank ELSE s.status_rank END) \
                                  ELSE GREATEST(s.status_rank, i.new_rank) END, \
                    dispatch_sequence = GREATEST(s.dispatch_sequence, i.sequence), \
                    agency = CASE WHEN i.agency <> '' THEN i.agency ELSE s.agency END, \
                    precinct = CASE WHEN i.precinct <> '' THEN i.precinct ELSE s.precinct END, \
                    priority = CASE WHEN i.priority <> '' THEN i.priority ELSE s.priority END, \
                    sla_due_at = COALESCE(i.sla_due_at, s.sla_due_at), \
                    resolution_code = CASE WHEN i.resolution <> '' THEN i.resolution WHEN i.new_status = 'REOPENED' THEN '' \
                                           ELSE s.resolution_code END, \
                    resolution_text = CASE WHEN i.resolution <> '' THEN i.resolution_text WHEN i.new_status = 'REOPENED' THEN '' \
                                           ELSE s.resolution_text END, \
                    resolved_at = CASE WHEN i.resolution <> '' THEN i.occurred_at WHEN i.new_status = 'REOPENED' THEN NULL \
                                       ELSE s.resolved_at END, \
                    updated_at = now() \
                FROM input i \
                WHERE s.sr_id = i.sr_id AND s.sr_id IN (SELECT sr_id FROM appended) RETURNING s.sr_id) \
             SELECT i.ord, \
                EXISTS (SELECT 1 FROM target t WHERE t.sr_id = i.sr_id) AS found, \
                EXISTS (SELECT 1 FROM updated u WHERE u.sr_id = i.sr_id) AS applied \
             FROM input i ORDER BY i.ord",
        )
        // planned for each batch: a plan cached while the table was still
        // empty joins it by a sequential scan until autovacuum first analyzes it
        .persistent(false)
        .bind(&columns.sr_id)
        .bind(&columns.rank)
        .bind(&columns.status)
        .bind(&columns.agency)
        .bind(&columns.precinct)
        .bind(&columns.priority)
        .bind(&columns.sla_due_at)
        .bind(&columns.resolution)
        .bind(&columns.resolution_text)
        .bind(&columns.occurred_at)
        .bind(&columns.source)
        .bind(&columns.message)
        .bind(&columns.transition_key)
        .bind(&columns.sequence)
        .bind(&columns.ord)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| {
                let (found, applied): (bool, bool) = (row.get("found"), row.get("applied"));
                found.then_some(applied)
            })
            .collect())
    }

    /// Releases the complainant's contact of a request for one purpose to one
    /// requester, and records the release. The contact is read, opened and
    /// its release recorded in one transaction, and handed out only once that
    /// commits: no contact is released without its record, and nothing is
    /// recorded for a request without a contact, without consent, or whose
    /// contact cannot be opened.
    /// With `filed_by`, only a request that integrator filed. The survey
    /// needs the complainant's consent; their own access does not.
    pub async fn release_contact(
        &self,
        request: &ContactReleaseRequest,
        filed_by: Option<&str>,
    ) -> StoreResult<Release> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "SELECT s.sr_id, s.sr_number, c.sr_id IS NOT NULL AS has_contact, \
                coalesce(c.consent_to_contact, false) AS consented, c.key_id, c.sealed \
             FROM service_requests s LEFT JOIN complainant_contacts c ON c.sr_id = s.sr_id \
             WHERE s.sr_number = $1 AND ($2::text IS NULL OR s.filed_by = $2)",
        )
        .bind(&request.sr_number)
        .bind(filed_by)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(Release::UnknownRequest);
        };
        if !row.get::<bool, _>("has_contact") {
            return Ok(Release::NoContact);
        }
        let consented = row.get::<bool, _>("consented");
        if !consented && request.purpose != ReleasePurpose::ComplainantAccess {
            return Ok(Release::NoConsent);
        }
        let sr_id: Uuid = row.get("sr_id");
        let mut complainant =
            open_contact(&self.contacts, sr_id, row.get("key_id"), row.get("sealed"))?;
        complainant.consent_to_contact = consented;
        sqlx::query(
            "INSERT INTO contact_releases (sr_id, sr_number, purpose, requester, released_at) \
             VALUES ($1, $2, $3, $4, now())",
        )
        .bind(sr_id)
        .bind(row.get::<String, _>("sr_number"))
        .bind(purpose_name(request.purpose))
        .bind(&request.requester)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Release::Released(complainant))
    }

    /// The key ids contacts are sealed under, each once.
    pub async fn contact_key_ids(&self) -> StoreResult<Vec<String>> {
        let mut ids = Vec::new();
        for table in SealedTable::ALL {
            // a walk down the key_id index, one step per distinct id: a
            // handful of index probes however many rows there are
            let table = table.table();
            let found: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "WITH RECURSIVE ids AS ( \
                    (SELECT key_id FROM {table} ORDER BY key_id LIMIT 1) \
                    UNION ALL \
                    SELECT (SELECT c.key_id FROM {table} c WHERE c.key_id > ids.key_id \
                            ORDER BY c.key_id LIMIT 1) \
                    FROM ids WHERE ids.key_id IS NOT NULL) \
                 SELECT key_id FROM ids WHERE key_id IS NOT NULL"
            )))
            .fetch_all(&self.pool)
            .await?;
            ids.extend(found);
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    pub async fn rekey_batch(
        &self,
        table: SealedTable,
        after: Option<Uuid>,
        limit: i64,
    ) -> StoreResult<RekeyBatch> {
        let current = self.contacts.current_key_id();
        let name = table.table();
        let mut tx = self.pool.begin().await?;
        // the row locks keep a concurrent rekey from sealing the same value twice
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT sr_id, key_id, sealed FROM {name} \
             WHERE key_id <> $1 AND ($2::uuid IS NULL OR sr_id > $2) \
             ORDER BY sr_id LIMIT $3 FOR UPDATE"
        )))
        .bind(current)
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let mut ids = Vec::with_capacity(rows.len());
        let mut blobs = Vec::with_capacity(rows.len());
        for row in &rows {
            let sr_id: Uuid = row.get("sr_id");
            let key_id: String = row.get("key_id");
            let sealed: Vec<u8> = row.get("sealed");
            let aad = table.aad(sr_id);
            let plain = self
                .contacts
                .decrypt(&key_id, &sealed, &aad)
                .map_err(|source| StoreError::Open {
                    sr_id,
                    key_id,
                    source,
                })?;
            let resealed = self
                .contacts
                .encrypt(&plain, &aad)
                .map_err(StoreError::Seal)?;
            ids.push(sr_id);
            blobs.push(resealed.blob);
        }
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {name} c SET key_id = $1, sealed = u.sealed \
             FROM UNNEST($2::uuid[], $3::bytea[]) AS u(sr_id, sealed) WHERE c.sr_id = u.sr_id"
        )))
        .bind(current)
        .bind(&ids)
        .bind(&blobs)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(RekeyBatch {
            resealed: ids.len(),
            last: ids.last().copied(),
        })
    }

    /// Keeps a responder's question; `Some(false)` when it was kept before,
    /// `None` when the request is unknown.
    pub async fn record_question(
        &self,
        question: &ComplainantQuestion,
    ) -> StoreResult<Option<bool>> {
        let (Ok(message_id), Ok(sr_id)) = (
            Uuid::parse_str(&question.message_id),
            Uuid::parse_str(&question.sr_id),
        ) else {
            return Ok(None);
        };
        let known: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM service_requests WHERE sr_id = $1)")
                .bind(sr_id)
                .fetch_one(&self.pool)
                .await?;
        if !known {
            return Ok(None);
        }
        let asked_at = question
            .asked_at
            .as_ref()
            .and_then(from_timestamp)
            .unwrap_or_else(Utc::now);
        let inserted = sqlx::query(
            "INSERT INTO complainant_messages (message_id, sr_id, job_id, asker, question, asked_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (message_id) DO NOTHING",
        )
        .bind(message_id)
        .bind(sr_id)
        .bind(&question.job_id)
        .bind(&question.from)
        .bind(&question.text)
        .bind(asked_at)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(Some(inserted == 1))
    }

    /// The questions to the complainant of `sr_id`, oldest first.
    pub async fn messages_of(&self, sr_id: Uuid) -> StoreResult<Vec<ComplainantMessage>> {
        let rows = sqlx::query(
            "SELECT m.message_id, s.sr_number, m.asker, m.question, m.asked_at, m.answer, m.answered_at \
             FROM complainant_messages m JOIN service_requests s USING (sr_id) \
             WHERE m.sr_id = $1 ORDER BY m.asked_at, m.message_id",
        )
        .bind(sr_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(message_from_row).collect())
    }

    /// Records the complainant's answer to `message_id` — a question about a
    /// request `filed_by` filed — with their name, phone numbers and e-mail
    /// addresses taken out, and sends it on to dispatch, in one transaction.
    pub async fn answer_message(
        &self,
        filed_by: &str,
        message_id: Uuid,
        answer: &str,
    ) -> StoreResult<Answered> {
        let mut tx = self.pool.begin().await?;
        let Some(row) = sqlx::query(
            "SELECT m.sr_id, m.job_id, m.answered_at, c.key_id, c.sealed \
             FROM complainant_messages m JOIN service_requests s USING (sr_id) \
             LEFT JOIN complainant_contacts c USING (sr_id) \
             WHERE m.message_id = $1 AND s.filed_by = $2 FOR UPDATE OF m",
        )
        .bind(message_id)
        .bind(filed_by)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(Answered::Unknown);
        };
        if row.get::<Option<DateTime<Utc>>, _>("answered_at").is_some() {
            return Ok(Answered::AlreadyAnswered);
        }
        let sr_id: Uuid = row.get("sr_id");
        let name = match (
            row.get::<Option<String>, _>("key_id"),
            row.get::<Option<Vec<u8>>, _>("sealed"),
        ) {
            (Some(key_id), Some(sealed)) => {
                open_contact(&self.contacts, sr_id, key_id, sealed)?.name
            }
            _ => String::new(),
        };
        let redacted = redact::for_responders(answer, &name);
        let now = Utc::now().trunc_subsecs(6);
        let to_dispatch = ComplainantAnswer {
            message_id: message_id.to_string(),
            sr_id: sr_id.to_string(),
            job_id: row.get("job_id"),
            text: redacted.clone(),
            answered_at: Some(to_timestamp(now)),
        };
        sqlx::query(
            "UPDATE complainant_messages SET answer = $2, answered_at = $3 WHERE message_id = $1",
        )
        .bind(message_id)
        .bind(&redacted)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        outbox::enqueue(
            &mut tx,
            queues::COMPLAINANT_ANSWERS,
            kinds::COMPLAINANT_ANSWER,
            &to_dispatch.sr_id,
            &to_dispatch,
        )
        .await?;
        let message = sqlx::query(
            "SELECT m.message_id, s.sr_number, m.asker, m.question, m.asked_at, m.answer, m.answered_at \
             FROM complainant_messages m JOIN service_requests s USING (sr_id) WHERE m.message_id = $1",
        )
        .bind(message_id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Answered::Done(message_from_row(&message)))
    }

    /// Records a photo `uploaded_by` put in the photo store.
    pub async fn record_photo(
        &self,
        photo_id: Uuid,
        uploaded_by: &str,
        content_type: &str,
        size_bytes: usize,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO photos (photo_id, uploaded_by, content_type, size_bytes, uploaded_at) \
             VALUES ($1, $2, $3, $4, now())",
        )
        .bind(photo_id)
        .bind(uploaded_by)
        .bind(content_type)
        .bind(i32::try_from(size_bytes).unwrap_or(i32::MAX))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// One retention sweep, in one transaction: deletes the contacts and
    /// original descriptions of requests finished before
    /// `now - policy.personal_data_after`, and the voice recording
    /// references filed before `now - policy.voice_recordings_after`, at
    /// most `policy.batch` of each; records every deletion; and, if this
    /// sweep is the one that was due, schedules the next through the outbox
    /// (at once when a batch was full).
    pub async fn sweep_retention(
        &self,
        policy: &RetentionPolicy,
        now: DateTime<Utc>,
    ) -> StoreResult<SweepReport> {
        let mut tx = self.pool.begin().await?;
        // the schedule row is the lock: sweeps never overlap
        sqlx::query("SELECT next_due_at FROM retention_schedule FOR UPDATE")
            .fetch_one(&mut *tx)
            .await?;
        let finished_before = now - policy.personal_data_after;
        let personal = sqlx::query(
            "WITH due AS ( \
                SELECT sr_id, sr_number FROM service_requests \
                WHERE personal_data_deleted_at IS NULL \
                  AND status IN ('CLOSED', 'SURVEYED', 'CANCELLED', 'REFERRED', 'DUPLICATE') \
                  AND updated_at < $1 \
                ORDER BY updated_at LIMIT $2 FOR UPDATE), \
             marked AS ( \
                UPDATE service_requests s SET personal_data_deleted_at = $3 FROM due \
                WHERE s.sr_id = due.sr_id RETURNING s.sr_id), \
             contacts AS ( \
                DELETE FROM complainant_contacts c USING due WHERE c.sr_id = due.sr_id RETURNING c.sr_id), \
             descriptions AS ( \
                DELETE FROM sealed_descriptions d USING due WHERE d.sr_id = due.sr_id RETURNING d.sr_id), \
             logged AS ( \
                INSERT INTO retention_deletions (sr_id, sr_number, what, deleted_at) \
                SELECT due.sr_id, due.sr_number, 'contact', $3 FROM due JOIN contacts USING (sr_id) \
                UNION ALL \
                SELECT due.sr_id, due.sr_number, 'description', $3 FROM due JOIN descriptions USING (sr_id)) \
             SELECT (SELECT count(*) FROM marked) AS requests, (SELECT count(*) FROM contacts) AS contacts, \
                    (SELECT count(*) FROM descriptions) AS descriptions",
        )
        .bind(finished_before)
        .bind(policy.batch)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let filed_before = now - policy.voice_recordings_after;
        let voice_recordings: i64 = sqlx::query_scalar(
            "WITH due AS ( \
                SELECT sr_id, sr_number FROM service_requests \
                WHERE voice_recording_uri IS NOT NULL AND created_at < $1 \
                ORDER BY created_at LIMIT $2 FOR UPDATE), \
             cleared AS ( \
                UPDATE service_requests s SET voice_recording_uri = NULL FROM due \
                WHERE s.sr_id = due.sr_id RETURNING s.sr_id, due.sr_number), \
             logged AS ( \
                INSERT INTO retention_deletions (sr_id, sr_number, what, deleted_at) \
                SELECT sr_id, sr_number, 'voice_recording', $3 FROM cleared) \
             SELECT count(*) FROM cleared",
        )
        .bind(filed_before)
        .bind(policy.batch)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let unfiled_photos: Vec<Uuid> = sqlx::query_scalar(
            "WITH deleted AS ( \
                DELETE FROM photos WHERE photo_id IN ( \
                    SELECT photo_id FROM photos WHERE sr_id IS NULL AND uploaded_at < $1 \
                    ORDER BY uploaded_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
                RETURNING photo_id), \
             logged AS ( \
                INSERT INTO retention_deletions (photo_id, what, deleted_at) \
                SELECT photo_id, 'unfiled_photo', $3 FROM deleted) \
             SELECT photo_id FROM deleted",
        )
        .bind(now - policy.unfiled_photos_after)
        .bind(policy.batch)
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        let report = SweepReport {
            unfiled_photos,
            requests: personal.get::<i64, _>("requests") as u64,
            contacts: personal.get::<i64, _>("contacts") as u64,
            descriptions: personal.get::<i64, _>("descriptions") as u64,
            voice_recordings: voice_recordings as u64,
            next_due_at: None,
        };
        let more_left = report.requests >= policy.batch as u64
            || report.voice_recordings >= policy.batch as u64;
        let next = if more_left { now } else { now + policy.every };
        let moved: Option<DateTime<Utc>> = sqlx::query_scalar(
            "UPDATE retention_schedule SET next_due_at = $1 WHERE next_due_at <= $2 RETURNING next_due_at",
        )
        .bind(next)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(next) = moved {
            let envelope = retention_sweep_envelope(next)?;
            outbox::enqueue_envelope(&mut tx, queues::RETENTION, &envelope).await?;
        }
        tx.commit().await?;
        Ok(SweepReport {
            next_due_at: moved,
            ..report
        })
    }

    /// Schedules a sweep at once when the next one is overdue by more than
    /// `policy.every` plus `grace` (the first ever, or one whose job was lost
    /// with Redis). Returns whether it did.
    pub async fn arm_retention(
        &self,
        policy: &RetentionPolicy,
        grace: chrono::Duration,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let armed: Option<DateTime<Utc>> = sqlx::query_scalar(
            "UPDATE retention_schedule SET next_due_at = $1 WHERE next_due_at < $2 RETURNING next_due_at",
        )
        .bind(now)
        .bind(now - policy.every - grace)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(due) = armed {
            let envelope = retention_sweep_envelope(due)?;
            outbox::enqueue_envelope(&mut tx, queues::RETENTION, &envelope).await?;
        }
        tx.commit().await?;
        Ok(armed.is_some())
    }

    /// Recorded releases, newest first, after the query's keyset position;
    /// at most `limit`.
    pub async fn list_releases(
        &self,
        query: &AuditListQuery,
        limit: usize,
    ) -> StoreResult<Vec<AuditRow<ContactRelease>>> {
        let (after_at, after_id) = query.after.unzip();
        let rows = sqlx::query(
            "SELECT id, sr_number, purpose, requester, released_at FROM contact_releases \
             WHERE ($1::text IS NULL OR sr_number = $1) \
               AND ($2::timestamptz IS NULL OR (released_at, id) < ($2, $3)) \
             ORDER BY released_at DESC, id DESC LIMIT $4",
        )
        .bind(query.sr_number.as_deref())
        .bind(after_at)
        .bind(after_id)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| {
                let released_at: DateTime<Utc> = row.get("released_at");
                AuditRow {
                    id: row.get("id"),
                    recorded_at: released_at,
                    record: ContactRelease {
                        sr_number: row.get("sr_number"),
                        purpose: purpose_from_name(row.get("purpose")) as i32,
                        requester: row.get("requester"),
                        released_at: Some(to_timestamp(released_at)),
                    },
                }
            })
            .collect())
    }

    /// What the retention sweep deleted, newest first.
    pub async fn list_retention_deletions(
        &self,
        query: &AuditListQuery,
        limit: usize,
    ) -> StoreResult<Vec<AuditRow<RetentionDeletion>>> {
        let (after_at, after_id) = query.after.unzip();
        let rows = sqlx::query(
            "SELECT id, sr_number, what, deleted_at, photo_id FROM retention_deletions \
             WHERE ($1::text IS NULL OR sr_number = $1) \
               AND ($2::timestamptz IS NULL OR (deleted_at, id) < ($2, $3)) \
             ORDER BY deleted_at DESC, id DESC LIMIT $4",
        )
        .bind(query.sr_number.as_deref())
        .bind(after_at)
        .bind(after_id)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| {
                let deleted_at: DateTime<Utc> = row.get("deleted_at");
                let what: &str = row.get("what");
                AuditRow {
                    id: row.get("id"),
                    recorded_at: deleted_at,
                    record: RetentionDeletion {
                        sr_number: row
                            .get::<Option<String>, _>("sr_number")
                            .unwrap_or_default(),
                        deleted: deleted_data_from_name(what) as i32,
                        deleted_at: Some(to_timestamp(deleted_at)),
                        photo_id: row
                            .get::<Option<Uuid>, _>("photo_id")
                            .map(|id| id.to_string())
                            .unwrap_or_default(),
                    },
                }
            })
            .collect())
    }

    /// Requests that stopped before reaching their destination queue — most
    /// likely their jobs were lost with Redis — older than `older_than`, and
    /// not re-published since then. Re-publishes their route job through the
    /// outbox; routing and dispatch handle repeats idempotently.
    pub async fn republish_stuck(
        &self,
        older_than: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<usize> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "SELECT sr_id, sr_number, complaint_type, descriptor, latitude, longitude, street_address, cross_street, \
                borough, postal_code, created_at, description_for_responders, \
                COALESCE((SELECT array_agg(p.photo_id ORDER BY p.position) FROM photos p WHERE p.sr_id = s.sr_id), \
                    '{}') AS photo_ids, \
                jsonb_array_length(photos) + (SELECT count(*) FROM photos p WHERE p.sr_id = s.sr_id)::int AS photo_count, \
                COALESCE((SELECT consent_to_contact FROM complainant_contacts c WHERE c.sr_id = s.sr_id), false) AS consented \
             FROM service_requests s \
             WHERE status IN ('RECEIVED', 'ROUTED') AND created_at < $1 \
               AND (republished_at IS NULL OR republished_at < $1) \
             ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        )
        .bind(older_than)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        for row in &rows {
            let sr_id: Uuid = row.get("sr_id");
            let job = route_job_from_row(row);
            outbox::enqueue(&mut tx, queues::ROUTE, kinds::ROUTE, &job.sr_id, &job).await?;
            sqlx::query("UPDATE service_requests SET republished_at = now() WHERE sr_id = $1")
                .bind(sr_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(rows.len())
    }
}

/// What is sealed of a complainant: everything that identifies them. Consent
/// stays in plain text, because it identifies no one and queries need it.
#[derive(serde::Serialize, serde::Deserialize)]
struct SealedContact {
    name: String,
    phone: String,
    email: String,
}

/// Seals a contact for the row of request `sr_id`: the request id is the
/// associated data, so the sealed value opens in that row only.
fn seal_contact(
    cipher: &ContactCipher,
    sr_id: Uuid,
    contact: &Complainant,
) -> StoreResult<crate::contact_crypto::Sealed> {
    let plain = serde_json::to_vec(&SealedContact {
        name: contact.name.clone(),
        phone: contact.phone.clone(),
        email: contact.email.clone(),
    })
    .expect("three strings serialize");
    cipher
        .encrypt(&plain, sr_id.as_bytes())
        .map_err(StoreError::Seal)
}

/// Opens the contact sealed in the row of request `sr_id`; consent is not
/// part of it and comes back false.
fn open_contact(
    cipher: &ContactCipher,
    sr_id: Uuid,
    key_id: String,
    sealed: Vec<u8>,
) -> StoreResult<Complainant> {
    let plain = match cipher.decrypt(&key_id, &sealed, sr_id.as_bytes()) {
        Ok(plain) => plain,
        Err(source) => {
            return Err(StoreError::Open {
                sr_id,
                key_id,
                source,
            });
        }
    };
    // it authenticated, so it is what `seal_contact` wrote; a failure here
    // is a bug, reported like any value that does not open
    let contact: SealedContact = serde_json::from_slice(&plain).map_err(|_| StoreError::Open {
        sr_id,
        key_id,
        source: ContactCryptoError::Malformed,
    })?;
    Ok(Complainant {
        name: contact.name,
        phone: contact.phone,
        email: contact.email,
        consent_to_contact: false,
    })
}

/// How a release purpose is stored, e.g. `SATISFACTION_SURVEY`.
pub fn purpose_name(purpose: ReleasePurpose) -> &'static str {
    purpose.as_str_name().trim_start_matches("RELEASE_PURPOSE_")
}

/// Status updates as the parallel arrays `apply_status_updates` unnests.
#[derive(Default)]
struct StatusUpdateColumns {
    sr_id: Vec<Uuid>,
    rank: Vec<i16>,
    status: Vec<&'static str>,
    agency: Vec<String>,
    precinct: Vec<String>,
    priority: Vec<&'static str>,
    sla_due_at: Vec<Option<DateTime<Utc>>>,
    resolution: Vec<&'static str>,
    resolution_text: Vec<String>,
    occurred_at: Vec<DateTime<Utc>>,
    source: Vec<String>,
    message: Vec<String>,
    transition_key: Vec<String>,
    sequence: Vec<i64>,
    ord: Vec<i32>,
}

impl StatusUpdateColumns {
    fn push(&mut self, ord: i32, sr_id: Uuid, update: &StatusUpdate) {
        let status = ServiceRequestStatus::try_from(update.status).unwrap_or_default();
        let priority = Priority::try_from(update.priority).unwrap_or_default();
        let resolution = ResolutionCode::try_from(update.resolution_code).unwrap_or_default();
        self.sr_id.push(sr_id);
        self.rank.push(i16::from(lifecycle_rank(status)));
        self.status.push(status_name(status));
        self.agency.push(update.agency.clone());
        self.precinct.push(update.precinct.clone());
        // '' leaves the stored value as it is
        self.priority.push(if priority == Priority::Unspecified {
            ""
        } else {
            priority_name(priority)
        });
        self.sla_due_at
            .push(update.sla_due_at.as_ref().and_then(from_timestamp));
        self.resolution
            .push(if resolution == ResolutionCode::Unspecified {
                ""
            } else {
                resolution_name(resolution)
            });
        self.resolution_text.push(update.resolution_text.clone());
        self.occurred_at.push(
            update
                .occurred_at
                .as_ref()
                .and_then(from_timestamp)
                .unwrap_or_else(Utc::now),
        );
        self.source.push(update.source.clone());
        self.message.push(update.message.clone());
        self.transition_key.push(update.transition_key.clone());
        self.sequence.push(update.dispatch_sequence);
        self.ord.push(ord);
    }
}

fn purpose_from_name(name: &str) -> ReleasePurpose {
    ReleasePurpose::from_str_name(&format!("RELEASE_PURPOSE_{name}")).unwrap_or_default()
}

/// `retention_deletions.what` ('contact', 'description', 'voice_recording',
/// 'unfiled_photo') as the API names it.
fn deleted_data_from_name(name: &str) -> DeletedData {
    DeletedData::from_str_name(&format!("DELETED_DATA_{}", name.to_uppercase())).unwrap_or_default()
}

fn route_job_from_row(row: &PgRow) -> RouteJob {
    let sr_id: Uuid = row.get("sr_id");
    let latitude: Option<f64> = row.get("latitude");
    let longitude: Option<f64> = row.get("longitude");
    RouteJob {
        sr_id: sr_id.to_string(),
        sr_number: row.get("sr_number"),
        complaint_type: row.get("complaint_type"),
        descriptor: row.get("descriptor"),
        location: latitude
            .zip(longitude)
            .map(|(latitude, longitude)| GeoPoint {
                latitude,
                longitude,
            }),
        address: Some(address_from_row(row)),
        photo_count: row.get::<i32, _>("photo_count") as u32,
        created_at: Some(to_timestamp(row.get("created_at"))),
        complainant_consented: row.get("consented"),
        description_for_responders: row.get("description_for_responders"),
        photo_ids: row
            .get::<Vec<Uuid>, _>("photo_ids")
            .iter()
            .map(Uuid::to_string)
            .collect(),
    }
}

fn address_from_row(row: &PgRow) -> Address {
    Address {
        street_address: row.get("street_address"),
        cross_street: row.get("cross_street"),
        borough: row.get("borough"),
        postal_code: row.get("postal_code"),
    }
}

fn public_view(row: &PgRow) -> ServiceRequest {
    let sr_id: Uuid = row.get("sr_id");
    let latitude: Option<f64> = row.get("latitude");
    let longitude: Option<f64> = row.get("longitude");
    let photos: serde_json::Value = row.get("photos");
    let resolution_code: String = row.get("resolution_code");
    let resolved_at: Option<DateTime<Utc>> = row.get("resolved_at");
    let sla_due_at: Option<DateTime<Utc>> = row.get("sla_due_at");
    ServiceRequest {
        sr_id: sr_id.to_string(),
        sr_number: row.get("sr_number"),
        complaint_type: row.get("complaint_type"),
        descriptor: row.get("descriptor"),
        location: latitude
            .zip(longitude)
            .map(|(latitude, longitude)| GeoPoint {
                latitude,
                longitude,
            }),
        address: Some(address_from_row(row)),
        channel: channel_from_name(row.get("channel")) as i32,
        status: status_from_name(row.get("status")).unwrap_or_default() as i32,
        agency: row.get("agency"),
        precinct: row.get("precinct"),
        priority: priority_from_name(row.get("priority")).unwrap_or_default() as i32,
        sla_due_at: sla_due_at.map(to_timestamp),
        photo_count: (photos.as_array().map_or(0, Vec::len)
            + row.get::<i64, _>("uploaded_photos") as usize) as u32,
        resolution: resolution_from_name(&resolution_code).map(|code| Resolution {
            code: code as i32,
            text: row.get("resolution_text"),
            resolved_at: resolved_at.map(to_timestamp),
        }),
        timeline: Vec::new(),
        trace_id: row.get("trace_id"),
        created_at: Some(to_timestamp(row.get("created_at"))),
        updated_at: Some(to_timestamp(row.get("updated_at"))),
    }
}
