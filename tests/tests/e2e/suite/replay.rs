//! Real-data replay: every request of a real half day of New York 311
//! (2023-02-28, every agency) is filed through intake with the suite's default
//! configuration — the precinct map and rules the binaries ship, nothing from
//! the data folder. Every row is accounted for: routed to a precinct queue,
//! referred to its agency, or held for 311 triage with a reason; none is
//! refused for its complaint type, and every police request with coordinates
//! reaches the precinct that an independent point-in-polygon check against the
//! full official map (here, not routing's code) finds for it.

use std::{collections::HashMap, sync::Arc, time::Duration};

use dispatch311_tests::{
    nyc311::{self, CsvRequest},
    suite::{Suite, SuiteOptions, eventually},
};
use geo::{Contains, MultiPolygon, Point};
use tokio::sync::Semaphore;
use tonic_types::StatusExt;

const FILE: &str = "nyc311/service-requests-2023-02-28.csv";

/// Precinct polygons read straight from the GeoJSON, for an independent check.
struct IndependentMap(Vec<(String, MultiPolygon<f64>)>);

impl IndependentMap {
    fn load(path: &std::path::Path) -> anyhow::Result<Self> {
        let collection: geojson::FeatureCollection = std::fs::read_to_string(path)?.parse()?;
        let mut precincts = Vec::new();
        for feature in collection.features {
            let precinct = match feature.property("precinct") {
                Some(serde_json::Value::Number(n)) => n.to_string(),
                Some(serde_json::Value::String(s)) => s.trim().to_string(),
                other => anyhow::bail!("feature without a precinct: {other:?}"),
            };
            let geometry: geo::Geometry<f64> = feature
                .geometry
                .expect("precincts have shapes")
                .try_into()?;
            let shape = match geometry {
                geo::Geometry::MultiPolygon(m) => m,
                geo::Geometry::Polygon(p) => MultiPolygon(vec![p]),
                other => anyhow::bail!("unexpected geometry {other:?}"),
            };
            precincts.push((precinct, shape));
        }
        Ok(Self(precincts))
    }

    fn precinct_at(&self, latitude: f64, longitude: f64) -> Option<&str> {
        let point = Point::new(longitude, latitude);
        self.0
            .iter()
            .find(|(_, shape)| shape.contains(&point))
            .map(|(p, _)| p.as_str())
    }
}

/// Where routing sends a row's agency, where the shipped rules deliberately
/// differ from the city's own routing of that half day.
fn expected_agency(row: &CsvRequest) -> &str {
    match (row.agency.as_str(), row.complaint_type.as_str()) {
        // the city files most encampment reports with NYPD
        ("DHS", "Encampment") => "NYPD",
        // 311's routing desk code for sewer and water work that DEP does
        ("NYC311-PRD", "Sewer" | "Water System") => "DEP",
        (agency, _) => agency,
    }
}

#[tokio::test]
async fn every_request_of_a_real_half_day_is_routed_referred_or_triaged() -> anyhow::Result<()> {
    let data = nyc311::data_dir();
    let csv = data.join(FILE);
    let map_path = data.join("nypd-precincts.geojson");
    if !csv.exists() || !map_path.exists() {
        eprintln!(
            "\n!!!!!!!! SKIPPED: real 311 data not found under {} !!!!!!!!\n",
            data.display()
        );
        return Ok(());
    }
    let rows = nyc311::read_rows(&csv)?;
    for problem in &rows.rejected {
        eprintln!("replay: unreadable row {problem}");
    }
    let all = rows.requests;
    assert!(
        all.len() + rows.rejected.len() == 4_999,
        "the half day has 4,999 rows, read {} and {} unreadable",
        all.len(),
        rows.rejected.len()
    );
    let map = IndependentMap::load(&map_path)?;

    // the default configuration: no DISPATCH311_PRECINCT_MAP, no rules file
    let suite = Suite::start(SuiteOptions::default()).await?;
    let intake = suite.intake().await?;

    // file every row, 16 at a time, as the city's 311 system would
    let limit = Arc::new(Semaphore::new(16));
    let mut calls = Vec::new();
    for row in all.iter().cloned() {
        let mut intake = intake.clone();
        let permit = limit.clone().acquire_owned().await?;
        calls.push(tokio::spawn(async move {
            let request = row.to_create_request(&format!("nyc-{}", row.unique_key));
            let answer = intake.create_service_request(request).await;
            drop(permit);
            (row, answer)
        }));
    }
    let mut accepted: HashMap<String, CsvRequest> = HashMap::new();
    let mut refused = 0;
    for call in calls {
        let (row, answer) = call.await?;
        match (answer, row.why_not_fileable()) {
            (Ok(response), None) => {
                let sr = response.into_inner().service_request.unwrap();
                accepted.insert(sr.sr_number, row);
            }
            (Err(status), Some(reason)) => {
                assert_eq!(
                    status.code(),
                    tonic::Code::InvalidArgument,
                    "row {}: {status:?}",
                    row.unique_key
                );
                let violations = status
                    .get_details_bad_request()
                    .expect("field violations")
                    .field_violations;
                assert!(
                    !violations.is_empty(),
                    "row {} refused without a reason",
                    row.unique_key
                );
                assert!(
                    violations.iter().all(|v| v.field != "complaint_type"),
                    "row {} refused for its type {:?}",
                    row.unique_key,
                    row.complaint_type
                );
                eprintln!(
                    "replay: row {} refused ({reason}): {}",
                    row.unique_key,
                    status.message()
                );
                refused += 1;
            }
            (Ok(_), Some(reason)) => {
                panic!("row {} should have been refused: {reason}", row.unique_key)
            }
            (Err(status), None) => panic!("valid row {} refused: {status:?}", row.unique_key),
        }
    }
    assert_eq!(
        accepted.len() + refused,
        all.len(),
        "every row was answered"
    );

    // every accepted request settles: queued at a precinct, referred, or triaged
    let pool = suite.database().await?;
    let accepted_count = accepted.len() as i64;
    eventually(
        Duration::from_secs(120),
        "every request routed, referred or triaged",
        || {
            let pool = pool.clone();
            async move {
                let settled: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM intake.service_requests \
                 WHERE status IN ('QUEUED', 'REFERRED', 'NEEDS_TRIAGE')",
                )
                .fetch_one(&pool)
                .await?;
                Ok((settled == accepted_count).then_some(()))
            }
        },
    )
    .await?;

    let outcomes: Vec<(String, String, String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT d.sr_number, s.status, d.agency, d.precinct, d.rule_id, \
                (SELECT t.message FROM intake.timeline_entries t WHERE t.sr_id = s.sr_id \
                 AND t.status = 'NEEDS_TRIAGE' ORDER BY t.id DESC LIMIT 1) \
         FROM routing.route_decisions d \
         JOIN intake.service_requests s ON s.sr_id = d.sr_id",
    )
    .fetch_all(&pool)
    .await?;
    assert_eq!(
        outcomes.len(),
        accepted.len(),
        "one routing decision per request"
    );

    let mut wrong = Vec::new();
    let mut by_status: std::collections::BTreeMap<&str, usize> = Default::default();
    let mut triage_reasons: std::collections::BTreeMap<String, usize> = Default::default();
    for (sr_number, status, agency, precinct, rule_id, message) in &outcomes {
        let row = &accepted[sr_number];
        *by_status.entry(status.as_str()).or_default() += 1;
        if rule_id == "default" {
            wrong.push(format!(
                "{}: no rule for {:?}",
                row.unique_key, row.complaint_type
            ));
            continue;
        }
        match status.as_str() {
            "QUEUED" => {
                let Some((latitude, longitude)) = row.coordinates() else {
                    wrong.push(format!(
                        "{}: dispatched without coordinates",
                        row.unique_key
                    ));
                    continue;
                };
                let expected = map.precinct_at(latitude, longitude);
                if agency != "NYPD" || expected != Some(precinct.as_str()) {
                    wrong.push(format!(
                        "{} ({latitude},{longitude}): routed to {agency} {precinct}, map says {expected:?}",
                        row.unique_key
                    ));
                }
            }
            "REFERRED" => {
                if agency != expected_agency(row) {
                    wrong.push(format!(
                        "{} {:?}: referred to {agency}, the city sent it to {}",
                        row.unique_key, row.complaint_type, row.agency
                    ));
                }
            }
            "NEEDS_TRIAGE" => {
                let message = message.as_deref().unwrap_or_default();
                let reason = message.trim_start_matches("held for review by 311 staff: ");
                if reason.is_empty() || reason == message {
                    wrong.push(format!("{}: triaged without a reason", row.unique_key));
                }
                // only a place can be missing: every type of the day has a rule
                if expected_agency(row) == "NYPD" && row.coordinates().is_some() {
                    wrong.push(format!(
                        "{}: located police request triaged: {reason}",
                        row.unique_key
                    ));
                }
                *triage_reasons
                    .entry(format!("{} ({})", row.complaint_type, reason))
                    .or_default() += 1;
            }
            other => wrong.push(format!("{}: status {other}", row.unique_key)),
        }
    }
    assert!(
        wrong.is_empty(),
        "{} requests routed wrongly:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    let police_located = accepted
        .values()
        .filter(|row| expected_agency(row) == "NYPD" && row.coordinates().is_some())
        .count();
    assert_eq!(
        by_status.get("QUEUED").copied().unwrap_or(0),
        police_located,
        "every located police request is in its precinct's queue"
    );
    eprintln!(
        "replay: {} rows, {} accepted, {} refused; {by_status:?}",
        all.len() + rows.rejected.len(),
        accepted.len(),
        refused
    );
    for (reason, count) in &triage_reasons {
        eprintln!("replay: triaged {count} × {reason}");
    }

    suite.stop().await
}
