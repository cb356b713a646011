//! New requests (filed in batches), reading and listing them, status updates
//! from routing and dispatch, and route jobs published again.

use super::*;
use tracing::Instrument;

/// One batch of new requests: a statement per round (an integrator's request
/// id at most once per statement), a result per request.
pub(super) async fn write_filings(pool: &PgPool, filings: Vec<Arc<Filing>>) -> Vec<Filed> {
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

pub(super) const RECEIVED_MESSAGE: &str = "request received";

/// The most new requests one statement writes.
pub(super) const MAX_FILINGS_PER_STATEMENT: usize = 64;

/// Per new request: whether it was written (false: its request id was
/// filed before), or the error of its statement.
pub(super) type Filed = Result<bool, Arc<StoreError>>;

/// A new request ready to be written: its row, the complainant's sealed
/// contact and description, and its route job, as [`Store::create`]
/// prepared them.
pub(super) struct Filing {
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
    pub(super) fn service_request(&self) -> ServiceRequest {
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
                trace_id: self.trace_id.clone(),
            }],
            trace_id: self.trace_id.clone(),
            created_at: Some(to_timestamp(self.created_at)),
            updated_at: Some(to_timestamp(self.created_at)),
            status_notes: RECEIVED_MESSAGE.into(),
            description: job.description_for_responders.clone(),
            media_urls: serde_json::from_str(&self.photos)
                .map(|photos| media_urls(&photos))
                .unwrap_or_default(),
            ..Default::default()
        }
    }
}

/// New requests as the parallel arrays [`insert_filings`] unnests; their
/// photos are flattened into (`photo_sr_id`, `photo_id`, `photo_position`).
#[derive(Default)]
pub(super) struct FilingColumns<'a> {
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
    pub(super) fn push(&mut self, filing: &'a Filing) {
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
pub(super) async fn insert_filings(pool: &PgPool, filings: &[&Filing]) -> StoreResult<Vec<bool>> {
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
            INSERT INTO timeline_entries (sr_id, status, occurred_at, source, message, transition_key, \
                trace_id) \
            SELECT sr_id, $30, created_at, 'intake', $32, 'intake:received', trace_id FROM written ORDER BY ord), \
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
    .instrument(dispatch311_db::statement_span("INSERT", "service_requests"))
    .await?;
    Ok(filings
        .iter()
        .map(|filing| written.contains(&filing.sr_id))
        .collect())
}

pub(super) const SR_COLUMNS: &str = "sr_id, sr_number, complaint_type, descriptor, latitude, longitude, street_address, \
    cross_street, borough, postal_code, photos, channel, status, agency, precinct, priority, sla_due_at, \
    resolution_code, resolution_text, resolved_at, trace_id, created_at, updated_at, description_for_responders, \
    (SELECT count(*) FROM photos p WHERE p.sr_id = service_requests.sr_id) AS uploaded_photos, \
    (SELECT t.message FROM timeline_entries t WHERE t.sr_id = service_requests.sr_id \
     ORDER BY t.occurred_at DESC, t.id DESC LIMIT 1) AS status_notes";

/// Status updates as the parallel arrays `apply_status_updates` unnests.
#[derive(Default)]
pub(super) struct StatusUpdateColumns {
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
    trace_id: Vec<String>,
    epoch: Vec<i32>,
}

impl StatusUpdateColumns {
    pub(super) fn push(&mut self, ord: i32, sr_id: Uuid, update: &StatusUpdate, trace_id: &str) {
        self.trace_id.push(trace_id.to_owned());
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
        self.epoch.push(update.dispatch_epoch as i32);
        self.ord.push(ord);
    }
}

pub(super) fn route_job_from_row(row: &PgRow) -> RouteJob {
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

pub(super) fn address_from_row(row: &PgRow) -> Address {
    Address {
        street_address: row.get("street_address"),
        cross_street: row.get("cross_street"),
        borough: row.get("borough"),
        postal_code: row.get("postal_code"),
    }
}

pub(super) fn public_view(row: &PgRow) -> ServiceRequest {
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
        status_notes: row
            .get::<Option<String>, _>("status_notes")
            .unwrap_or_default(),
        description: row.get("description_for_responders"),
        media_urls: media_urls(&photos),
    }
}

/// The links of the photos a request was filed with (`photos` as stored).
fn media_urls(photos: &serde_json::Value) -> Vec<String> {
    photos
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|photo| photo.get("uri")?.as_str().map(str::to_string))
        .collect()
}

impl Store {
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
            .instrument(dispatch311_db::statement_span("SELECT", "photos"))
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
    pub(super) async fn prepare_filing(
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
                .instrument(dispatch311_db::statement_span("SELECT", "service_requests"))
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
                .instrument(dispatch311_db::statement_span("SELECT", "service_requests"))
                .await?
            }
        };
        let Some(row) = row else { return Ok(None) };
        let mut request = public_view(&row);
        let sr_id: Uuid = row.get("sr_id");
        request.timeline = sqlx::query(
            "SELECT status, occurred_at, source, message, trace_id FROM timeline_entries \
             WHERE sr_id = $1 ORDER BY occurred_at, id",
        )
        .bind(sr_id)
        .fetch_all(&self.pool)
        .instrument(dispatch311_db::statement_span("SELECT", "timeline_entries"))
        .await?
        .iter()
        .map(|r| TimelineEntry {
            status: status_from_name(r.get("status")).unwrap_or_default() as i32,
            occurred_at: Some(to_timestamp(r.get("occurred_at"))),
            source: r.get("source"),
            message: r.get("message"),
            trace_id: r.get("trace_id"),
        })
        .collect();
        Ok(Some(request))
    }

    pub(super) async fn get_by_request_id(
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
        .instrument(dispatch311_db::statement_span("SELECT", "service_requests"))
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
        .instrument(dispatch311_db::statement_span("SELECT", "service_requests"))
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
    /// The requests' rows are locked first, in the order of their ids:
    /// replicas applying overlapping batches wait for each other instead of
    /// deadlocking.
    ///
    /// The timeline entry is appended once per transition, and only an
    /// appended entry moves the request. Before dispatch, the furthest step
    /// wins (the update re-reads a row changed concurrently); from dispatch
    /// on, its event sequence orders the updates, because its lifecycle can
    /// go back (reassigned, reopened); a request unlinked into a job of its
    /// own starts a new epoch, whose sequences restart at 1. The survey's SURVEYED ends a CLOSED
    /// request's lifecycle; arriving after a reopening, it only joins the
    /// timeline.
    pub async fn apply_status_updates(
        &self,
        updates: &[(Uuid, &StatusUpdate, &str)],
    ) -> StoreResult<Vec<Option<bool>>> {
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        let mut columns = StatusUpdateColumns::default();
        for (ord, (sr_id, update, trace_id)) in updates.iter().enumerate() {
            columns.push(ord as i32, *sr_id, update, trace_id);
        }
        let rows = sqlx::query(
            "WITH input AS ( \
                SELECT * FROM unnest($1::uuid[], $2::int2[], $3::text[], $4::text[], $5::text[], \
                    $6::text[], $7::timestamptz[], $8::text[], $9::text[], $10::timestamptz[], \
                    $11::text[], $12::text[], $13::text[], $14::int8[], $15::int4[], $16::text[], \
                    $17::int4[]) \
                AS u(sr_id, new_rank, new_status, agency, precinct, priority, sla_due_at, \
                    resolution, resolution_text, occurred_at, source, message, transition_key, \
                    sequence, ord, trace_id, epoch)), \
             target AS (SELECT s.sr_id FROM service_requests s \
                WHERE s.sr_id IN (SELECT sr_id FROM input) ORDER BY s.sr_id FOR NO KEY UPDATE), \
             appended AS ( \
                INSERT INTO timeline_entries (sr_id, status, occurred_at, source, message, transition_key, \
                    trace_id) \
                SELECT i.sr_id, i.new_status, i.occurred_at, i.source, i.message, i.transition_key, i.trace_id \
                FROM input i JOIN target USING (sr_id) \
                ON CONFLICT (sr_id, transition_key) DO NOTHING RETURNING sr_id), \
             updated AS ( \
                UPDATE service_requests s SET \
                    status = CASE WHEN i.sequence > 0 THEN (CASE WHEN (i.epoch, i.sequence) > (s.dispatch_epoch, s.dispatch_sequence) THEN i.new_status ELSE s.status END) \
                                  WHEN i.new_status = 'SURVEYED' THEN (CASE WHEN s.status = 'CLOSED' THEN 'SURVEYED' ELSE s.status END) \
                                  WHEN i.new_rank >= s.status_rank AND s.dispatch_sequence = 0 THEN i.new_status ELSE s.status END, \
                    status_rank = CASE WHEN i.sequence > 0 THEN (CASE WHEN (i.epoch, i.sequence) > (s.dispatch_epoch, s.dispatch_sequence) THEN i.new_rank ELSE s.status_rank END) \
                                  WHEN i.new_status = 'SURVEYED' THEN (CASE WHEN s.status = 'CLOSED' THEN i.new_rank ELSE s.status_rank END) \
                                  ELSE GREATEST(s.status_rank, i.new_rank) END, \
                    dispatch_sequence = CASE WHEN (i.epoch, i.sequence) > (s.dispatch_epoch, s.dispatch_sequence) \
                                             THEN i.sequence ELSE s.dispatch_sequence END, \
                    dispatch_epoch = GREATEST(s.dispatch_epoch, i.epoch), \
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
        .bind(&columns.trace_id)
        .bind(&columns.epoch)
        .fetch_all(&self.pool)
        .instrument(dispatch311_db::statement_span("UPDATE", "service_requests"))
        .await?;
        Ok(rows
            .iter()
            .map(|row| {
                let (found, applied): (bool, bool) = (row.get("found"), row.get("applied"));
                found.then_some(applied)
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
        .instrument(dispatch311_db::statement_span("SELECT", "photos"))
        .await?;
        for row in &rows {
            let sr_id: Uuid = row.get("sr_id");
            let job = route_job_from_row(row);
            outbox::enqueue(&mut tx, queues::ROUTE, kinds::ROUTE, &job.sr_id, &job).await?;
            sqlx::query("UPDATE service_requests SET republished_at = now() WHERE sr_id = $1")
                .bind(sr_id)
                .execute(&mut *tx)
                .instrument(dispatch311_db::statement_span("UPDATE", "service_requests"))
                .await?;
        }
        tx.commit().await?;
        Ok(rows.len())
    }
}
