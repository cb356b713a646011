//! Real-data replay of linking: every NYPD request of a real half day of New
//! York 311 (2023-02-28), in filing order and with its real filing time, is
//! routed by the real routing service (its rules and precinct map) and queued
//! or linked by the real dispatch service. The test prints, per complaint
//! type, how many requests were linked and into how many jobs, and checks the
//! counts against its own computation of the same rule from the CSV (its own
//! address normalisation, distance and matching; only the rule's parameters
//! and each request's precinct come from routing's ExplainRoute).
//!
//! Routes are published straight onto the `route` queue, as intake does, so
//! that each request keeps its real filing time (intake stamps its own);
//! nothing is ever closed here, so every job stays open for the window.

use std::{
    collections::{BTreeMap, HashMap},
    time::Duration,
};

use chrono::{DateTime, Utc};
use dispatch311_domain::jobs::{kinds, queues};
use dispatch311_proto::{
    common::v1::{Address, DuplicateRule, GeoPoint},
    jobs::v1::RouteJob,
    routing::v1::{ExplainRouteRequest, RouteOutcome},
};
use dispatch311_queue::{JobQueue, QueueConfig};
use dispatch311_tests::{
    cad::{timestamp_of, wait_for_job},
    nyc311::{self, CsvRequest},
    suite::{Service, Suite, SuiteOptions},
};

/// A request as this test sees it: what routing said, and what it became.
struct Replayed {
    row: CsvRequest,
    sr_number: String,
    precinct: String,
    rule: DuplicateRule,
}

#[tokio::test]
async fn a_real_half_day_links_exactly_the_reports_the_rule_says() -> anyhow::Result<()> {
    let csv = nyc311::data_dir().join(nyc311::HALF_DAY_FILE);
    if !csv.exists() {
        eprintln!(
            "\n!!!!!!!! SKIPPED: real 311 data not found under {} !!!!!!!!\n",
            nyc311::data_dir().display()
        );
        return Ok(());
    }
    let mut rows: Vec<CsvRequest> = nyc311::read_requests(&csv)?
        .into_iter()
        .filter(CsvRequest::is_nypd)
        .collect();
    rows.sort_by_key(|row| (row.created, row.unique_key.clone()));
    let suite = Suite::start(SuiteOptions {
        env: vec![("DISPATCH311_LINK_DUPLICATES".into(), "true".into())],
        ..SuiteOptions::only(&[Service::Routing, Service::Dispatch])
    })
    .await?;
    let mut routing = suite.routing().await?;
    let dispatch = suite.dispatch().await?;
    let queue = JobQueue::connect(QueueConfig {
        redis_url: suite.redis_url.clone(),
        key_prefix: suite.redis_prefix.clone(),
        ..QueueConfig::default()
    })
    .await?;

    // what routing will do with each request: dispatched (with its precinct
    // and the type's rule) or not
    let mut replayed = Vec::new();
    for (n, row) in rows.into_iter().enumerate() {
        let Some((latitude, longitude)) = row.coordinates() else {
            continue;
        };
        let decision = routing
            .explain_route(ExplainRouteRequest {
                complaint_type: row.complaint_type.clone(),
                descriptor: row.descriptor.clone(),
                location: Some(GeoPoint {
                    latitude,
                    longitude,
                }),
                has_street_address: !row.incident_address.is_empty(),
            })
            .await?
            .into_inner()
            .decision
            .unwrap_or_default();
        if decision.outcome != RouteOutcome::Dispatch as i32 {
            continue;
        }
        let rule = decision.duplicate_rule.ok_or_else(|| {
            anyhow::anyhow!(
                "{}: a dispatch rule without a duplicate rule",
                row.complaint_type
            )
        })?;
        replayed.push(Replayed {
            sr_number: format!("SR-2023-{:07}", n + 1),
            precinct: decision.precinct,
            rule,
            row,
        });
    }

    // in filing order; reports of different types never meet, so each type
    // (and each parking descriptor, which must match too) is its own lane,
    // and a lane files its next request once dispatch has the last one
    let mut lanes: BTreeMap<String, Vec<&Replayed>> = BTreeMap::new();
    for request in &replayed {
        lanes.entry(lane_of(request)).or_default().push(request);
    }
    let lanes = lanes.into_values().map(|lane| {
        let queue = queue.clone();
        let dispatch = dispatch.clone();
        async move {
            let mut jobs = Vec::new();
            for request in lane {
                let row = &request.row;
                let (latitude, longitude) = row.coordinates().expect("filtered above");
                let route = RouteJob {
                    sr_id: uuid::Uuid::new_v4().to_string(),
                    sr_number: request.sr_number.clone(),
                    complaint_type: row.complaint_type.clone(),
                    descriptor: row.descriptor.clone(),
                    location: Some(GeoPoint {
                        latitude,
                        longitude,
                    }),
                    address: Some(Address {
                        street_address: row.incident_address.clone(),
                        borough: row.borough.clone(),
                        postal_code: row.incident_zip.clone(),
                        ..Default::default()
                    }),
                    created_at: Some(timestamp_of(row.created.with_timezone(&Utc))),
                    ..Default::default()
                };
                queue
                    .publish(queues::ROUTE, kinds::ROUTE, &route.sr_id, &route)
                    .await?;
                let job = wait_for_job(&dispatch, &request.sr_number).await?;
                jobs.push((request.sr_number.clone(), job.sr_number));
            }
            anyhow::Ok(jobs)
        }
    });
    let job_of: HashMap<String, String> = tokio::time::timeout(
        Duration::from_secs(600),
        futures::future::try_join_all(lanes),
    )
    .await??
    .into_iter()
    .flatten()
    .collect();

    // what dispatch did, per complaint type: requests linked, and the jobs
    // they joined
    let mut by_dispatch: BTreeMap<String, (usize, std::collections::BTreeSet<String>)> =
        BTreeMap::new();
    for request in &replayed {
        let job = &job_of[&request.sr_number];
        if *job != request.sr_number {
            let entry = by_dispatch
                .entry(request.row.complaint_type.clone())
                .or_default();
            entry.0 += 1;
            entry.1.insert(job.clone());
        }
    }
    let expected = independent_links(&replayed);

    println!(
        "\nlinked reports in {} dispatched NYPD requests of 2023-02-28:",
        replayed.len()
    );
    println!(
        "{:<32} {:>7} {:>10}",
        "complaint type", "linked", "into jobs"
    );
    let (mut linked, mut into) = (0, 0);
    for (complaint_type, (count, jobs)) in &by_dispatch {
        println!("{complaint_type:<32} {count:>7} {:>10}", jobs.len());
        linked += count;
        into += jobs.len();
    }
    println!("{:<32} {linked:>7} {into:>10}\n", "all");

    let actual: BTreeMap<String, (usize, usize)> = by_dispatch
        .into_iter()
        .map(|(t, (count, jobs))| (t, (count, jobs.len())))
        .collect();
    assert_eq!(
        actual, expected,
        "dispatch's links against the test's own count"
    );
    assert!(
        linked > 50,
        "a real half day has many duplicate reports: {linked}"
    );
    suite.stop().await
}

/// Reports that can match each other are in one lane.
fn lane_of(request: &Replayed) -> String {
    let row = &request.row;
    if request.rule.match_descriptor {
        format!("{}|{}", row.complaint_type, row.descriptor)
    } else {
        row.complaint_type.clone()
    }
}

/// The rule, computed here: a request joins the open job of its precinct and
/// type (and descriptor when the rule says) whose first report was filed
/// within the window, at the same address (case, spacing and punctuation
/// aside) or within the radius; the nearest, then the oldest. Returns, per
/// complaint type, the requests linked and the jobs they joined.
fn independent_links(replayed: &[Replayed]) -> BTreeMap<String, (usize, usize)> {
    struct FirstReport<'a> {
        sr_number: &'a str,
        precinct: &'a str,
        complaint_type: &'a str,
        descriptor: &'a str,
        address: String,
        at: (f64, f64),
        filed: DateTime<Utc>,
    }
    let mut jobs: Vec<FirstReport<'_>> = Vec::new();
    let mut linked: BTreeMap<String, (usize, std::collections::BTreeSet<&str>)> = BTreeMap::new();
    for request in replayed {
        let row = &request.row;
        let rule = &request.rule;
        let at = row
            .coordinates()
            .expect("dispatched requests have coordinates");
        let address = row
            .incident_address
            .to_uppercase()
            .replace(['.', ','], " ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let filed = row.created.with_timezone(&Utc);
        let found = jobs
            .iter()
            .filter(|job| {
                job.precinct == request.precinct
                    && job.complaint_type == row.complaint_type
                    && (!rule.match_descriptor || job.descriptor == row.descriptor)
                    && (filed - job.filed).num_seconds().abs()
                        <= i64::from(rule.window_minutes) * 60
            })
            .filter_map(|job| {
                let metres = if !address.is_empty() && address == job.address {
                    0.0
                } else {
                    haversine_m(job.at, at)
                };
                (metres <= f64::from(rule.radius_m)).then_some((job, metres))
            })
            .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.filed.cmp(&b.0.filed)));
        match found {
            Some((job, _)) => {
                let entry = linked.entry(row.complaint_type.clone()).or_default();
                entry.0 += 1;
                entry.1.insert(job.sr_number);
            }
            None => jobs.push(FirstReport {
                sr_number: &request.sr_number,
                precinct: &request.precinct,
                complaint_type: &row.complaint_type,
                descriptor: &row.descriptor,
                address,
                at,
                filed,
            }),
        }
    }
    linked
        .into_iter()
        .map(|(t, (count, jobs))| (t, (count, jobs.len())))
        .collect()
}

/// Metres between two WGS84 points (haversine, mean Earth radius).
fn haversine_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lat2) = (a.0.to_radians(), b.0.to_radians());
    let dlat = lat2 - lat1;
    let dlon = (b.1 - a.1).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * 6_371_008.8 * h.sqrt().asin()
}
