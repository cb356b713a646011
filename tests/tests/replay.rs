//! Real-data replay: every NYPD request of a real half day of New York 311
//! (2023-02-28) is filed through intake. Each valid row is accepted and
//! reaches the dispatch queue of the precinct that an independent
//! point-in-polygon check (here, not routing's code) finds for it; rows intake
//! cannot take are refused with INVALID_ARGUMENT and a reason; nothing is lost.

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

#[tokio::test]
async fn every_nypd_request_of_a_real_half_day_reaches_its_precinct_queue() -> anyhow::Result<()> {
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
    let nypd: Vec<CsvRequest> = rows
        .requests
        .into_iter()
        .filter(CsvRequest::is_nypd)
        .collect();
    assert!(
        nypd.len() > 1_500,
        "the half day has about 1,569 police requests, read {}",
        nypd.len()
    );
    let map = IndependentMap::load(&map_path)?;

    let suite = Suite::start(SuiteOptions::default().with_real_precinct_map()).await?;
    let intake = suite.intake().await?;

    // file every row, 16 at a time, as the city's 311 system would
    let limit = Arc::new(Semaphore::new(16));
    let mut calls = Vec::new();
    for row in nypd.iter().cloned() {
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
        nypd.len(),
        "every row was answered"
    );

    // every accepted request with coordinates reaches a queue; those without
    // coordinates cannot be placed in a precinct and wait for 311 triage
    let with_coordinates = accepted
        .values()
        .filter(|r| r.coordinates().is_some())
        .count();
    let pool = suite.database().await?;
    eventually(
        Duration::from_secs(120),
        "every request with coordinates in a dispatch queue",
        || {
            let pool = pool.clone();
            async move {
                let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM dispatch.jobs")
                    .fetch_one(&pool)
                    .await?;
                Ok((jobs == with_coordinates as i64).then_some(()))
            }
        },
    )
    .await?;

    let queued: Vec<(String, String)> =
        sqlx::query_as("SELECT sr_number, precinct FROM dispatch.jobs")
            .fetch_all(&pool)
            .await?;
    let mut wrong = Vec::new();
    for (sr_number, precinct) in &queued {
        let row = &accepted[sr_number];
        let (latitude, longitude) = row
            .coordinates()
            .expect("only located requests are dispatched");
        let expected = map.precinct_at(latitude, longitude);
        if expected != Some(precinct.as_str()) {
            wrong.push(format!(
                "{} ({latitude},{longitude}): routed to {precinct}, map says {expected:?}",
                row.unique_key
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} requests in the wrong precinct:\n{}",
        wrong.len(),
        wrong.join("\n")
    );

    // nothing lost: each accepted request is queued or held for triage, publicly
    let accepted_count = accepted.len() as i64;
    eventually(Duration::from_secs(60), "intake to show every request's outcome", || {
        let pool = pool.clone();
        async move {
            let settled: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM intake.service_requests WHERE status IN ('QUEUED', 'NEEDS_TRIAGE')",
            )
            .fetch_one(&pool)
            .await?;
            Ok((settled == accepted_count).then_some(()))
        }
    })
    .await?;
    let triaged: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM intake.service_requests WHERE status = 'NEEDS_TRIAGE'",
    )
    .fetch_one(&pool)
    .await?;
    assert_eq!(
        triaged as usize,
        accepted.len() - with_coordinates,
        "only requests without coordinates need triage"
    );
    eprintln!(
        "replay: {} police rows, {} accepted ({} queued, {} for triage), {} refused",
        nypd.len(),
        accepted.len(),
        with_coordinates,
        triaged,
        refused
    );

    suite.stop().await
}
