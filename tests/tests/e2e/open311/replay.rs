//! The real half day (`service-requests-2023-02-28.csv`, 4,999 requests of
//! every agency) filed through the gateway as a 311 app would: each row a
//! form POST with its type's service code, descriptor, place and an
//! idempotency key; every row accounted for (filed, or refused with the
//! reason the specification's errors give); then every filed request read
//! back through `GET /requests.json`, page by page, with its status.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use dispatch311_open311::code_of;
use dispatch311_tests::{
    nyc311::{self, CsvRequest},
    suite::{Suite, SuiteOptions},
};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::Semaphore;

const KEY: &str = "replay-app-key-0123456789";

/// What the gateway should do with a row, from its published services.
fn expected(row: &CsvRequest, by_name: &HashMap<String, String>) -> Result<String, String> {
    let Some(code) = by_name.get(&code_of(&row.complaint_type)) else {
        return Err("no service".into());
    };
    let place = row.coordinates().is_some()
        || !row.incident_address.is_empty()
        || !row.intersection_street_1.is_empty();
    if !place {
        return Err("no location".into());
    }
    if row.why_not_fileable().is_some() {
        return Err("refused by intake".into());
    }
    Ok(code.clone())
}

#[tokio::test]
async fn a_real_half_day_filed_through_the_gateway_is_accounted_for_and_read_back()
-> anyhow::Result<()> {
    let csv = nyc311::data_dir().join(nyc311::HALF_DAY_FILE);
    if !csv.exists() {
        eprintln!(
            "\n!!!!!!!! SKIPPED: real 311 data not found at {} !!!!!!!!\n",
            csv.display()
        );
        return Ok(());
    }
    let rows = nyc311::read_rows(&csv)?;
    assert_eq!(rows.requests.len() + rows.rejected.len(), 4_999);
    let suite = Suite::start(SuiteOptions::default()).await?;
    let gateway = Arc::new(
        suite
            .spawn_open311(&[(KEY, "replay-311-app", false)], &[])
            .await?,
    );
    let http = reqwest::Client::new();

    let services: Vec<Value> = http
        .get(format!("{}/services.json", gateway.url))
        .send()
        .await?
        .json()
        .await?;
    let mut by_name = HashMap::new();
    for service in services {
        let code = service["service_code"].as_str().unwrap().to_string();
        by_name.insert(
            code_of(service["service_name"].as_str().unwrap()),
            code.clone(),
        );
        for keyword in service["keywords"].as_str().unwrap_or_default().split(',') {
            if !keyword.is_empty() {
                by_name.insert(code_of(keyword), code.clone());
            }
        }
    }

    let limit = Arc::new(Semaphore::new(16));
    let mut calls = Vec::new();
    for row in rows.requests.iter().cloned() {
        let (http, gateway) = (http.clone(), gateway.clone());
        let permit = limit.clone().acquire_owned().await?;
        let code = by_name
            .get(&code_of(&row.complaint_type))
            .cloned()
            .unwrap_or_else(|| code_of(&row.complaint_type));
        calls.push(tokio::spawn(async move {
            let mut form = vec![("api_key", KEY.to_string()), ("service_code", code)];
            if !row.descriptor.is_empty() {
                form.push(("attribute[descriptor]", row.descriptor.clone()));
            }
            if let Some((lat, long)) = row.coordinates() {
                form.push(("lat", lat.to_string()));
                form.push(("long", long.to_string()));
            }
            let street = if row.incident_address.is_empty() {
                &row.intersection_street_1
            } else {
                &row.incident_address
            };
            if !street.is_empty() {
                form.push(("address_string", street.clone()));
            }
            let answer = http
                .post(format!("{}/requests.json", gateway.url))
                .header("Idempotency-Key", format!("nyc-{}", row.unique_key))
                .form(&form)
                .send()
                .await;
            drop(permit);
            let answer = match answer {
                Ok(answer) => answer,
                Err(error) => return (row, Err(error.to_string())),
            };
            let status = answer.status();
            let body: Value = answer.json().await.unwrap_or(Value::Null);
            (row, Ok((status, body)))
        }));
    }
    let mut filed: HashMap<String, CsvRequest> = HashMap::new();
    let mut refused: HashMap<String, usize> = HashMap::new();
    for call in calls {
        let (row, answer) = call.await?;
        let (status, body) = answer.map_err(anyhow::Error::msg)?;
        match (expected(&row, &by_name), status) {
            (Ok(_), StatusCode::OK) => {
                filed.insert(
                    body[0]["service_request_id"].as_str().unwrap().to_string(),
                    row,
                );
            }
            (Err(reason), status) if status.is_client_error() => {
                assert!(
                    body[0]["code"].as_u64() == Some(u64::from(status.as_u16()))
                        && body[0]["description"].is_string(),
                    "row {}: an errors list, got {body}",
                    row.unique_key
                );
                *refused.entry(format!("{reason} ({status})")).or_default() += 1;
            }
            (expected, status) => {
                // a descriptor the type's definition does not list, for a type
                // without a type-wide rule, is refused (400) and says so
                let said = body[0]["description"].as_str().unwrap_or_default();
                assert!(
                    expected.is_ok()
                        && status == StatusCode::BAD_REQUEST
                        && said.starts_with("attribute[descriptor]"),
                    "row {} ({} / {}): expected {expected:?}, got {status} {body}",
                    row.unique_key,
                    row.complaint_type,
                    row.descriptor
                );
                *refused
                    .entry("descriptor not in the definition (400)".into())
                    .or_default() += 1;
            }
        }
    }
    let refused_total: usize = refused.values().sum();
    eprintln!(
        "open311 replay: {} rows: {} filed, {refused_total} refused {refused:?}, {} unreadable",
        rows.requests.len() + rows.rejected.len(),
        filed.len(),
        rows.rejected.len()
    );
    assert_eq!(
        filed.len() + refused_total,
        rows.requests.len(),
        "every row accounted for"
    );
    assert!(
        filed.len() > 4_000,
        "most of the city's requests file: {}",
        filed.len()
    );

    // read back: every filed request, page by page, routed (no longer just received)
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let mut seen = HashSet::new();
        let mut waiting = 0;
        let mut closed = 0;
        for page in 1.. {
            let list: Vec<Value> = http
                .get(format!(
                    "{}/requests.json?api_key={KEY}&page_size=1000&page={page}",
                    gateway.url
                ))
                .send()
                .await?
                .json()
                .await?;
            if list.is_empty() {
                break;
            }
            for record in &list {
                let id = record["service_request_id"].as_str().unwrap().to_string();
                let status = record["status"].as_str().unwrap();
                assert!(status == "open" || status == "closed", "{record}");
                if status == "closed" {
                    closed += 1;
                }
                if record["status_notes"] == "request received" {
                    waiting += 1;
                }
                let row = filed
                    .get(&id)
                    .unwrap_or_else(|| panic!("{id} was not filed here"));
                assert_eq!(
                    code_of(record["service_name"].as_str().unwrap()),
                    code_of(&row.complaint_type)
                );
                seen.insert(id);
            }
        }
        assert_eq!(
            seen.len(),
            filed.len(),
            "every filed request is listed once"
        );
        if waiting == 0 {
            eprintln!(
                "open311 replay: read back {} requests, {closed} closed (referred) and the rest open",
                seen.len()
            );
            assert!(closed > 0, "referrals to other agencies read as closed");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{waiting} requests still only received after two minutes"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    drop(gateway);
    suite.stop().await
}
