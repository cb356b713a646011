//! Real-data replay through dispatch: every NYPD request with coordinates of a
//! real half day of New York 311 (2023-02-28) is filed through intake, queued
//! at its precinct, assigned, acknowledged, driven to, arrived at (at the
//! incident) and closed with the outcome the police department really
//! published for it (`nyc311::resolution_code`). Rows whose text states no
//! outcome stay open. Rows the department closed as "outside police
//! jurisdiction" or "referred" are refused that closure (police work never
//! leaves police hands by a plain close) and are handed on by a supervisor's
//! approved re-route instead; duplicates, which the record does not link to
//! another report, are closed by a supervisor with the record's text.
//!
//! Oversight's figures (GetPrecinctStats) must then match, precinct by
//! precinct, what this test computes itself from the jobs: received, closed,
//! share closed within 5 minutes of assignment, share with a summons, median
//! and p90 time to close. Replayed in seconds, almost every closure is within
//! 5 minutes — exactly what the figure has to show.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use dispatch311_proto::{
    common::v1::{GeoPoint, ResolutionCode, ServiceRequestStatus},
    dispatch::v1::{ApproveRerouteRequest, Job, JobState},
};
use dispatch311_tests::{
    cad::{
        Dispatch, close, close_request, close_request_as_recorded, drive_to_scene, get_job,
        percentile_bounds, register_unit, seconds_between, supervisor, timestamp_of, verify,
        wait_for_job, wait_for_public_status,
    },
    nyc311::{self, CsvRequest},
    suite::{Suite, SuiteOptions},
};
use tokio::sync::Semaphore;
use tonic::Code;

const UNITS_PER_PRECINCT: usize = 3;
const CONCURRENCY: usize = 16;

/// What the test did with one job, and the job as dispatch shows it after.
struct Replayed {
    code: ResolutionCode,
    job: Job,
}

#[tokio::test]
async fn a_real_half_day_of_police_311_closes_with_figures_that_add_up() -> anyhow::Result<()> {
    let csv = nyc311::data_dir().join(nyc311::HALF_DAY_FILE);
    let map = nyc311::data_dir().join(nyc311::PRECINCTS_FILE);
    if !csv.exists() || !map.exists() {
        eprintln!(
            "\n!!!!!!!! SKIPPED: real 311 data not found under {} !!!!!!!!\n",
            nyc311::data_dir().display()
        );
        return Ok(());
    }
    let rows: Vec<CsvRequest> = nyc311::read_requests(&csv)?
        .into_iter()
        .filter(|r| r.is_nypd() && r.coordinates().is_some() && r.why_not_fileable().is_none())
        .collect();
    assert!(
        rows.len() > 1_400,
        "police rows with coordinates: {}",
        rows.len()
    );

    let window_start = chrono::Utc::now() - chrono::Duration::minutes(1);
    let started = std::time::Instant::now();
    let suite = Suite::start(SuiteOptions::default()).await?;
    let intake = suite.intake().await?;
    let dispatch = suite.dispatch().await?;
    let limit = Arc::new(Semaphore::new(CONCURRENCY));

    // file every row, as the city's 311 system would ...
    let mut calls = Vec::new();
    for row in rows.iter().cloned() {
        let mut intake = intake.clone();
        let permit = limit.clone().acquire_owned().await?;
        calls.push(tokio::spawn(async move {
            let request = row.to_create_request(&format!("replay-{}", row.unique_key));
            let sr = intake
                .create_service_request(request)
                .await?
                .into_inner()
                .service_request
                .expect("the filed request");
            drop(permit);
            anyhow::Ok((row, sr.sr_number))
        }));
    }
    let mut filed = Vec::new();
    for call in calls {
        filed.push(call.await??);
    }
    // ... and wait for each one's job in its precinct queue
    let mut waits = Vec::new();
    for (row, sr_number) in filed {
        let dispatch = dispatch.clone();
        let permit = limit.clone().acquire_owned().await?;
        waits.push(tokio::spawn(async move {
            let job = wait_for_job(&dispatch, &sr_number).await?;
            drop(permit);
            anyhow::Ok((row, job))
        }));
    }
    let mut queued: Vec<(CsvRequest, Job)> = Vec::new();
    for wait in waits {
        queued.push(wait.await??);
    }
    let filed_in = started.elapsed();

    // a few units per precinct, each working its share of the precinct's jobs in turn
    let mut by_precinct: BTreeMap<String, Vec<(CsvRequest, Job)>> = BTreeMap::new();
    for (row, job) in queued {
        by_precinct
            .entry(job.precinct.clone())
            .or_default()
            .push((row, job));
    }
    let mut shifts = Vec::new();
    for (precinct, jobs) in &by_precinct {
        let first_location = jobs[0].1.location.expect("located");
        for k in 0..UNITS_PER_PRECINCT {
            let officer_id = format!("O-{precinct}-{k}");
            let unit = register_unit(
                &dispatch,
                &format!("{precinct}-REPLAY-{k}"),
                precinct,
                &[officer_id.as_str()],
                first_location,
            )
            .await?;
            let share: Vec<(CsvRequest, Job)> = jobs
                .iter()
                .skip(k)
                .step_by(UNITS_PER_PRECINCT)
                .cloned()
                .collect();
            shifts.push((unit, officer_id, share));
        }
    }
    let mut workers = Vec::new();
    for (unit, officer_id, share) in shifts {
        let dispatch = dispatch.clone();
        let limit = limit.clone();
        workers.push(tokio::spawn(async move {
            let mut done = Vec::new();
            for (row, job) in share {
                let code = nyc311::resolution_code(&row.resolution_description);
                let _permit = limit.acquire().await?;
                let replayed = work(&dispatch, &unit, &officer_id, &row, job, code).await?;
                done.push(replayed);
            }
            anyhow::Ok(done)
        }));
    }
    let mut replayed: Vec<Replayed> = Vec::new();
    for worker in workers {
        replayed.extend(worker.await??);
    }
    let worked_in = started.elapsed() - filed_in;

    // the figures, computed here from the jobs as dispatch recorded them
    #[derive(Default)]
    struct Expected {
        received: i64,
        closed: i64,
        within_five_minutes: i64,
        summons: i64,
        to_close: Vec<f64>,
    }
    let mut expected: BTreeMap<String, Expected> = BTreeMap::new();
    let mut outcomes: HashMap<&'static str, usize> = HashMap::new();
    for Replayed { code, job } in &replayed {
        let figures = expected.entry(job.precinct.clone()).or_default();
        figures.received += 1;
        *outcomes.entry(code.as_str_name()).or_default() += 1;
        let state = JobState::try_from(job.state)?;
        match code {
            ResolutionCode::Unspecified => {
                assert_eq!(
                    state,
                    JobState::Queued,
                    "{} has no outcome: left open",
                    job.sr_number
                );
                continue;
            }
            ResolutionCode::OutsideJurisdiction | ResolutionCode::Referred => {
                assert_eq!(state, JobState::Rerouted, "{}", job.sr_number);
                continue;
            }
            _ => assert_eq!(state, JobState::Closed, "{}", job.sr_number),
        }
        assert_eq!(job.resolution_code, *code as i32);
        figures.closed += 1;
        let seconds = seconds_between(
            job.assigned_at.as_ref().expect("assigned"),
            job.closed_at.as_ref().expect("closed"),
        );
        if seconds < 300.0 {
            figures.within_five_minutes += 1;
        }
        if *code == ResolutionCode::SummonsIssued {
            figures.summons += 1;
        }
        figures.to_close.push(seconds);
    }

    let window_end = chrono::Utc::now() + chrono::Duration::minutes(1);
    let mut totals = (0_i64, 0_i64, 0_i64);
    for (precinct, figures) in &mut expected {
        figures.to_close.sort_by(f64::total_cmp);
        let stats = dispatch
            .clone()
            .get_precinct_stats(dispatch311_proto::dispatch::v1::GetPrecinctStatsRequest {
                precinct: precinct.clone(),
                window_start: Some(timestamp_of(window_start)),
                window_end: Some(timestamp_of(window_end)),
            })
            .await?
            .into_inner();
        assert_eq!(
            stats.jobs_received, figures.received,
            "precinct {precinct}: received"
        );
        assert_eq!(
            stats.jobs_closed, figures.closed,
            "precinct {precinct}: closed"
        );
        let share = |part: i64| {
            if figures.closed == 0 {
                0.0
            } else {
                part as f64 / figures.closed as f64
            }
        };
        assert!(
            (stats.share_closed_within_5_minutes - share(figures.within_five_minutes)).abs() < 1e-9,
            "precinct {precinct}: share within 5 minutes {} here, {} from dispatch",
            share(figures.within_five_minutes),
            stats.share_closed_within_5_minutes
        );
        assert!(
            (stats.share_with_summons - share(figures.summons)).abs() < 1e-9,
            "precinct {precinct}: share with summons {} here, {} from dispatch",
            share(figures.summons),
            stats.share_with_summons
        );
        if !figures.to_close.is_empty() {
            for (value, fraction, what) in [
                (stats.median_seconds_to_close, 0.5, "median"),
                (stats.p90_seconds_to_close, 0.9, "p90"),
            ] {
                let (low, high) = percentile_bounds(&figures.to_close, fraction);
                assert!(
                    value >= low - 0.01 && value <= high + 0.01,
                    "precinct {precinct}: {what} time to close {value}s, expected within [{low}, {high}]"
                );
            }
        }
        totals.0 += figures.received;
        totals.1 += figures.closed;
        totals.2 += figures.within_five_minutes;
    }
    let (received, closed, fast) = totals;
    assert_eq!(
        received as usize,
        rows.len(),
        "every row reached a precinct"
    );
    assert!(
        fast as f64 >= 0.99 * closed as f64,
        "replayed in seconds, nearly every closure is within 5 minutes: {fast} of {closed}"
    );

    // every log is intact, and the public record shows each outcome
    let mut checks = Vec::new();
    for Replayed { code, job } in replayed {
        let dispatch = dispatch.clone();
        let limit = limit.clone();
        checks.push(tokio::spawn(async move {
            let _permit = limit.acquire().await?;
            let report = verify(&dispatch, &job.job_id).await?;
            anyhow::ensure!(report.intact, "{}: {report:?}", job.sr_number);
            anyhow::Ok((code, job.sr_number))
        }));
    }
    let mut public_checks = Vec::new();
    for check in checks {
        public_checks.push(check.await??);
    }
    for chunk in public_checks.chunks(CONCURRENCY) {
        let mut waits = Vec::new();
        for (code, sr_number) in chunk {
            let status = match code {
                ResolutionCode::Unspecified => ServiceRequestStatus::Queued,
                ResolutionCode::OutsideJurisdiction | ResolutionCode::Referred => {
                    ServiceRequestStatus::Referred
                }
                _ => ServiceRequestStatus::Closed,
            };
            let intake = &intake;
            waits.push(async move {
                let sr = wait_for_public_status(intake, sr_number, status).await?;
                if status == ServiceRequestStatus::Closed {
                    let resolution = sr.resolution.unwrap_or_default();
                    anyhow::ensure!(
                        resolution.code == *code as i32 && !resolution.text.is_empty(),
                        "{sr_number}: public resolution {resolution:?}, closed as {code:?}"
                    );
                }
                anyhow::Ok(())
            });
        }
        for result in futures::future::join_all(waits).await {
            result?;
        }
    }

    let checked_in = started.elapsed() - filed_in - worked_in;
    let mut outcomes: Vec<(&str, usize)> = outcomes.into_iter().collect();
    outcomes.sort();
    eprintln!(
        "dispatch replay: {received} jobs in {} precincts, {closed} closed ({fast} within 5 minutes \
         of assignment), filed in {filed_in:.1?}, worked in {worked_in:.1?}, checked in {checked_in:.1?}; \
         outcomes {outcomes:?}",
        expected.len()
    );

    suite.stop().await
}

/// Works one job the way the police department's published outcome says.
async fn work(
    dispatch: &Dispatch,
    unit: &dispatch311_proto::dispatch::v1::Unit,
    officer_id: &str,
    row: &CsvRequest,
    job: Job,
    code: ResolutionCode,
) -> anyhow::Result<Replayed> {
    if code == ResolutionCode::Unspecified {
        return Ok(Replayed { code, job });
    }
    let incident: GeoPoint = job.location.expect("located");
    drive_to_scene(dispatch, &job, unit, officer_id, incident).await?;
    if matches!(
        code,
        ResolutionCode::OutsideJurisdiction | ResolutionCode::Referred
    ) {
        let refused = close(
            dispatch,
            close_request(&job.job_id, officer_id, code, incident),
        )
        .await
        .expect_err("police work leaves police hands only by a supervisor's re-route");
        assert_eq!(
            refused.code(),
            Code::FailedPrecondition,
            "{}: {refused:?}",
            row.unique_key
        );
        dispatch
            .clone()
            .approve_reroute(ApproveRerouteRequest {
                actor: supervisor(),
                job_id: job.job_id.clone(),
                // the data does not say who took these; the transportation
                // department stands in for the receiving agency
                agency: "DOT".into(),
                reason: format!(
                    "the department's own closing text for 311 request {}: {}",
                    row.unique_key, row.resolution_description
                ),
            })
            .await?;
    } else {
        let request = close_request_as_recorded(
            &job.job_id,
            officer_id,
            code,
            incident,
            &row.unique_key,
            &row.resolution_description,
        );
        close(dispatch, request).await?;
    }
    let job = get_job(dispatch, &job.job_id).await?;
    Ok(Replayed { code, job })
}
