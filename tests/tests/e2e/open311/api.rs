//! The Open311 GeoReport v2 gateway through the real binaries: discovery,
//! services and a definition, POST in both formats with every optional
//! field, GET by id and by every filter with paging, tokens, each error
//! case, idempotent POSTs, and what one integrator's key shows of another's
//! requests (their public status, never their place, words or photos).

use std::time::Duration;

use dispatch311_tests::{
    cad::{COMPLAINANT_EMAIL, COMPLAINANT_NAME, COMPLAINANT_PHONE, EMPIRE_STATE},
    suite::{Open311, Suite, SuiteOptions},
};
use reqwest::{StatusCode, header};
use serde_json::Value;

const APP_KEY: &str = "app-key-0123456789abcdef";
const APP: &str = "city-311-app";
const CRM_KEY: &str = "crm-key-fedcba9876543210";
const CRM: &str = "city-crm";

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn gateway(suite: &Suite) -> anyhow::Result<Open311> {
    suite
        .spawn_open311(
            &[(APP_KEY, APP, true), (CRM_KEY, CRM, false)],
            &[("DISPATCH311_OPEN311_JURISDICTION", "nyc.gov")],
        )
        .await
}

async fn get_json(url: &str) -> anyhow::Result<(StatusCode, Value)> {
    let answer = http().get(url).send().await?;
    let status = answer.status();
    assert_eq!(
        answer.headers()[header::CONTENT_TYPE],
        "application/json; charset=utf-8"
    );
    Ok((status, answer.json().await?))
}

async fn get_xml(url: &str) -> anyhow::Result<(StatusCode, String)> {
    let answer = http().get(url).send().await?;
    let status = answer.status();
    assert_eq!(
        answer.headers()[header::CONTENT_TYPE],
        "text/xml; charset=utf-8"
    );
    let body = answer.text().await?;
    assert!(
        body.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>"),
        "{body}"
    );
    Ok((status, body))
}

/// A blocked hydrant at the Empire State Building with every optional field.
fn full_form(key: &str) -> Vec<(&'static str, String)> {
    let (first, last) = COMPLAINANT_NAME.split_once(' ').unwrap();
    vec![
        ("api_key", key.into()),
        ("jurisdiction_id", "nyc.gov".into()),
        ("service_code", "illegal-parking".into()),
        ("attribute[descriptor]", "Blocked Hydrant".into()),
        ("lat", EMPIRE_STATE.latitude.to_string()),
        ("long", EMPIRE_STATE.longitude.to_string()),
        ("address_string", "350 5th Avenue".into()),
        ("email", COMPLAINANT_EMAIL.into()),
        ("device_id", "device-42".into()),
        ("account_id", "account-7".into()),
        ("first_name", first.into()),
        ("last_name", last.into()),
        ("phone", COMPLAINANT_PHONE.into()),
        (
            "description",
            format!(
                "Grey sedan on the hydrant. Call me, {COMPLAINANT_NAME}, at {COMPLAINANT_PHONE}."
            ),
        ),
        ("media_url", "https://photos.example/hydrant.jpg".into()),
    ]
}

async fn post(
    gateway: &Open311,
    format: &str,
    form: &[(&str, String)],
    idempotency_key: Option<&str>,
) -> anyhow::Result<reqwest::Response> {
    let mut request = http()
        .post(format!("{}/requests.{format}", gateway.url))
        .form(form);
    if let Some(key) = idempotency_key {
        request = request.header("Idempotency-Key", key);
    }
    Ok(request.send().await?)
}

/// The record of `id` as `key` sees it, once intake has routed it.
async fn routed(gateway: &Open311, id: &str, key: &str) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, list) =
            get_json(&format!("{}/requests/{id}.json?api_key={key}", gateway.url)).await?;
        assert_eq!(status, StatusCode::OK, "{list}");
        let record = list[0].clone();
        if !record["agency_responsible"].is_null() && !record["expected_datetime"].is_null() {
            return Ok(record);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{id} was not routed: {record}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn discovery_services_and_a_definition_in_both_formats() -> anyhow::Result<()> {
    let suite = Suite::start(SuiteOptions::default()).await?;
    let gateway = gateway(&suite).await?;

    let (status, discovery) = get_json(&format!("{}/discovery.json", gateway.url)).await?;
    assert_eq!(status, StatusCode::OK);
    let endpoint = &discovery["endpoints"][0];
    assert_eq!(
        endpoint["specification"],
        "http://wiki.open311.org/GeoReport_v2"
    );
    assert_eq!(endpoint["url"], gateway.url.as_str());
    assert_eq!(
        endpoint["formats"],
        serde_json::json!(["text/xml", "application/json"])
    );
    for field in ["changeset", "contact", "key_service"] {
        assert!(discovery[field].is_string(), "{field}: {discovery}");
    }
    let (_, xml) = get_xml(&format!("{}/discovery.xml", gateway.url)).await?;
    assert!(xml.contains(
        "<endpoints><endpoint><specification>http://wiki.open311.org/GeoReport_v2</specification>"
    ));
    assert!(
        xml.contains(
            "<formats><format>text/xml</format><format>application/json</format></formats>"
        )
    );

    let (status, services) = get_json(&format!("{}/services.json", gateway.url)).await?;
    assert_eq!(status, StatusCode::OK);
    let services = services.as_array().expect("a list").clone();
    assert!(services.len() > 50, "the city's types: {}", services.len());
    let parking = services
        .iter()
        .find(|s| s["service_code"] == "illegal-parking")
        .expect("Illegal Parking is a service");
    assert_eq!(parking["service_name"], "Illegal Parking");
    assert_eq!(parking["group"], "NYPD");
    assert_eq!(parking["type"], "realtime");
    assert_eq!(parking["metadata"], true);
    assert!(parking["description"].as_str().unwrap().contains("NYPD"));
    for service in &services {
        for field in [
            "service_code",
            "service_name",
            "description",
            "type",
            "group",
        ] {
            assert!(service[field].is_string(), "{field} of {service}");
        }
    }
    let (_, xml) = get_xml(&format!("{}/services.xml", gateway.url)).await?;
    assert!(xml.contains("<services><service><service_code>"));
    assert!(xml.contains(
        "<service_code>illegal-parking</service_code><service_name>Illegal Parking</service_name>"
    ));

    let (status, definition) =
        get_json(&format!("{}/services/illegal-parking.json", gateway.url)).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(definition["service_code"], "illegal-parking");
    let attribute = &definition["attributes"][0];
    assert_eq!(attribute["code"], "descriptor");
    assert_eq!(attribute["datatype"], "singlevaluelist");
    assert_eq!(attribute["variable"], true);
    assert_eq!(attribute["order"], 1);
    assert!(
        attribute["values"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["key"] == "Blocked Hydrant" && v["name"] == "Blocked Hydrant")
    );
    let (_, xml) = get_xml(&format!("{}/services/illegal-parking.xml", gateway.url)).await?;
    assert!(xml.contains("<service_definition><service_code>illegal-parking</service_code><attributes><attribute><variable>true</variable><code>descriptor</code><datatype>singlevaluelist</datatype>"));
    assert!(xml.contains("<values><value><key>"));

    // unknown service code, in both formats, as the specification shapes errors
    let (status, errors) =
        get_json(&format!("{}/services/no-such-thing.json", gateway.url)).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(errors[0]["code"], 404);
    assert!(
        errors[0]["description"]
            .as_str()
            .unwrap()
            .contains("no-such-thing")
    );
    let (status, xml) = get_xml(&format!("{}/services/no-such-thing.xml", gateway.url)).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(xml.contains("<errors><error><code>404</code><description>"));
    drop(gateway);
    suite.stop().await
}

#[tokio::test]
async fn a_request_filed_in_both_formats_is_followed_and_never_shows_the_complainant()
-> anyhow::Result<()> {
    let suite = Suite::start(SuiteOptions::default()).await?;
    let gateway = gateway(&suite).await?;

    // XML, every optional field
    let answer = post(&gateway, "xml", &full_form(APP_KEY), None).await?;
    assert_eq!(answer.status(), StatusCode::OK);
    let xml = answer.text().await?;
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<service_requests><request><service_request_id>SR-"), "{xml}");
    assert!(xml.contains("<account_id>account-7</account_id>"), "{xml}");
    let first = xml
        .split("<service_request_id>")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap()
        .to_string();

    // JSON
    let answer = post(&gateway, "json", &full_form(APP_KEY), None).await?;
    assert_eq!(answer.status(), StatusCode::OK);
    let created: Value = answer.json().await?;
    let second = created[0]["service_request_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        created[0]["service_notice"]
            .as_str()
            .unwrap()
            .contains(&second)
    );
    assert_ne!(first, second);

    let record = routed(&gateway, &first, APP_KEY).await?;
    assert_eq!(record["service_request_id"], first.as_str());
    assert_eq!(record["status"], "open");
    assert_eq!(record["service_code"], "illegal-parking");
    assert_eq!(record["service_name"], "Illegal Parking");
    assert_eq!(record["agency_responsible"], "NYPD");
    assert_eq!(record["lat"], EMPIRE_STATE.latitude);
    assert_eq!(record["long"], EMPIRE_STATE.longitude);
    assert_eq!(record["address"], "350 5th Avenue");
    assert_eq!(record["media_url"], "https://photos.example/hydrant.jpg");
    assert!(
        record["status_notes"].as_str().unwrap().len() > 5,
        "{record}"
    );
    for field in [
        "requested_datetime",
        "updated_datetime",
        "expected_datetime",
    ] {
        let text = record[field].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(text).is_ok() && text.ends_with('Z'),
            "{field}: {text}"
        );
    }
    let description = record["description"].as_str().unwrap();
    assert!(
        description.contains("Grey sedan on the hydrant"),
        "{description}"
    );
    // the public record never carries the complainant's contact
    let text = record.to_string();
    for secret in [
        COMPLAINANT_NAME,
        COMPLAINANT_PHONE,
        COMPLAINANT_EMAIL,
        "Witness",
    ] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    let (_, xml) = get_xml(&format!(
        "{}/requests/{first}.xml?api_key={APP_KEY}",
        gateway.url
    ))
    .await?;
    for secret in [COMPLAINANT_NAME, COMPLAINANT_PHONE, COMPLAINANT_EMAIL] {
        assert!(!xml.contains(secret), "{secret} in {xml}");
    }
    assert!(xml.contains(&format!("<service_requests><request><service_request_id>{first}</service_request_id><status>open</status>")));

    // the contact went to intake's sealed store, with the integrator's consent
    let sr = suite
        .intake()
        .await?
        .get_service_request(dispatch311_proto::intake::v1::GetServiceRequestRequest {
            key: Some(
                dispatch311_proto::intake::v1::get_service_request_request::Key::SrNumber(
                    first.clone(),
                ),
            ),
        })
        .await;
    assert_eq!(
        sr.expect_err("filed by the app's identity, not the suite's")
            .code(),
        tonic::Code::NotFound
    );
    let app = suite
        .intake_as(dispatch311_auth::Role::Integrator, APP)
        .await?
        .release_complainant_contact(
            dispatch311_proto::intake::v1::ReleaseComplainantContactRequest {
                sr_number: first.clone(),
                purpose: dispatch311_proto::intake::v1::ReleasePurpose::ComplainantAccess as i32,
            },
        )
        .await?
        .into_inner()
        .complainant
        .unwrap();
    assert_eq!(app.name, COMPLAINANT_NAME);
    assert_eq!(app.email, COMPLAINANT_EMAIL);
    assert!(app.consent_to_contact, "the app's users consent");

    // filters: service_code, status, dates, and the paging extension
    let url = |query: &str| format!("{}/requests.json?api_key={APP_KEY}&{query}", gateway.url);
    let (_, all) = get_json(&url("service_code=illegal-parking")).await?;
    assert_eq!(all.as_array().unwrap().len(), 2, "{all}");
    let (_, none) = get_json(&url("service_code=noise-residential")).await?;
    assert_eq!(none.as_array().unwrap().len(), 0);
    let (_, open) = get_json(&url("status=open")).await?;
    assert_eq!(open.as_array().unwrap().len(), 2);
    let (_, closed) = get_json(&url("status=closed")).await?;
    assert_eq!(closed.as_array().unwrap().len(), 0);
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let last_week = (chrono::Utc::now() - chrono::Duration::days(7))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (_, before) = get_json(&url(&format!(
        "start_date={last_week}&end_date={yesterday}"
    )))
    .await?;
    assert_eq!(
        before.as_array().unwrap().len(),
        0,
        "nothing filed last week"
    );
    let (_, page_one) = get_json(&url("page_size=1&page=1")).await?;
    let (_, page_two) = get_json(&url("page_size=1&page=2")).await?;
    let (_, page_three) = get_json(&url("page_size=1&page=3")).await?;
    assert_eq!(page_one.as_array().unwrap().len(), 1);
    assert_eq!(page_two.as_array().unwrap().len(), 1);
    assert_ne!(
        page_one[0]["service_request_id"],
        page_two[0]["service_request_id"]
    );
    assert_eq!(page_three.as_array().unwrap().len(), 0);
    // service_request_id overrides the rest
    let (_, both) = get_json(&url(&format!(
        "service_request_id={first},{second}&service_code=noise-residential"
    )))
    .await?;
    assert_eq!(both.as_array().unwrap().len(), 2);

    // extensions: the public timeline as notes, the routing steps, the photos
    let (_, extended) = get_json(&format!(
        "{}/requests/{first}.json?api_key={APP_KEY}&extensions=true",
        gateway.url
    ))
    .await?;
    let notes = extended[0]["notes"].as_array().unwrap();
    assert!(notes.len() >= 2, "{extended}");
    assert_eq!(notes[0]["type"], "received");
    assert!(
        !extended[0]["extended_attributes"]["routing"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        extended[0]["extended_attributes"]["photos"],
        serde_json::json!(["https://photos.example/hydrant.jpg"])
    );

    // tokens: every service is realtime, the id is the token
    let (status, token) = get_json(&format!(
        "{}/tokens/{first}.json?api_key={APP_KEY}",
        gateway.url
    ))
    .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(token[0]["service_request_id"], first.as_str());
    assert_eq!(token[0]["token"], first.as_str());
    let (status, _) = get_json(&format!("{}/tokens/not-a-token.json", gateway.url)).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // another integrator's key: the public status, never the private fields
    let (status, seen) = get_json(&format!(
        "{}/requests/{first}.json?api_key={CRM_KEY}",
        gateway.url
    ))
    .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen[0]["status"], "open");
    for field in [
        "description",
        "lat",
        "long",
        "address",
        "media_url",
        "zipcode",
    ] {
        assert!(
            seen[0][field].is_null(),
            "{field} of another's request: {seen}"
        );
    }
    let (_, crm_list) =
        get_json(&format!("{}/requests.json?api_key={CRM_KEY}", gateway.url)).await?;
    assert_eq!(
        crm_list.as_array().unwrap().len(),
        0,
        "the CRM filed nothing"
    );
    drop(gateway);
    suite.stop().await
}

#[tokio::test]
async fn every_refusal_is_an_errors_list_with_the_right_status() -> anyhow::Result<()> {
    let suite = Suite::start(SuiteOptions::default()).await?;
    let gateway = gateway(&suite).await?;
    let errors = |answer: Value| -> Vec<String> {
        answer
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["description"].as_str().unwrap().to_string())
            .collect()
    };

    // no key, an unknown key
    let mut form = full_form(APP_KEY);
    form.retain(|(k, _)| *k != "api_key");
    let answer = post(&gateway, "json", &form, None).await?;
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    assert_eq!(errors(answer.json().await?), ["api_key is required"]);
    let answer = post(&gateway, "xml", &full_form("guessed"), None).await?;
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    assert!(answer.text().await?.contains("<errors><error><code>403</code><description>api_key is not valid</description></error></errors>"));
    let (status, _) = get_json(&format!("{}/requests.json", gateway.url)).await?;
    assert_eq!(status, StatusCode::FORBIDDEN, "a list needs a key");

    // unknown service, unknown jurisdiction
    let mut form = full_form(APP_KEY);
    form[2].1 = "unicorns".into();
    let answer = post(&gateway, "json", &form, None).await?;
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    let mut form = full_form(APP_KEY);
    form[1].1 = "boston.gov".into();
    let answer = post(&gateway, "json", &form, None).await?;
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    assert!(errors(answer.json().await?)[0].contains("boston.gov"));
    let (status, _) = get_json(&format!(
        "{}/requests/SR-2026-9999999.json?api_key={APP_KEY}",
        gateway.url
    ))
    .await?;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // bad input: one entry per problem, nothing filed
    let mut form = full_form(APP_KEY);
    form[4].1 = "north".into();
    form[13].1 = "x".repeat(4_001);
    form[3].1 = "Unicorn On The Hydrant".into();
    let answer = post(&gateway, "json", &form, None).await?;
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    let problems = errors(answer.json().await?);
    assert!(
        problems.iter().any(|p| p.starts_with("lat:")),
        "{problems:?}"
    );
    // intake's own field violations come back named as the client sent them
    let mut form = full_form(APP_KEY);
    form[13].1 = "x".repeat(4_001);
    form[12].1 = "12".into();
    let answer = post(&gateway, "json", &form, None).await?;
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    let problems = errors(answer.json().await?);
    assert!(
        problems.iter().any(|p| p.starts_with("description:")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.starts_with("phone:")),
        "{problems:?}"
    );
    let mut form = full_form(APP_KEY);
    form.retain(|(k, _)| !matches!(*k, "lat" | "long" | "address_string"));
    form.push(("address_id", "123".into()));
    let answer = post(&gateway, "json", &form, None).await?;
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    assert!(errors(answer.json().await?)[0].starts_with("address_id:"));
    let (status, window) = get_json(&format!(
        "{}/requests.json?api_key={APP_KEY}&start_date=2026-01-01T00:00:00Z&end_date=2026-06-01T00:00:00Z",
        gateway.url
    ))
    .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(errors(window)[0].contains("90 days"));
    let (_, listed) = get_json(&format!("{}/requests.json?api_key={APP_KEY}", gateway.url)).await?;
    assert_eq!(
        listed.as_array().unwrap().len(),
        0,
        "nothing was filed: {listed}"
    );

    // the same POST twice with one idempotency key files once
    let once = post(&gateway, "json", &full_form(APP_KEY), Some("app-retry-1")).await?;
    let twice = post(&gateway, "json", &full_form(APP_KEY), Some("app-retry-1")).await?;
    let (once, twice): (Value, Value) = (once.json().await?, twice.json().await?);
    assert_eq!(
        once[0]["service_request_id"],
        twice[0]["service_request_id"]
    );
    let (_, listed) = get_json(&format!("{}/requests.json?api_key={APP_KEY}", gateway.url)).await?;
    assert_eq!(listed.as_array().unwrap().len(), 1, "filed once");

    // intake down: 503 with Retry-After, in the Open311 shape
    let mut suite = suite;
    suite.kill(dispatch311_tests::suite::Service::Intake)?;
    let answer = post(&gateway, "xml", &full_form(APP_KEY), None).await?;
    assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(answer.headers().contains_key(header::RETRY_AFTER));
    assert!(
        answer
            .text()
            .await?
            .contains("<errors><error><code>503</code>")
    );
    drop(gateway);
    suite.stop().await
}

#[tokio::test]
async fn a_flood_past_the_rate_gets_429_with_retry_after() -> anyhow::Result<()> {
    let suite = Suite::start(SuiteOptions {
        env: vec![
            ("DISPATCH311_RATE_LIMIT_PER_SECOND".into(), "1".into()),
            ("DISPATCH311_RATE_LIMIT_BURST".into(), "2".into()),
        ],
        ..SuiteOptions::default()
    })
    .await?;
    let gateway = gateway(&suite).await?;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..6 {
        let answer = post(&gateway, "json", &full_form(APP_KEY), None).await?;
        statuses.push(answer.status());
        if answer.status() == StatusCode::TOO_MANY_REQUESTS {
            retry_after = answer.headers().get(header::RETRY_AFTER).cloned();
            let body: Value = answer.json().await?;
            assert_eq!(body[0]["code"], 429);
        }
    }
    assert!(statuses.contains(&StatusCode::OK), "{statuses:?}");
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let seconds: u64 = retry_after.expect("Retry-After").to_str()?.parse()?;
    assert!((1..=60).contains(&seconds));
    drop(gateway);
    suite.stop().await
}

#[tokio::test]
async fn a_photo_posted_with_the_request_is_stripped_and_a_traceparent_continues_into_intake()
-> anyhow::Result<()> {
    let suite = Suite::start(SuiteOptions::default()).await?;
    let gateway = gateway(&suite).await?;

    // the documented extension: a multipart POST with a `media` part
    let mut form = reqwest::multipart::Form::new();
    for (name, value) in full_form(APP_KEY) {
        if name != "media_url" {
            form = form.text(name, value);
        }
    }
    let photo = dispatch311_photos::samples::jpeg(true);
    form = form.part(
        "media",
        reqwest::multipart::Part::bytes(photo).file_name("hydrant.jpg"),
    );
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let answer = http()
        .post(format!("{}/requests.json", gateway.url))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .multipart(form)
        .send()
        .await?;
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(
        answer.headers()["x-trace-id"],
        trace_id,
        "the caller's trace continues"
    );
    let created: Value = answer.json().await?;
    let id = created[0]["service_request_id"]
        .as_str()
        .unwrap()
        .to_string();

    let (_, record) = get_json(&format!(
        "{}/requests/{id}.json?api_key={APP_KEY}&extensions=true",
        gateway.url
    ))
    .await?;
    assert_eq!(record[0]["extended_attributes"]["photo_count"], 1);
    // intake recorded the request under the caller's trace
    let sr = suite
        .intake_as(dispatch311_auth::Role::Integrator, APP)
        .await?
        .get_service_request(dispatch311_proto::intake::v1::GetServiceRequestRequest {
            key: Some(
                dispatch311_proto::intake::v1::get_service_request_request::Key::SrNumber(
                    id.clone(),
                ),
            ),
        })
        .await?
        .into_inner()
        .service_request
        .unwrap();
    assert_eq!(sr.trace_id, trace_id);
    assert_eq!(sr.photo_count, 1);
    // the stored photo carries none of the metadata it came with
    for entry in std::fs::read_dir(suite.log_dir.join("photos"))? {
        let bytes = std::fs::read(entry?.path())?;
        for secret in dispatch311_photos::samples::SECRETS {
            assert!(
                !String::from_utf8_lossy(&bytes).contains(secret),
                "{secret} in a stored photo"
            );
        }
    }
    // something that is not a photo is refused, naming the part
    let form = reqwest::multipart::Form::new()
        .text("api_key", APP_KEY)
        .text("service_code", "illegal-parking")
        .text("address_string", "350 5th Avenue")
        .part(
            "media",
            reqwest::multipart::Part::bytes(b"<html>holiday.jpg</html>".to_vec()),
        );
    let answer = http()
        .post(format!("{}/requests.json", gateway.url))
        .multipart(form)
        .send()
        .await?;
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    let errors: Value = answer.json().await?;
    assert!(
        errors[0]["description"]
            .as_str()
            .unwrap()
            .starts_with("media"),
        "{errors}"
    );
    drop(gateway);
    suite.stop().await
}
