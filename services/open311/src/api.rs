//! The GeoReport v2 methods: discovery, services, a service's definition,
//! POST and GET requests, one request, tokens. Each answers in the format
//! its path's suffix names; every refusal is an `<errors>` list.

use std::collections::HashSet;
use std::sync::Arc;

use axum::{
    extract::{FromRequest as _, Multipart, Path, Query, Request, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse as _, Response},
};
use chrono::{DateTime, SecondsFormat, Utc};
use dispatch311_auth::{Role, client::with_token};
use dispatch311_proto::{
    common::v1::{Address, Channel, GeoPoint, ServiceRequestStatus},
    intake::v1::{
        Complainant, CreateServiceRequestRequest, GetServiceRequestRequest,
        ListServiceRequestsRequest, PhotoReference, ServiceRequest, UploadPhotoRequest,
        get_service_request_request::Key, intake_service_client::IntakeServiceClient,
    },
    routing::v1::{ExplainRouteRequest, routing_service_client::RoutingServiceClient},
};
use dispatch311_telemetry::grpc::TracedChannel;
use futures::{StreamExt as _, TryStreamExt as _};

use crate::catalog::{Catalog, Service, code_of, service_of};
use crate::errors::Open311Error;
use crate::keys::{ApiKeys, Integrator};
use crate::render::{Format, Value, answer};
use crate::tokens::{GATEWAY_SUBJECT, Tokens};

/// The GeoReport v2 specification, as discovery names it.
const SPECIFICATION: &str = "http://wiki.open311.org/GeoReport_v2";
/// When this API last changed (discovery's `changeset`).
const CHANGESET: &str = "2026-12-07T00:00:00Z";
/// The longest window of a GET requests, and its most records.
const MAX_WINDOW_DAYS: i64 = 90;
const MAX_RECORDS: usize = 1_000;
/// Requests read from intake per page while filtering a list.
const INTAKE_PAGE: i32 = 1_000;
/// Records fetched one by one at once (ids, extensions).
const CONCURRENT_READS: usize = 8;

/// What every handler shares.
pub struct Gateway {
    pub intake: IntakeServiceClient<TracedChannel>,
    pub routing: RoutingServiceClient<TracedChannel>,
    pub catalog: Catalog,
    pub keys: ApiKeys,
    pub tokens: Tokens,
    pub jurisdiction: Option<String>,
    pub public_url: String,
    pub contact: String,
    pub key_service: String,
}

pub type Shared = State<Arc<Gateway>>;

/// Parameters as sent, repeated ones kept (`attribute[code]` may repeat).
#[derive(Default)]
struct Params(Vec<(String, String)>);

impl Params {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.trim())
            .filter(|value| !value.is_empty())
    }

    /// `attribute[code]=value` pairs (and `attribute[code][]`), in order.
    fn attributes(&self) -> Vec<(&str, &str)> {
        self.0
            .iter()
            .filter_map(|(key, value)| {
                let code = key.strip_prefix("attribute[")?;
                let code = code.strip_suffix("[]").unwrap_or(code);
                Some((code.strip_suffix(']')?, value.trim()))
            })
            .collect()
    }
}

impl Gateway {
    fn token(&self, role: Role, subject: &str) -> Result<String, Open311Error> {
        self.tokens.token(role, subject).map_err(|error| {
            tracing::error!(%error, "cannot sign a token");
            Open311Error::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the gateway cannot sign its calls",
            )
        })
    }

    fn integrator(&self, params: &Params) -> Result<Integrator, Open311Error> {
        match params.get("api_key") {
            None => Err(Open311Error::forbidden("api_key is required")),
            Some(key) => self
                .keys
                .find(key)
                .ok_or_else(|| Open311Error::forbidden("api_key is not valid")),
        }
    }

    /// 404 for a request that names another jurisdiction than this one.
    fn check_jurisdiction(&self, params: &Params) -> Result<(), Open311Error> {
        match (&self.jurisdiction, params.get("jurisdiction_id")) {
            (Some(ours), Some(asked)) if !asked.eq_ignore_ascii_case(ours) => Err(
                Open311Error::not_found(format!("jurisdiction_id {asked} is not served here")),
            ),
            _ => Ok(()),
        }
    }

    async fn services(&self) -> Result<Arc<Vec<Service>>, Open311Error> {
        self.catalog
            .services(&self.tokens)
            .await
            .map_err(|status| Open311Error::from_status(&status, "routing"))
    }
}

// ---------------------------------------------------------------------------
// discovery and services
// ---------------------------------------------------------------------------

pub async fn discovery_xml(state: Shared) -> Response {
    discovery(state, Format::Xml)
}

pub async fn discovery_json(state: Shared) -> Response {
    discovery(state, Format::Json)
}

fn discovery(State(gateway): Shared, format: Format) -> Response {
    let formats = Value::List(
        "format",
        vec![Value::text("text/xml"), Value::text("application/json")],
    );
    let document = Value::Object(vec![
        ("changeset", Value::text(CHANGESET)),
        ("contact", Value::text(gateway.contact.clone())),
        ("key_service", Value::text(gateway.key_service.clone())),
        (
            "endpoints",
            Value::List(
                "endpoint",
                vec![Value::Object(vec![
                    ("specification", Value::text(SPECIFICATION)),
                    ("url", Value::text(gateway.public_url.clone())),
                    ("changeset", Value::text(CHANGESET)),
                    ("type", Value::text("production")),
                    ("formats", formats),
                ])],
            ),
        ),
    ]);
    answer(format, StatusCode::OK, "discovery", &document)
}

pub async fn services_xml(state: Shared, query: Query<Vec<(String, String)>>) -> Response {
    services(state, query, Format::Xml).await
}

pub async fn services_json(state: Shared, query: Query<Vec<(String, String)>>) -> Response {
    services(state, query, Format::Json).await
}

async fn services(
    State(gateway): Shared,
    Query(query): Query<Vec<(String, String)>>,
    format: Format,
) -> Response {
    if let Err(error) = gateway.check_jurisdiction(&Params(query)) {
        return error.render(format);
    }
    let services = match gateway.services().await {
        Ok(services) => services,
        Err(error) => return error.render(format),
    };
    let list = Value::List(
        "service",
        services
            .iter()
            .map(|service| {
                Value::Object(vec![
                    ("service_code", Value::text(service.code.clone())),
                    ("service_name", Value::text(service.name.clone())),
                    ("description", Value::text(service.description.clone())),
                    ("metadata", Value::Bool(service.metadata())),
                    ("type", Value::text("realtime")),
                    ("keywords", Value::text_or_null(service.keywords.join(","))),
                    ("group", Value::text(service.group.clone())),
                ])
            })
            .collect(),
    );
    answer(format, StatusCode::OK, "services", &list)
}

pub async fn service_definition(
    State(gateway): Shared,
    Path(file): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let Some((code, format)) = Format::split(&file) else {
        return Open311Error::not_found("no such resource: use .xml or .json").render(Format::Xml);
    };
    if let Err(error) = gateway.check_jurisdiction(&Params(query)) {
        return error.render(format);
    }
    let service = match gateway.catalog.find(&gateway.tokens, code).await {
        Ok(Some(service)) => service,
        Ok(None) => {
            return Open311Error::not_found(format!("service_code {code} is not a service"))
                .render(format);
        }
        Err(status) => return Open311Error::from_status(&status, "routing").render(format),
    };
    let attributes = if service.metadata() {
        vec![Value::Object(vec![
            ("variable", Value::Bool(true)),
            ("code", Value::text("descriptor")),
            ("datatype", Value::text("singlevaluelist")),
            ("required", Value::Bool(!service.any_descriptor)),
            (
                "datatype_description",
                Value::text(if service.any_descriptor {
                    "Optional: the kind of problem, if it is one of these"
                } else {
                    "The kind of problem: one of these"
                }),
            ),
            ("order", Value::Integer(1)),
            ("description", Value::text("What kind of problem is it?")),
            (
                "values",
                Value::List(
                    "value",
                    service
                        .descriptors
                        .iter()
                        .map(|descriptor| {
                            Value::Object(vec![
                                ("key", Value::text(descriptor.clone())),
                                ("name", Value::text(descriptor.clone())),
                            ])
                        })
                        .collect(),
                ),
            ),
        ])]
    } else {
        Vec::new()
    };
    let definition = Value::Object(vec![
        ("service_code", Value::text(service.code.clone())),
        ("attributes", Value::List("attribute", attributes)),
    ]);
    answer(format, StatusCode::OK, "service_definition", &definition)
}

// ---------------------------------------------------------------------------
// POST requests
// ---------------------------------------------------------------------------

pub async fn post_requests_xml(state: Shared, headers: HeaderMap, request: Request) -> Response {
    post_requests(state, headers, request, Format::Xml).await
}

pub async fn post_requests_json(state: Shared, headers: HeaderMap, request: Request) -> Response {
    post_requests(state, headers, request, Format::Json).await
}

/// A photo sent in a multipart POST (the documented extension).
struct Upload {
    content: Vec<u8>,
}

async fn post_requests(
    State(gateway): Shared,
    headers: HeaderMap,
    request: Request,
    format: Format,
) -> Response {
    match file_request(&gateway, &headers, request).await {
        Ok(created) => answer(format, StatusCode::OK, "service_requests", &created),
        Err(error) => error.render(format),
    }
}

async fn read_body(request: Request) -> Result<(Params, Vec<Upload>), Open311Error> {
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("multipart/form-data"));
    if !multipart {
        let axum::Form(pairs) = axum::Form::<Vec<(String, String)>>::from_request(request, &())
            .await
            .map_err(|rejection| Open311Error::bad_request(vec![rejection.body_text()]))?;
        return Ok((Params(pairs), Vec::new()));
    }
    let mut form = Multipart::from_request(request, &())
        .await
        .map_err(|rejection| Open311Error::bad_request(vec![rejection.body_text()]))?;
    let mut pairs = Vec::new();
    let mut uploads = Vec::new();
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|error| Open311Error::bad_request(vec![error.body_text()]))?
    {
        let name = field.name().unwrap_or_default().to_string();
        if name == "media" {
            let content = field
                .bytes()
                .await
                .map_err(|error| Open311Error::bad_request(vec![error.body_text()]))?;
            uploads.push(Upload {
                content: content.to_vec(),
            });
        } else {
            let value = field
                .text()
                .await
                .map_err(|error| Open311Error::bad_request(vec![error.body_text()]))?;
            pairs.push((name, value));
        }
    }
    Ok((Params(pairs), uploads))
}

async fn file_request(
    gateway: &Gateway,
    headers: &HeaderMap,
    request: Request,
) -> Result<Value, Open311Error> {
    let (params, uploads) = read_body(request).await?;
    let integrator = gateway.integrator(&params)?;
    gateway.check_jurisdiction(&params)?;
    let code = params
        .get("service_code")
        .ok_or_else(|| Open311Error::bad_request(vec!["service_code: required".into()]))?;
    let service = gateway
        .catalog
        .find(&gateway.tokens, code)
        .await
        .map_err(|status| Open311Error::from_status(&status, "routing"))?
        .ok_or_else(|| Open311Error::not_found(format!("service_code {code} is not a service")))?;

    let mut problems = Vec::new();
    let mut descriptor = String::new();
    for (attribute, value) in params.attributes() {
        if value.is_empty() {
            continue;
        }
        match attribute {
            "descriptor" if service.metadata() => {
                if !service.any_descriptor && !service.descriptors.iter().any(|d| d == value) {
                    problems.push(format!(
                        "attribute[descriptor]: must be one of the values of {}'s definition",
                        service.code
                    ));
                }
                descriptor = value.to_string();
            }
            // a client's own attributes (FixMyStreet sends some) and blank
            // optional ones are not errors: what this service does not ask for is left aside
            other => tracing::debug!(
                attribute = other,
                "an attribute the service does not define"
            ),
        }
    }
    if service.metadata() && !service.any_descriptor && descriptor.is_empty() {
        problems.push("attribute[descriptor]: required for this service".into());
    }

    let number = |name: &str| -> Option<Result<f64, String>> {
        params.get(name).map(|text| {
            text.parse::<f64>()
                .ok()
                .filter(|value| value.is_finite())
                .ok_or_else(|| format!("{name}: must be a number"))
        })
    };
    let location = match (number("lat"), number("long")) {
        (Some(Ok(latitude)), Some(Ok(longitude))) => Some(GeoPoint {
            latitude,
            longitude,
        }),
        (None, None) => None,
        (lat, long) => {
            for problem in [lat, long].into_iter().flatten().filter_map(Result::err) {
                problems.push(problem);
            }
            if problems
                .iter()
                .all(|p| !p.starts_with("lat") && !p.starts_with("long"))
            {
                problems.push("lat, long: give both or neither".into());
            }
            None
        }
    };
    let address_string = params.get("address_string").unwrap_or_default().to_string();
    if location.is_none() && address_string.is_empty() {
        problems.push(if params.get("address_id").is_some() {
            "address_id: this jurisdiction keeps no address ids; send lat and long, or address_string"
                .into()
        } else {
            "a location is required: lat and long, or address_string".into()
        });
    }
    let photos = params
        .0
        .iter()
        .filter(|(key, _)| key == "media_url")
        .map(|(_, url)| url.trim())
        .filter(|url| !url.is_empty())
        .map(|url| PhotoReference {
            uri: url.to_string(),
            content_type: if url.to_ascii_lowercase().ends_with(".png") {
                "image/png".into()
            } else {
                "image/jpeg".into()
            },
        })
        .collect::<Vec<_>>();
    let request_id = match headers
        .get("idempotency-key")
        .map(|value| value.to_str().map(str::trim))
    {
        None => uuid::Uuid::new_v4().to_string(),
        Some(Ok(key)) if (1..=128).contains(&key.len()) => key.to_string(),
        Some(_) => {
            problems.push("Idempotency-Key: 1 to 128 visible ASCII characters".into());
            String::new()
        }
    };
    if !problems.is_empty() {
        return Err(Open311Error::bad_request(problems));
    }

    let name = [params.get("first_name"), params.get("last_name")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let email = params.get("email").unwrap_or_default().to_string();
    let phone = params.get("phone").unwrap_or_default().to_string();
    let reachable = !email.is_empty() || !phone.is_empty();
    let complainant = (reachable || !name.is_empty()).then_some(Complainant {
        consent_to_contact: integrator.survey_consent && reachable,
        name,
        phone,
        email,
    });
    let token = gateway.token(Role::Integrator, &integrator.id)?;
    let mut intake = gateway.intake.clone();
    let mut photo_ids = Vec::new();
    for upload in uploads {
        let request = with_token(
            UploadPhotoRequest {
                content: upload.content,
            },
            &token,
        )
        .map_err(|e| Open311Error::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        let uploaded = intake.upload_photo(request).await.map_err(|status| {
            let mut error = Open311Error::from_status(&status, "intake");
            error.problems = error
                .problems
                .into_iter()
                .map(|p| p.replace("content:", "media:"))
                .collect();
            error
        })?;
        photo_ids.push(uploaded.into_inner().photo_id);
    }
    let create = CreateServiceRequestRequest {
        request_id,
        complaint_type: service.name.clone(),
        descriptor,
        location,
        address: (!address_string.is_empty()).then(|| Address {
            street_address: address_string,
            ..Default::default()
        }),
        description: params.get("description").unwrap_or_default().to_string(),
        photos,
        channel: Channel::Open311 as i32,
        complainant,
        photo_ids,
        ..Default::default()
    };
    let request = with_token(create, &token)
        .map_err(|e| Open311Error::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let sr = intake
        .create_service_request(request)
        .await
        .map_err(|status| Open311Error::from_status(&status, "intake"))?
        .into_inner()
        .service_request
        .ok_or_else(|| Open311Error::unavailable("intake"))?;
    tracing::info!(sr_number = %sr.sr_number, service_code = %service.code, "filed through Open311");
    Ok(Value::List(
        "request",
        vec![Value::Object(vec![
            ("service_request_id", Value::text(sr.sr_number.clone())),
            ("service_notice", Value::text(notice(&service, &sr))),
            (
                "account_id",
                Value::text_or_null(params.get("account_id").unwrap_or_default()),
            ),
        ])],
    ))
}

fn notice(service: &Service, sr: &ServiceRequest) -> String {
    format!(
        "Filed as {}. {}. Follow it at requests/{}.",
        sr.sr_number, service.description, sr.sr_number
    )
}

// ---------------------------------------------------------------------------
// GET requests
// ---------------------------------------------------------------------------

pub async fn get_requests_xml(state: Shared, query: Query<Vec<(String, String)>>) -> Response {
    get_requests(state, query, Format::Xml).await
}

pub async fn get_requests_json(state: Shared, query: Query<Vec<(String, String)>>) -> Response {
    get_requests(state, query, Format::Json).await
}

async fn get_requests(
    State(gateway): Shared,
    Query(query): Query<Vec<(String, String)>>,
    format: Format,
) -> Response {
    let params = Params(query);
    let listed = async {
        gateway.check_jurisdiction(&params)?;
        let extensions = params.get("extensions") == Some("true");
        let records = if let Some(ids) = params.get("service_request_id") {
            let ids: Vec<&str> = ids
                .split(',')
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .take(MAX_RECORDS)
                .collect();
            let integrator = match params.get("api_key") {
                Some(_) => Some(gateway.integrator(&params)?),
                None => None,
            };
            by_ids(&gateway, integrator.as_ref(), &ids).await?
        } else {
            let integrator = gateway.integrator(&params)?;
            search(&gateway, &integrator, &params).await?
        };
        records_value(&gateway, records, extensions).await
    }
    .await;
    match listed {
        Ok(list) => answer(format, StatusCode::OK, "service_requests", &list),
        Err(error) => error.render(format),
    }
}

/// One request: `requests/{id}.{fmt}`, a list of one.
pub async fn get_request(
    State(gateway): Shared,
    Path(file): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let Some((id, format)) = Format::split(&file) else {
        return Open311Error::not_found("no such resource: use .xml or .json").render(Format::Xml);
    };
    let params = Params(query);
    let found = async {
        gateway.check_jurisdiction(&params)?;
        let integrator = match params.get("api_key") {
            Some(_) => Some(gateway.integrator(&params)?),
            None => None,
        };
        let records = by_ids(&gateway, integrator.as_ref(), &[id]).await?;
        if records.is_empty() {
            return Err(Open311Error::not_found(format!(
                "service_request_id {id} is not a request"
            )));
        }
        records_value(&gateway, records, params.get("extensions") == Some("true")).await
    }
    .await;
    match found {
        Ok(list) => answer(format, StatusCode::OK, "service_requests", &list),
        Err(error) => error.render(format),
    }
}

/// A token: this jurisdiction answers a POST with the request's id at once
/// (every service is `realtime`), so the only tokens are those ids.
pub async fn get_token(
    State(gateway): Shared,
    Path(file): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let Some((token, format)) = Format::split(&file) else {
        return Open311Error::not_found("no such resource: use .xml or .json").render(Format::Xml);
    };
    let params = Params(query);
    let found = async {
        let integrator = match params.get("api_key") {
            Some(_) => Some(gateway.integrator(&params)?),
            None => None,
        };
        let records = by_ids(&gateway, integrator.as_ref(), &[token]).await?;
        if records.is_empty() {
            return Err(Open311Error::not_found(format!(
                "token {token} is unknown: every service here is realtime, and a POST answers with service_request_id"
            )));
        }
        Ok(Value::List(
            "request",
            vec![Value::Object(vec![
                ("service_request_id", Value::text(token)),
                ("token", Value::text(token)),
            ])],
        ))
    }
    .await;
    match found {
        Ok(list) => answer(format, StatusCode::OK, "service_requests", &list),
        Err(error) => error.render(format),
    }
}

/// A request as read, and whether the caller filed it (its private fields).
struct Record {
    sr: ServiceRequest,
}

/// Requests by their numbers: an integrator's own in full; anyone else's
/// (or any, without a key) in the public view, which has no place, no
/// description and no photos. Unknown numbers are left out.
async fn by_ids(
    gateway: &Gateway,
    integrator: Option<&Integrator>,
    ids: &[&str],
) -> Result<Vec<Record>, Open311Error> {
    let own_token = match integrator {
        Some(integrator) => Some(gateway.token(Role::Integrator, &integrator.id)?),
        None => None,
    };
    let public_token = gateway.token(Role::Public, GATEWAY_SUBJECT)?;
    let unique: Vec<String> = {
        let mut seen = HashSet::new();
        ids.iter()
            .filter(|id| seen.insert(**id))
            .map(|id| id.to_string())
            .collect()
    };
    let read = futures::stream::iter(unique.into_iter().map(|id: String| {
        let (own_token, public_token) = (own_token.clone(), public_token.clone());
        async move {
            if let Some(token) = own_token
                && let Some(sr) = get_one(gateway, &token, &id).await?
            {
                return Ok(Some(Record { sr }));
            }
            Ok(get_one(gateway, &public_token, &id)
                .await?
                .map(|sr| Record { sr }))
        }
    }))
    .buffered(CONCURRENT_READS)
    .try_collect::<Vec<Option<Record>>>()
    .await?;
    Ok(read.into_iter().flatten().collect())
}

async fn get_one(
    gateway: &Gateway,
    token: &str,
    id: &str,
) -> Result<Option<ServiceRequest>, Open311Error> {
    let request = with_token(
        GetServiceRequestRequest {
            key: Some(Key::SrNumber(id.to_string())),
        },
        token,
    )
    .map_err(|e| Open311Error::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    match gateway.intake.clone().get_service_request(request).await {
        Ok(answer) => Ok(answer.into_inner().service_request),
        // not a number at all, or not one this caller may see
        Err(status)
            if matches!(
                status.code(),
                tonic::Code::NotFound | tonic::Code::InvalidArgument
            ) =>
        {
            Ok(None)
        }
        Err(status) => Err(Open311Error::from_status(&status, "intake")),
    }
}

/// The integrator's requests in a window, filtered by service and status,
/// a page of them (`page`, `page_size`: the pagination most cities offer).
async fn search(
    gateway: &Gateway,
    integrator: &Integrator,
    params: &Params,
) -> Result<Vec<Record>, Open311Error> {
    let mut problems = Vec::new();
    let date = |name: &str, problems: &mut Vec<String>| -> Option<DateTime<Utc>> {
        let text = params.get(name)?;
        match DateTime::parse_from_rfc3339(text) {
            Ok(at) => Some(at.with_timezone(&Utc)),
            Err(_) => {
                problems.push(format!(
                    "{name}: a W3C datetime with a time zone, e.g. 2026-12-01T00:00:00Z"
                ));
                None
            }
        }
    };
    let start = date("start_date", &mut problems);
    let end = date("end_date", &mut problems);
    let window = chrono::Duration::days(MAX_WINDOW_DAYS);
    let now = Utc::now();
    let (start, end) = match (start, end) {
        (Some(start), Some(end)) => (start, end),
        (Some(start), None) => (start, (start + window).min(now)),
        (None, Some(end)) => (end - window, end),
        (None, None) => (now - window, now),
    };
    if end < start {
        problems.push("end_date: must not be before start_date".into());
    } else if end - start > window {
        problems.push(format!(
            "start_date, end_date: at most {MAX_WINDOW_DAYS} days apart"
        ));
    }
    let mut statuses = HashSet::new();
    for status in params.get("status").unwrap_or_default().split(',') {
        match status.trim() {
            "" => {}
            "open" => {
                statuses.insert(true);
            }
            "closed" => {
                statuses.insert(false);
            }
            other => problems.push(format!("status: {other} is neither open nor closed")),
        }
    }
    let mut types = HashSet::new();
    if let Some(codes) = params.get("service_code") {
        let services = gateway.services().await?;
        for code in codes.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            match services.iter().find(|service| service.code == code) {
                Some(service) => {
                    types.insert(code_of(&service.name));
                    types.extend(service.keywords.iter().map(|k| code_of(k)));
                }
                None => {
                    return Err(Open311Error::not_found(format!(
                        "service_code {code} is not a service"
                    )));
                }
            }
        }
    }
    let whole = |name: &str, default: usize, most: usize, problems: &mut Vec<String>| match params
        .get(name)
        .map(str::parse::<usize>)
    {
        None => default,
        Some(Ok(n)) if (1..=most).contains(&n) => n,
        Some(_) => {
            problems.push(format!("{name}: a whole number from 1 to {most}"));
            default
        }
    };
    let page_size = whole("page_size", MAX_RECORDS, MAX_RECORDS, &mut problems);
    let page = whole("page", 1, 1_000_000, &mut problems);
    if !problems.is_empty() {
        return Err(Open311Error::bad_request(problems));
    }
    let skip = (page - 1).saturating_mul(page_size);

    let token = gateway.token(Role::Integrator, &integrator.id)?;
    let timestamp = |at: DateTime<Utc>| prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos() as i32,
    };
    let mut intake = gateway.intake.clone();
    let mut page_token = String::new();
    let mut matched = 0usize;
    let mut records = Vec::new();
    loop {
        let request = with_token(
            ListServiceRequestsRequest {
                created_after: Some(timestamp(start)),
                created_before: Some(timestamp(end)),
                page_size: INTAKE_PAGE,
                page_token: page_token.clone(),
                ..Default::default()
            },
            &token,
        )
        .map_err(|e| Open311Error::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        let listed = intake
            .list_service_requests(request)
            .await
            .map_err(|status| Open311Error::from_status(&status, "intake"))?
            .into_inner();
        for sr in listed.service_requests {
            let status_ok = statuses.is_empty() || statuses.contains(&is_open(&sr));
            let type_ok = types.is_empty() || types.contains(&code_of(&sr.complaint_type));
            if !(status_ok && type_ok) {
                continue;
            }
            matched += 1;
            if matched > skip {
                records.push(Record { sr });
                if records.len() == page_size {
                    return Ok(records);
                }
            }
        }
        if listed.next_page_token.is_empty() {
            return Ok(records);
        }
        page_token = listed.next_page_token;
    }
}

/// GeoReport knows two states: a request not finished here is open.
fn is_open(sr: &ServiceRequest) -> bool {
    !matches!(
        ServiceRequestStatus::try_from(sr.status).unwrap_or_default(),
        ServiceRequestStatus::Closed
            | ServiceRequestStatus::Surveyed
            | ServiceRequestStatus::Referred
            | ServiceRequestStatus::Cancelled
    )
}

fn datetime(ts: Option<&prost_types::Timestamp>) -> Value {
    ts.and_then(|ts| DateTime::from_timestamp(ts.seconds, ts.nanos.max(0) as u32))
        .map_or(Value::Null, |at| {
            Value::text(at.to_rfc3339_opts(SecondsFormat::Secs, true))
        })
}

async fn records_value(
    gateway: &Gateway,
    records: Vec<Record>,
    extensions: bool,
) -> Result<Value, Open311Error> {
    let services = gateway.services().await.ok();
    let values = futures::stream::iter(records.into_iter().map(|record| {
        let services = services.clone();
        async move {
            record_value(
                gateway,
                record,
                services.as_ref().map(|s| s.as_slice()),
                extensions,
            )
            .await
        }
    }))
    .buffered(CONCURRENT_READS)
    .try_collect::<Vec<Value>>()
    .await?;
    Ok(Value::List("request", values))
}

async fn record_value(
    gateway: &Gateway,
    record: Record,
    services: Option<&[Service]>,
    extensions: bool,
) -> Result<Value, Open311Error> {
    let sr = record.sr;
    let type_code = code_of(&sr.complaint_type);
    let service = services.and_then(|services| service_of(services, &sr.complaint_type));
    let address = sr.address.clone().unwrap_or_default();
    let place = [address.street_address.as_str(), address.borough.as_str()]
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    let mut fields = vec![
        ("service_request_id", Value::text(sr.sr_number.clone())),
        (
            "status",
            Value::text(if is_open(&sr) { "open" } else { "closed" }),
        ),
        ("status_notes", Value::text_or_null(sr.status_notes.clone())),
        ("service_name", Value::text(sr.complaint_type.clone())),
        (
            "service_code",
            Value::text(service.map_or(type_code.clone(), |s| s.code.clone())),
        ),
        ("description", Value::text_or_null(sr.description.clone())),
        ("agency_responsible", Value::text_or_null(sr.agency.clone())),
        ("service_notice", Value::Null),
        ("requested_datetime", datetime(sr.created_at.as_ref())),
        ("updated_datetime", datetime(sr.updated_at.as_ref())),
        ("expected_datetime", datetime(sr.sla_due_at.as_ref())),
        ("address", Value::text_or_null(place)),
        ("address_id", Value::Null),
        ("zipcode", Value::text_or_null(address.postal_code.clone())),
        (
            "lat",
            sr.location
                .map_or(Value::Null, |at| Value::Number(at.latitude)),
        ),
        (
            "long",
            sr.location
                .map_or(Value::Null, |at| Value::Number(at.longitude)),
        ),
        (
            "media_url",
            Value::text_or_null(sr.media_urls.first().cloned().unwrap_or_default()),
        ),
    ];
    if extensions {
        fields.push(("notes", notes(gateway, &sr).await?));
        fields.push((
            "extended_attributes",
            extended_attributes(gateway, &sr).await,
        ));
    }
    Ok(Value::Object(fields))
}

/// The full public timeline (`extensions=true`), oldest first.
async fn notes(gateway: &Gateway, sr: &ServiceRequest) -> Result<Value, Open311Error> {
    // lists come without timelines: read the request (public view suffices)
    let token = gateway.token(Role::Public, GATEWAY_SUBJECT)?;
    let timeline = match get_one(gateway, &token, &sr.sr_number).await? {
        Some(full) => full.timeline,
        None => Vec::new(),
    };
    Ok(Value::List(
        "note",
        timeline
            .iter()
            .map(|entry| {
                Value::Object(vec![
                    ("datetime", datetime(entry.occurred_at.as_ref())),
                    ("description", Value::text(entry.message.clone())),
                    (
                        "type",
                        Value::text(
                            ServiceRequestStatus::try_from(entry.status)
                                .unwrap_or_default()
                                .as_str_name()
                                .trim_start_matches("SERVICE_REQUEST_STATUS_")
                                .to_ascii_lowercase(),
                        ),
                    ),
                ])
            })
            .collect(),
    ))
}

/// The photos and how routing routes such a request (`extensions=true`).
async fn extended_attributes(gateway: &Gateway, sr: &ServiceRequest) -> Value {
    let explanation = match gateway.token(Role::Integrator, GATEWAY_SUBJECT) {
        Ok(token) => {
            let request = with_token(
                ExplainRouteRequest {
                    complaint_type: sr.complaint_type.clone(),
                    descriptor: sr.descriptor.clone(),
                    location: sr.location,
                    has_street_address: sr
                        .address
                        .as_ref()
                        .is_some_and(|a| !a.street_address.is_empty()),
                },
                &token,
            );
            match request {
                Ok(request) => gateway
                    .routing
                    .clone()
                    .explain_route(request)
                    .await
                    .ok()
                    .and_then(|answer| answer.into_inner().decision)
                    .map(|decision| decision.explanation)
                    .unwrap_or_default(),
                Err(_) => Vec::new(),
            }
        }
        Err(_) => Vec::new(),
    };
    Value::Object(vec![
        (
            "photos",
            Value::List(
                "photo",
                sr.media_urls.iter().cloned().map(Value::Text).collect(),
            ),
        ),
        ("photo_count", Value::Integer(i64::from(sr.photo_count))),
        (
            "routing",
            Value::List("step", explanation.into_iter().map(Value::Text).collect()),
        ),
    ])
}

/// The OpenAPI description of this gateway.
pub async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("../openapi.json"),
    )
        .into_response()
}
