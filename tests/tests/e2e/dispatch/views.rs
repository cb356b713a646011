//! The supervisor's and oversight's views of a precinct, end to end with the
//! real binaries: ListJobs with its filters (open, assigned, by unit, overdue,
//! flagged) and who is responsible; GetPrecinctStats for a window, checked
//! against figures computed here from the jobs and timelines themselves.

use dispatch311_proto::{
    common::v1::ResolutionCode,
    dispatch::v1::{
        CancelJobRequest, EventType, GetJobTimelineRequest, GetPrecinctStatsRequest,
        GetPrecinctStatsResponse, Job, JobFilter, JobState, ListJobsRequest,
    },
};
use dispatch311_tests::{
    cad::{
        Dispatch, EMPIRE_STATE, MIDTOWN_NORTH, acknowledge, assign, close, close_request,
        dispatcher, drive_to_scene, en_route, get_job, hydrant_at, offset, percentile_bounds,
        register_unit, seconds_between, timeline, timestamp_of,
    },
    suite::{Suite, SuiteOptions},
};
use tonic::Code;

async fn list(
    dispatch: &Dispatch,
    filter: JobFilter,
    unit_id: &str,
    page_size: i32,
) -> anyhow::Result<Vec<Job>> {
    let mut jobs = Vec::new();
    let mut token = String::new();
    loop {
        let page = dispatch
            .clone()
            .list_jobs(ListJobsRequest {
                precinct: "14".into(),
                filter: filter as i32,
                unit_id: unit_id.into(),
                page_size,
                page_token: token,
            })
            .await?
            .into_inner();
        if page_size > 0 {
            assert!(page.jobs.len() <= page_size as usize);
        }
        jobs.extend(page.jobs);
        if page.next_page_token.is_empty() {
            return Ok(jobs);
        }
        token = page.next_page_token;
    }
}

fn ids(jobs: &[Job]) -> Vec<String> {
    let mut ids: Vec<String> = jobs.iter().map(|j| j.job_id.clone()).collect();
    ids.sort();
    ids
}

fn ids_of(jobs: &[&Job]) -> Vec<String> {
    let mut ids: Vec<String> = jobs.iter().map(|j| j.job_id.clone()).collect();
    ids.sort();
    ids
}

async fn stats(
    dispatch: &Dispatch,
    precinct: &str,
    start: chrono::DateTime<chrono::Utc>,
    end: chrono::DateTime<chrono::Utc>,
) -> Result<GetPrecinctStatsResponse, tonic::Status> {
    Ok(dispatch
        .clone()
        .get_precinct_stats(GetPrecinctStatsRequest {
            precinct: precinct.into(),
            window_start: Some(timestamp_of(start)),
            window_end: Some(timestamp_of(end)),
        })
        .await?
        .into_inner())
}

fn assert_within(value: f64, (low, high): (f64, f64), what: &str) {
    // timestamps travel with microsecond precision
    assert!(
        value >= low - 0.01 && value <= high + 0.01,
        "{what}: {value} is not within [{low}, {high}]"
    );
}

#[tokio::test]
async fn supervisors_filter_a_precinct_and_oversight_gets_figures_that_add_up() -> anyhow::Result<()>
{
    let window_start = chrono::Utc::now() - chrono::Duration::minutes(1);
    // default thresholds: closures seconds after assignment are flagged
    let suite = Suite::start(SuiteOptions::default()).await?;
    let dispatch = suite.dispatch().await?;
    let place = |north: f64| offset(EMPIRE_STATE, north, 0.0);

    let queued = hydrant_at(&suite, place(0.0)).await?;
    let first_unit = register_unit(&dispatch, "14-ADAM-1", "14", &["O-1"], place(-500.0)).await?;
    let second_unit = register_unit(&dispatch, "14-ADAM-2", "14", &["O-2"], place(-500.0)).await?;
    let closing_unit = register_unit(&dispatch, "14-ADAM-3", "14", &["O-3"], place(-500.0)).await?;
    let assigned = hydrant_at(&suite, place(30.0)).await?;
    assign(&dispatch, &assigned.job_id, &first_unit.unit_id).await?;
    let driving = hydrant_at(&suite, place(60.0)).await?;
    assign(&dispatch, &driving.job_id, &second_unit.unit_id).await?;
    acknowledge(&dispatch, &driving.job_id, "O-2", place(-500.0)).await?;
    en_route(&dispatch, &driving.job_id, "O-2", place(-200.0)).await?;
    let mut closed = Vec::new();
    for (n, code) in [
        ResolutionCode::SummonsIssued,
        ResolutionCode::NoEvidence,
        ResolutionCode::ActionTaken,
    ]
    .into_iter()
    .enumerate()
    {
        let job = hydrant_at(&suite, place(90.0 + 30.0 * n as f64)).await?;
        drive_to_scene(&dispatch, &job, &closing_unit, "O-3", job.location.unwrap()).await?;
        // different times on scene, so the figures are not all alike
        tokio::time::sleep(std::time::Duration::from_millis(150 * n as u64)).await;
        closed.push(
            close(
                &dispatch,
                close_request(&job.job_id, "O-3", code, job.location.unwrap()),
            )
            .await?,
        );
    }
    let cancelled = hydrant_at(&suite, place(200.0)).await?;
    dispatch
        .clone()
        .cancel_job(CancelJobRequest {
            actor: dispatcher(),
            job_id: cancelled.job_id.clone(),
            reason: "filed twice by the same caller".into(),
        })
        .await?;
    let elsewhere = hydrant_at(&suite, MIDTOWN_NORTH).await?;

    // the filters
    let everything = list(&dispatch, JobFilter::Unspecified, "", 0).await?;
    let mut all = vec![&queued, &assigned, &driving, &cancelled];
    all.extend(closed.iter());
    assert_eq!(
        ids(&everything),
        ids_of(&all),
        "every job of the precinct, and only its"
    );
    let paged = list(&dispatch, JobFilter::Unspecified, "", 2).await?;
    assert_eq!(ids(&paged), ids_of(&all), "pages of two, each job once");
    assert_eq!(paged.len(), 7);

    let open = list(&dispatch, JobFilter::Open, "", 0).await?;
    assert_eq!(ids(&open), ids_of(&[&queued, &assigned, &driving]));
    for job in &open {
        assert!(
            job.sla_remaining_seconds > 0 && job.sla_remaining_seconds <= 3600,
            "the SLA clock of {}: {}",
            job.sr_number,
            job.sla_remaining_seconds
        );
    }
    let working = list(&dispatch, JobFilter::Assigned, "", 0).await?;
    assert_eq!(ids(&working), ids_of(&[&assigned, &driving]));
    let responsible: Vec<(String, String)> = {
        let mut r: Vec<(String, String)> = working
            .iter()
            .map(|j| (j.sr_number.clone(), j.unit_call_sign.clone()))
            .collect();
        r.sort();
        r
    };
    let mut expected = vec![
        (assigned.sr_number.clone(), "14-ADAM-1".to_string()),
        (driving.sr_number.clone(), "14-ADAM-2".to_string()),
    ];
    expected.sort();
    assert_eq!(responsible, expected, "who is responsible for what");
    assert_eq!(
        ids(&list(&dispatch, JobFilter::Unspecified, &first_unit.unit_id, 0).await?),
        ids_of(&[&assigned])
    );
    assert_eq!(
        ids(&list(&dispatch, JobFilter::Assigned, &second_unit.unit_id, 0).await?),
        ids_of(&[&driving])
    );
    assert!(list(&dispatch, JobFilter::Overdue, "", 0).await?.is_empty());
    let flagged = list(&dispatch, JobFilter::Flagged, "", 0).await?;
    assert_eq!(ids(&flagged), ids_of(&closed.iter().collect::<Vec<_>>()));

    // the figures, computed here from the jobs and their timelines
    let mut to_close = Vec::new();
    let mut to_arrival = Vec::new();
    let mut within_five_minutes = 0;
    for job in &closed {
        let job = get_job(&dispatch, &job.job_id).await?;
        let assigned_at = job.assigned_at.unwrap();
        let seconds = seconds_between(&assigned_at, job.closed_at.as_ref().unwrap());
        if seconds < 300.0 {
            within_five_minutes += 1;
        }
        to_close.push(seconds);
        let arrival = timeline(&dispatch, &job.job_id)
            .await?
            .into_iter()
            .find(|e| e.r#type == EventType::OnScene as i32)
            .expect("an arrival");
        to_arrival.push(seconds_between(&assigned_at, &arrival.occurred_at.unwrap()));
    }
    to_close.sort_by(f64::total_cmp);
    to_arrival.sort_by(f64::total_cmp);

    let now = chrono::Utc::now() + chrono::Duration::minutes(1);
    let figures = stats(&dispatch, "14", window_start, now).await?;
    assert_eq!(figures.precinct, "14");
    assert_eq!(figures.jobs_received, 7);
    assert_eq!(figures.jobs_closed, 3);
    assert!(
        (figures.share_with_summons - 1.0 / 3.0).abs() < 1e-9,
        "{figures:?}"
    );
    assert!(
        (figures.share_closed_within_5_minutes - within_five_minutes as f64 / 3.0).abs() < 1e-9,
        "{figures:?}"
    );
    assert_eq!(within_five_minutes, 3);
    assert_eq!(figures.sla_breaches, 0);
    assert_eq!(figures.flagged_jobs, 3);
    assert_within(
        figures.median_seconds_to_close,
        percentile_bounds(&to_close, 0.5),
        "median to close",
    );
    assert_within(
        figures.p90_seconds_to_close,
        percentile_bounds(&to_close, 0.9),
        "p90 to close",
    );
    assert_within(
        figures.median_seconds_to_arrival,
        percentile_bounds(&to_arrival, 0.5),
        "median to arrival",
    );
    assert_within(
        figures.p90_seconds_to_arrival,
        percentile_bounds(&to_arrival, 0.9),
        "p90 to arrival",
    );
    assert!(figures.p90_seconds_to_close >= figures.median_seconds_to_close);

    // another precinct and another window count other jobs
    let north = stats(&dispatch, "18", window_start, now).await?;
    assert_eq!((north.jobs_received, north.jobs_closed), (1, 0));
    assert_eq!(elsewhere.precinct, "18");
    let last_week = stats(
        &dispatch,
        "14",
        window_start - chrono::Duration::days(7),
        window_start - chrono::Duration::days(6),
    )
    .await?;
    assert_eq!(
        (
            last_week.jobs_received,
            last_week.jobs_closed,
            last_week.flagged_jobs
        ),
        (0, 0, 0)
    );
    assert_eq!(last_week.share_closed_within_5_minutes, 0.0);

    // bad windows are refused
    let backwards = stats(&dispatch, "14", now, window_start).await.unwrap_err();
    assert_eq!(backwards.code(), Code::InvalidArgument, "{backwards:?}");
    let no_precinct = stats(&dispatch, "", window_start, now).await.unwrap_err();
    assert_eq!(no_precinct.code(), Code::InvalidArgument, "{no_precinct:?}");
    let unknown = dispatch
        .clone()
        .get_job_timeline(GetJobTimelineRequest {
            job_id: uuid::Uuid::new_v4().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    assert_eq!(
        get_job(&dispatch, &cancelled.job_id).await?.state,
        JobState::Cancelled as i32
    );

    suite.stop().await
}
