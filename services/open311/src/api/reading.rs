//! GET requests, one request and tokens, and the records they answer with:
//! an integrator's own requests in full, anyone else's in the public view.

use super::*;

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
    let request = authorized(
        GetServiceRequestRequest {
            key: Some(Key::SrNumber(id.to_string())),
        },
        token,
    )?;
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
        let request = authorized(
            ListServiceRequestsRequest {
                created_after: Some(timestamp(start)),
                created_before: Some(timestamp(end)),
                page_size: INTAKE_PAGE,
                page_token: page_token.clone(),
                ..Default::default()
            },
            &token,
        )?;
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
            let request = authorized(
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
