//! The gRPC adapter: unpacks requests, validates them into domain types,
//! calls the store, and maps results and errors to gRPC.

use std::sync::Arc;

use chrono::Utc;
use dispatch311_auth::{Role, View, caller};
use dispatch311_domain::{
    CityBounds, SrNumber,
    status::status_name,
    time::{from_timestamp, to_timestamp},
};
use dispatch311_grpc::{
    pagination,
    status::{self as grpc_status, FieldViolations},
};
use dispatch311_photos::PhotoStore;
use dispatch311_proto::intake::v1::ReleasePurpose;
use dispatch311_proto::{
    common::v1::ServiceRequestStatus,
    intake::v1::{
        AnswerComplainantMessageRequest, AnswerComplainantMessageResponse,
        CreateServiceRequestRequest, CreateServiceRequestResponse, GetServiceRequestRequest,
        GetServiceRequestResponse, ListComplainantMessagesRequest, ListComplainantMessagesResponse,
        ListContactReleasesRequest, ListContactReleasesResponse, ListNearbyOpenRequestsRequest,
        ListNearbyOpenRequestsResponse, ListRetentionDeletionsRequest,
        ListRetentionDeletionsResponse, ListServiceRequestsRequest, ListServiceRequestsResponse,
        NearbyRequest, ReleaseComplainantContactRequest, ReleaseComplainantContactResponse,
        ServiceRequest, TimelineEntry, UploadPhotoRequest, UploadPhotoResponse,
        get_service_request_request::Key, intake_service_server::IntakeService,
    },
};
use dispatch311_telemetry::{
    attributes::{self, set_on_current},
    propagation::trace_id_of,
};
use tokio::sync::Notify;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    store::{
        Answered, AuditRow, Created, ListFilter, NearbyRow, Release, SrKey, Store, StoreError,
        purpose_name,
    },
    validate::{
        MAX_DESCRIPTION, audit_page_token, validate, validate_audit_list, validate_nearby,
        validate_release,
    },
};

pub struct IntakeApi {
    store: Store,
    bounds: CityBounds,
    /// Wakes the outbox relay as soon as a request commits.
    relay_wakeup: Arc<Notify>,
    /// Where sanitized photos go.
    photos: PhotoStore,
}

impl IntakeApi {
    pub fn new(
        store: Store,
        bounds: CityBounds,
        relay_wakeup: Arc<Notify>,
        photos: PhotoStore,
    ) -> Self {
        Self {
            store,
            bounds,
            relay_wakeup,
            photos,
        }
    }
}

#[tonic::async_trait]
impl IntakeService for IntakeApi {
    async fn create_service_request(
        &self,
        request: Request<CreateServiceRequestRequest>,
    ) -> Result<Response<CreateServiceRequestResponse>, Status> {
        let filed_by = caller(&request)?.subject;
        let new = validate(request.into_inner(), &self.bounds, Utc::now())?;
        let trace_id = trace_id_of(&tracing::Span::current()).unwrap_or_default();
        let created = self
            .store
            .create(&new, &filed_by, &trace_id)
            .await
            .map_err(store_status)?;
        let service_request = match created {
            Created::New(sr) => {
                self.relay_wakeup.notify_one();
                set_on_current(attributes::SR_NUMBER, sr.sr_number.clone());
                tracing::info!(
                    sr_number = %sr.sr_number,
                    complaint_type = %sr.complaint_type,
                    "service request received"
                );
                sr
            }
            Created::Existing(sr) => {
                tracing::info!(sr_number = %sr.sr_number, "repeated request id returns the first request");
                sr
            }
            Created::PhotosUnavailable => {
                return Err(grpc_status::invalid_argument(
                    "photo_ids",
                    "each must be a photo_id this integrator uploaded and has not filed with another request",
                ));
            }
        };
        Ok(Response::new(CreateServiceRequestResponse {
            service_request: Some(service_request),
        }))
    }

    async fn list_nearby_open_requests(
        &self,
        request: Request<ListNearbyOpenRequestsRequest>,
    ) -> Result<Response<ListNearbyOpenRequestsResponse>, Status> {
        let query = validate_nearby(request.get_ref(), &self.bounds, Utc::now())?;
        let rows = self
            .store
            .nearby_open_requests(&query)
            .await
            .map_err(store_status)?;
        Ok(Response::new(ListNearbyOpenRequestsResponse {
            requests: rows.into_iter().map(nearby_request).collect(),
        }))
    }

    async fn get_service_request(
        &self,
        request: Request<GetServiceRequestRequest>,
    ) -> Result<Response<GetServiceRequestResponse>, Status> {
        let caller = caller(&request)?;
        let (key, shown) = match request.into_inner().key {
            Some(Key::SrNumber(number)) => match number.parse::<SrNumber>() {
                Ok(parsed) => (SrKey::Number(parsed.to_string()), number),
                Err(e) => return Err(grpc_status::invalid_argument("sr_number", e.to_string())),
            },
            // the public knows a request by the number on its receipt only
            Some(Key::SrId(_)) if caller.view == View::Public => {
                return Err(grpc_status::invalid_argument(
                    "sr_id",
                    "the public view is by sr_number only",
                ));
            }
            Some(Key::SrId(id)) => match Uuid::parse_str(id.trim()) {
                Ok(parsed) => (SrKey::Id(parsed), id),
                Err(_) => return Err(grpc_status::invalid_argument("sr_id", "must be a UUID")),
            },
            None => {
                return Err(grpc_status::invalid_argument(
                    "key",
                    "give sr_number or sr_id",
                ));
            }
        };
        // another integrator's request is NOT_FOUND, not PERMISSION_DENIED:
        // which numbers exist is not theirs to learn either
        let filed_by = caller
            .sees_own_requests_only()
            .then_some(caller.subject.as_str());
        match self.store.get(&key, filed_by).await.map_err(store_status)? {
            Some(sr) => Ok(Response::new(GetServiceRequestResponse {
                service_request: Some(match caller.view {
                    View::Public => public_status_only(sr),
                    View::Full | View::OwnRequests => sr,
                }),
            })),
            None => Err(grpc_status::not_found("service request", &shown)),
        }
    }

    async fn list_service_requests(
        &self,
        request: Request<ListServiceRequestsRequest>,
    ) -> Result<Response<ListServiceRequestsResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let mut v = FieldViolations::new();
        let limit = pagination::page_size(request.page_size, "page_size", &mut v);
        let status = match ServiceRequestStatus::try_from(request.status) {
            Ok(ServiceRequestStatus::Unspecified) => None,
            Ok(status) => Some(status),
            Err(_) => {
                v.add("status", "unknown status");
                None
            }
        };
        let mut timestamp = |field: &str, ts: Option<prost_types::Timestamp>| {
            let ts = ts?;
            let at = from_timestamp(&ts);
            if at.is_none() {
                v.add(field, "not a valid timestamp");
            }
            at
        };
        let created_after = timestamp("created_after", request.created_after);
        let created_before = timestamp("created_before", request.created_before);
        let after = pagination::decode_token(&request.page_token, "page_token", &mut v).and_then(
            |cursor| {
                let parsed = parse_cursor(&cursor);
                if parsed.is_none() {
                    v.add("page_token", "not a token from this list");
                }
                parsed
            },
        );
        v.into_result()?;

        let filter = ListFilter {
            status,
            complaint_type: Some(request.complaint_type.trim().to_string())
                .filter(|t| !t.is_empty()),
            created_after,
            created_before,
            after,
            limit: limit + 1,
            filed_by: caller
                .sees_own_requests_only()
                .then(|| caller.subject.clone()),
        };
        let mut rows = self.store.list(&filter).await.map_err(store_status)?;
        let next_page_token = if rows.len() > limit {
            rows.truncate(limit);
            rows.last()
                .map(|last| pagination::encode_token(&cursor_of(last)))
                .unwrap_or_default()
        } else {
            String::new()
        };
        tracing::debug!(
            status = status.map(status_name),
            returned = rows.len(),
            "listed service requests"
        );
        Ok(Response::new(ListServiceRequestsResponse {
            service_requests: rows,
            next_page_token,
        }))
    }

    async fn release_complainant_contact(
        &self,
        request: Request<ReleaseComplainantContactRequest>,
    ) -> Result<Response<ReleaseComplainantContactResponse>, Status> {
        // the release is recorded under the verified caller, never a name it gives itself
        let caller = caller(&request)?;
        let requester = format!("{}:{}", caller.role, caller.subject);
        let release = validate_release(request.into_inner(), requester)?;
        // the two paths out: the survey, and the complainant's own access
        // through the integrator that filed the request
        let filed_by = match (caller.role, release.purpose) {
            (Role::SurveySystem, ReleasePurpose::SatisfactionSurvey) => None,
            (Role::Integrator, ReleasePurpose::ComplainantAccess) => Some(caller.subject.as_str()),
            (role, purpose) => {
                return Err(grpc_status::permission_denied(format!(
                    "the {role} role may not have contact details released for {}",
                    purpose_name(purpose)
                )));
            }
        };
        set_on_current(attributes::SR_NUMBER, release.sr_number.clone());
        // only who asked, why and for which request are logged: the contact never is
        let sr_number = release.sr_number.as_str();
        let purpose = purpose_name(release.purpose);
        let requester = release.requester.as_str();
        match self
            .store
            .release_contact(&release, filed_by)
            .await
            .map_err(store_status)?
        {
            Release::Released(complainant) => {
                tracing::info!(
                    sr_number,
                    purpose,
                    requester,
                    "complainant contact released"
                );
                Ok(Response::new(ReleaseComplainantContactResponse {
                    complainant: Some(complainant),
                }))
            }
            Release::UnknownRequest => Err(grpc_status::not_found("service request", sr_number)),
            Release::NoContact => {
                tracing::info!(
                    sr_number,
                    purpose,
                    requester,
                    "no complainant contact to release"
                );
                Err(grpc_status::not_found("complainant contact", sr_number))
            }
            Release::NoConsent => {
                tracing::warn!(
                    sr_number,
                    purpose,
                    requester,
                    "contact release refused: the complainant did not consent"
                );
                Err(grpc_status::failed_precondition(
                    "NO_CONSENT",
                    format!("service_requests/{sr_number}"),
                    "the complainant did not consent to be contacted",
                ))
            }
        }
    }

    async fn upload_photo(
        &self,
        request: Request<UploadPhotoRequest>,
    ) -> Result<Response<UploadPhotoResponse>, Status> {
        let uploaded_by = caller(&request)?.subject;
        let content = request.into_inner().content;
        let clean = dispatch311_photos::sanitize(&content)
            .map_err(|e| grpc_status::invalid_argument("content", e.to_string()))?;
        let photo_id = Uuid::now_v7();
        // the file first: a row never names a photo that is not there
        self.photos
            .put(photo_id, &clean.bytes)
            .await
            .map_err(|e| grpc_status::unavailable("photo store", &e))?;
        self.store
            .record_photo(
                photo_id,
                &uploaded_by,
                clean.content_type,
                clean.bytes.len(),
            )
            .await
            .map_err(store_status)?;
        tracing::info!(
            %photo_id,
            content_type = clean.content_type,
            received_bytes = content.len(),
            stored_bytes = clean.bytes.len(),
            "photo uploaded, metadata stripped"
        );
        Ok(Response::new(UploadPhotoResponse {
            photo_id: photo_id.to_string(),
            content_type: clean.content_type.to_string(),
            size_bytes: clean.bytes.len() as u32,
        }))
    }

    async fn list_complainant_messages(
        &self,
        request: Request<ListComplainantMessagesRequest>,
    ) -> Result<Response<ListComplainantMessagesResponse>, Status> {
        let caller = caller(&request)?;
        let number = request.into_inner().sr_number;
        let sr_number = number
            .parse::<SrNumber>()
            .map_err(|e| grpc_status::invalid_argument("sr_number", e.to_string()))?;
        let filed_by = caller
            .sees_own_requests_only()
            .then_some(caller.subject.as_str());
        let sr = self
            .store
            .get(&SrKey::Number(sr_number.to_string()), filed_by)
            .await
            .map_err(store_status)?
            .ok_or_else(|| grpc_status::not_found("service request", &number))?;
        let sr_id = Uuid::parse_str(&sr.sr_id).map_err(|e| grpc_status::internal(&e))?;
        let messages = self.store.messages_of(sr_id).await.map_err(store_status)?;
        Ok(Response::new(ListComplainantMessagesResponse { messages }))
    }

    async fn answer_complainant_message(
        &self,
        request: Request<AnswerComplainantMessageRequest>,
    ) -> Result<Response<AnswerComplainantMessageResponse>, Status> {
        let filed_by = caller(&request)?.subject;
        let request = request.into_inner();
        let mut v = FieldViolations::new();
        let message_id = Uuid::parse_str(request.message_id.trim()).ok();
        if message_id.is_none() {
            v.add(
                "message_id",
                "must be a message_id from ListComplainantMessages",
            );
        }
        let answer = request.answer.trim();
        if answer.is_empty() || answer.chars().count() > MAX_DESCRIPTION {
            v.add("answer", format!("1 to {MAX_DESCRIPTION} characters"));
        }
        v.into_result()?;
        let message_id = message_id.expect("checked above");
        // the answer is the complainant's own words: never logged
        match self
            .store
            .answer_message(&filed_by, message_id, answer)
            .await
            .map_err(store_status)?
        {
            Answered::Done(message) => {
                self.relay_wakeup.notify_one();
                tracing::info!(%message_id, sr_number = %message.sr_number, "complainant answered");
                Ok(Response::new(AnswerComplainantMessageResponse {
                    message: Some(message),
                }))
            }
            Answered::Unknown => Err(grpc_status::not_found("message", message_id.to_string())),
            Answered::AlreadyAnswered => Err(grpc_status::failed_precondition(
                "ALREADY_ANSWERED",
                format!("messages/{message_id}"),
                "this question was answered already",
            )),
        }
    }

    async fn list_contact_releases(
        &self,
        request: Request<ListContactReleasesRequest>,
    ) -> Result<Response<ListContactReleasesResponse>, Status> {
        let request = request.into_inner();
        let query =
            validate_audit_list(&request.sr_number, request.page_size, &request.page_token)?;
        let rows = self
            .store
            .list_releases(&query, query.page_size + 1)
            .await
            .map_err(store_status)?;
        let (releases, next_page_token) = audit_page(rows, query.page_size);
        tracing::debug!(
            sr_number = query.sr_number.as_deref(),
            returned = releases.len(),
            "listed contact releases"
        );
        Ok(Response::new(ListContactReleasesResponse {
            releases,
            next_page_token,
        }))
    }

    async fn list_retention_deletions(
        &self,
        request: Request<ListRetentionDeletionsRequest>,
    ) -> Result<Response<ListRetentionDeletionsResponse>, Status> {
        let request = request.into_inner();
        let query =
            validate_audit_list(&request.sr_number, request.page_size, &request.page_token)?;
        let rows = self
            .store
            .list_retention_deletions(&query, query.page_size + 1)
            .await
            .map_err(store_status)?;
        let (deletions, next_page_token) = audit_page(rows, query.page_size);
        tracing::debug!(
            sr_number = query.sr_number.as_deref(),
            returned = deletions.len(),
            "listed retention deletions"
        );
        Ok(Response::new(ListRetentionDeletionsResponse {
            deletions,
            next_page_token,
        }))
    }
}

/// One page of an audit listing fetched with one row more than `page_size`:
/// the records, and the token of the next page if that extra row exists.
fn audit_page<T>(mut rows: Vec<AuditRow<T>>, page_size: usize) -> (Vec<T>, String) {
    let next_page_token = if rows.len() > page_size {
        rows.truncate(page_size);
        rows.last()
            .map(|last| audit_page_token(last.recorded_at, last.id))
            .unwrap_or_default()
    } else {
        String::new()
    };
    (
        rows.into_iter().map(|row| row.record).collect(),
        next_page_token,
    )
}

/// What anyone holding the SR number may see: where the request stands and
/// who handles it, not where it is (often the complainant's home) nor the
/// internal trace ids (the request's, and its timeline's).
fn public_status_only(sr: ServiceRequest) -> ServiceRequest {
    let timeline = sr
        .timeline
        .into_iter()
        .map(|entry| TimelineEntry {
            trace_id: String::new(),
            ..entry
        })
        .collect();
    ServiceRequest {
        location: None,
        address: None,
        trace_id: String::new(),
        description: String::new(),
        media_urls: Vec::new(),
        timeline,
        ..sr
    }
}

/// What anyone may see of a request near their point: its distance rounded
/// to 10 m, no coordinates.
fn nearby_request(row: NearbyRow) -> NearbyRequest {
    NearbyRequest {
        sr_number: row.sr_number,
        complaint_type: row.complaint_type,
        descriptor: row.descriptor,
        status: row.status as i32,
        created_at: Some(to_timestamp(row.created_at)),
        distance_m: ((row.distance_m / 10.0).round() * 10.0) as i32,
    }
}

/// Keyset cursor of a listed request: its creation time and id.
fn cursor_of(sr: &dispatch311_proto::intake::v1::ServiceRequest) -> String {
    let created = sr
        .created_at
        .as_ref()
        .and_then(from_timestamp)
        .unwrap_or_default();
    format!("{}|{}", created.timestamp_micros(), sr.sr_id)
}

fn parse_cursor(cursor: &str) -> Option<(chrono::DateTime<Utc>, Uuid)> {
    let (micros, id) = cursor.split_once('|')?;
    let at = chrono::DateTime::from_timestamp_micros(micros.parse().ok()?)?;
    Some((at, Uuid::parse_str(id).ok()?))
}

fn store_status(err: StoreError) -> Status {
    store_status_of(&err)
}

fn store_status_of(err: &StoreError) -> Status {
    grpc_status::storage(err)
}
