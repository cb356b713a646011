//! POST requests: a form (or a multipart form with photos) filed with intake
//! as the key's integrator.

use super::*;

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
        let request = authorized(
            UploadPhotoRequest {
                content: upload.content,
            },
            &token,
        )?;
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
    let request = authorized(create, &token)?;
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
