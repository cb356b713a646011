//! The Open311 gateway's share of the benchmark: the same real rows filed as
//! a 311 app files them, form POSTs to `/requests.json` with an idempotency
//! key, at the same concurrency as the gRPC creates, so the two lines of the
//! table compare what REST in front of intake costs.

use std::collections::HashMap;
use std::sync::Arc;

use dispatch311_tests::nyc311::CsvRequest;
use tokio::time::Instant;

use super::{LoopStats, closed_loop};

/// The gateway's service codes by complaint type (its name and other
/// names), with the descriptors its definition lists (empty: any).
async fn catalog(
    http: &reqwest::Client,
    url: &str,
) -> anyhow::Result<HashMap<String, (String, Vec<String>)>> {
    let services: Vec<serde_json::Value> = http
        .get(format!("{url}/services.json"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let mut by_type = HashMap::new();
    for service in services {
        let code = service["service_code"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut descriptors = Vec::new();
        if service["metadata"] == true {
            let definition: serde_json::Value = http
                .get(format!("{url}/services/{code}.json"))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let attribute = &definition["attributes"][0];
            if attribute["required"] == true {
                descriptors = attribute["values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v["key"].as_str().map(str::to_lowercase))
                    .collect();
            }
        }
        let names = std::iter::once(service["service_name"].as_str().unwrap_or_default())
            .chain(service["keywords"].as_str().unwrap_or_default().split(','))
            .filter(|name| !name.is_empty())
            .map(str::to_lowercase)
            .collect::<Vec<_>>();
        for name in names {
            by_type.insert(name, (code.clone(), descriptors.clone()));
        }
    }
    Ok(by_type)
}

/// POSTs `total` of the rows the gateway takes (a service for the type, a
/// listed descriptor where one is required), `concurrency` at a time.
pub async fn creates(
    url: &str,
    api_key: &str,
    rows: &Arc<Vec<CsvRequest>>,
    concurrency: usize,
    total: u64,
    run_id: &str,
    deadline: Instant,
) -> anyhow::Result<LoopStats> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let by_type = catalog(&http, url).await?;
    let forms: Vec<Vec<(&'static str, String)>> = rows
        .iter()
        .filter_map(|row| {
            let (code, descriptors) = by_type.get(&row.complaint_type.to_lowercase())?;
            let listed =
                descriptors.is_empty() || descriptors.contains(&row.descriptor.to_lowercase());
            let (lat, long) = row.coordinates()?;
            listed.then(|| {
                let mut form = vec![
                    ("api_key", api_key.to_string()),
                    ("service_code", code.clone()),
                    ("lat", lat.to_string()),
                    ("long", long.to_string()),
                ];
                if !row.descriptor.is_empty() {
                    form.push(("attribute[descriptor]", row.descriptor.clone()));
                }
                form
            })
        })
        .collect();
    anyhow::ensure!(!forms.is_empty(), "no row maps to a service of the gateway");
    let forms = Arc::new(forms);
    let endpoint = Arc::new(format!("{url}/requests.json"));
    let prefix = Arc::new(format!("bench-{run_id}-open311"));
    Ok(closed_loop(concurrency, total, deadline, move |index| {
        let (http, forms, endpoint, prefix) = (
            http.clone(),
            forms.clone(),
            endpoint.clone(),
            prefix.clone(),
        );
        async move {
            let form = &forms[index as usize % forms.len()];
            let answer = http
                .post(endpoint.as_str())
                .header("Idempotency-Key", format!("{prefix}-{index}"))
                .form(form)
                .send()
                .await
                .map_err(|error| ("HTTP".to_string(), error.to_string()))?;
            let status = answer.status();
            if status.is_success() {
                Ok(())
            } else {
                let body = answer.text().await.unwrap_or_default();
                Err((format!("HTTP {}", status.as_u16()), body))
            }
        }
    })
    .await)
}
