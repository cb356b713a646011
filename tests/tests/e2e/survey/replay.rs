//! Real-data replay through the survey: the NYPD requests with
//! coordinates of a real half day of New York 311 (2023-02-28) is filed
//! through intake (four in five with a complainant who agreed to a survey,
//! the fifth anonymous), worked by units of its precinct and closed with the
//! outcome the police department really published for it
//! (`nyc311::resolution_code`). The survey system polls the closures,
//! answers the survey of every consenting complainant, and the figures by
//! precinct must equal those this test computes from the same jobs and
//! answers.
//!
//! Every row dispatch can close is replayed: rows without a stated outcome,
//! and rows the department closed as "outside police jurisdiction" (which
//! dispatch refuses for police work; see dispatch_replay), are left out.

use std::{collections::BTreeMap, sync::Arc};

use dispatch311_proto::{
    common::v1::ResolutionCode,
    dispatch::v1::{Job, Unit},
    intake::v1::Complainant,
    survey::v1::{
        Agreement, ConditionCorrected, DissatisfactionReason, GetSatisfactionStatsRequest, GroupBy,
    },
};
use dispatch311_tests::{
    cad::{
        COMPLAINANT_EMAIL, COMPLAINANT_NAME, COMPLAINANT_PHONE, Dispatch, close,
        close_request_as_recorded, drive_to_scene, get_job, register_unit, wait_for_job,
    },
    nyc311::{self, CsvRequest},
    suite::{Suite, SuiteOptions},
    survey::{AnswerRecord, ClosureRecord, Poller, answer, assert_groups_match, expected_groups},
};
use tokio::sync::Semaphore;

const UNITS_PER_PRECINCT: usize = 2;
const CONCURRENCY: usize = 16;

/// A job of the replay: its row, the outcome to close it with, and the job.
type Work = (CsvRequest, ResolutionCode, Job);

/// The answer of the complainant of `unique_key`: spread over the whole
/// scale, the same on every run.
fn answer_of(unique_key: &str) -> (Agreement, DissatisfactionReason, ConditionCorrected) {
    use ConditionCorrected as C;
    use DissatisfactionReason as D;
    let digit = unique_key
        .bytes()
        .last()
        .map_or(0, |b| b.wrapping_sub(b'0') % 10);
    match digit {
        0..=2 => (Agreement::StronglyAgree, D::Unspecified, C::Yes),
        3 => (Agreement::Agree, D::Unspecified, C::Yes),
        4 => (Agreement::Neither, D::Unspecified, C::DontKnow),
        5 => (Agreement::Disagree, D::TookTooLong, C::Yes),
        6 => (Agreement::Disagree, D::DidNotAddressRequest, C::DontKnow),
        7 => (Agreement::StronglyDisagree, D::NotCorrected, C::No),
        8 => (Agreement::StronglyDisagree, D::NotCorrectedReopen, C::No),
        _ => (Agreement::Disagree, D::UnclearResolution, C::Unspecified),
    }
}

/// Whether the row is filed with a consenting complainant (else anonymous).
fn consents(index: usize) -> bool {
    index % 5 != 4
}

#[tokio::test]
async fn a_real_half_day_closed_and_surveyed_gives_figures_that_add_up_by_precinct()
-> anyhow::Result<()> {
    let csv = nyc311::data_dir().join(nyc311::HALF_DAY_FILE);
    let map = nyc311::data_dir().join(nyc311::PRECINCTS_FILE);
    if !csv.exists() || !map.exists() {
        eprintln!(
            "\n!!!!!!!! SKIPPED: real 311 data not found under {} !!!!!!!!\n",
            nyc311::data_dir().display()
        );
        return Ok(());
    }
    let rows: Vec<(usize, CsvRequest, ResolutionCode)> = nyc311::read_requests(&csv)?
        .into_iter()
        .filter(|r| r.is_nypd() && r.coordinates().is_some() && r.why_not_fileable().is_none())
        .map(|r| {
            let code = nyc311::resolution_code(&r.resolution_description);
            (r, code)
        })
        .filter(|(_, code)| {
            // outside jurisdiction and referred are re-routed, never closed
            !matches!(
                code,
                ResolutionCode::Unspecified
                    | ResolutionCode::OutsideJurisdiction
                    | ResolutionCode::Referred
            )
        })
        .enumerate()
        .map(|(index, (row, code))| (index, row, code))
        .collect();
    let sample = rows.len();
    assert!(
        sample > 1_400,
        "the half day has about 1,520 closable police rows with coordinates, found {sample}"
    );

    let started = std::time::Instant::now();
    let suite = Suite::start(SuiteOptions::default()).await?;
    let intake = suite.intake().await?;
    let dispatch = suite.dispatch().await?;
    let survey = suite.survey().await?;
    let limit = Arc::new(Semaphore::new(CONCURRENCY));

    // file every row, with a complainant who agreed to a survey or anonymously
    let mut calls = Vec::new();
    for (index, row, code) in rows {
        let mut intake = intake.clone();
        let dispatch = dispatch.clone();
        let permit = limit.clone().acquire_owned().await?;
        calls.push(tokio::spawn(async move {
            let mut request = row.to_create_request(&format!("survey-replay-{}", row.unique_key));
            if consents(index) {
                request.complainant = Some(Complainant {
                    name: COMPLAINANT_NAME.into(),
                    phone: COMPLAINANT_PHONE.into(),
                    email: COMPLAINANT_EMAIL.into(),
                    consent_to_contact: true,
                });
            }
            let sr = intake
                .create_service_request(request)
                .await?
                .into_inner()
                .service_request
                .expect("the filed request");
            let job = wait_for_job(&dispatch, &sr.sr_number).await?;
            drop(permit);
            anyhow::Ok((row, code, job))
        }));
    }
    let mut by_precinct: BTreeMap<String, Vec<Work>> = BTreeMap::new();
    for call in calls {
        let (row, code, job) = call.await??;
        by_precinct
            .entry(job.precinct.clone())
            .or_default()
            .push((row, code, job));
    }

    // units of each precinct work their share of its jobs in turn
    let mut shifts: Vec<(Unit, String, Vec<Work>)> = Vec::new();
    for (precinct, jobs) in &by_precinct {
        let start = jobs[0].2.location.expect("located");
        for k in 0..UNITS_PER_PRECINCT.min(jobs.len()) {
            let officer_id = format!("O-{precinct}-S{k}");
            let unit = register_unit(
                &dispatch,
                &format!("{precinct}-SURVEY-{k}"),
                precinct,
                &[officer_id.as_str()],
                start,
            )
            .await?;
            let share = jobs
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
            for (row, code, job) in share {
                let _permit = limit.acquire().await?;
                let closed = work(&dispatch, &unit, &officer_id, &row, code, &job).await?;
                done.push((row, code, closed));
            }
            anyhow::Ok(done)
        }));
    }
    let mut records: BTreeMap<String, (CsvRequest, ClosureRecord)> = BTreeMap::new();
    for worker in workers {
        for (row, code, job) in worker.await?? {
            let record = ClosureRecord {
                agency: job.agency.clone(),
                precinct: job.precinct.clone(),
                complaint_type: job.complaint_type.clone(),
                assigned_at: job.assigned_at,
                closed_at: job.closed_at.expect("closed"),
                resolution_code: code,
                flagged: !job.flags.is_empty(),
                answer: None,
            };
            records.insert(job.sr_number, (row, record));
        }
    }
    let closed_in = started.elapsed();

    // the survey system polls every closure and answers each consenting one
    let mut poller = Poller::new(survey.clone(), 100);
    let closures = poller
        .wait_for_count(
            "closures",
            sample,
            std::time::Duration::from_secs(30),
            |_| true,
        )
        .await?;
    assert_eq!(closures.len(), sample, "each closure once");
    let mut submissions = Vec::new();
    for closure in closures {
        let (row, record) = records
            .get(&closure.sr_number)
            .expect("a closure of the replay");
        assert_eq!(closure.precinct, record.precinct);
        assert_eq!(closure.resolution_code, record.resolution_code as i32);
        assert_eq!(
            closure.closure_flagged, record.flagged,
            "{}",
            closure.sr_number
        );
        if !closure.complainant_consented {
            assert!(closure.survey_token.is_empty());
            continue;
        }
        let (agreement, reason, condition) = answer_of(&row.unique_key);
        let mut survey = survey.clone();
        let permit = limit.clone().acquire_owned().await?;
        submissions.push(tokio::spawn(async move {
            let answered = survey
                .submit_survey_response(answer(
                    &closure.survey_token,
                    agreement,
                    reason,
                    condition,
                    "",
                ))
                .await?
                .into_inner();
            drop(permit);
            let answer = AnswerRecord {
                agreement,
                reason,
                reopened: answered.reopened,
            };
            anyhow::Ok((closure.sr_number, answer))
        }));
    }
    let mut answered = 0;
    for submission in submissions {
        let (sr_number, answer) = submission.await??;
        assert_eq!(
            answer.reopened,
            answer.reason == DissatisfactionReason::NotCorrectedReopen,
            "{sr_number}"
        );
        records.get_mut(&sr_number).expect("a closure").1.answer = Some(answer);
        answered += 1;
    }
    let records: Vec<ClosureRecord> = records.into_values().map(|(_, r)| r).collect();

    // figures by precinct, and over all, as computed here
    let expected = expected_groups(&records, |r| r.precinct.clone());
    let actual = survey
        .clone()
        .get_satisfaction_stats(GetSatisfactionStatsRequest {
            group_by: GroupBy::Precinct as i32,
            ..Default::default()
        })
        .await?
        .into_inner()
        .groups;
    assert_groups_match("by precinct", &expected, &actual)?;
    let overall = expected_groups(&records, |_| "all".into());
    let all = survey
        .clone()
        .get_satisfaction_stats(GetSatisfactionStatsRequest::default())
        .await?
        .into_inner()
        .groups;
    assert_groups_match("overall", &overall, &all)?;

    let total = &overall["all"];
    eprintln!(
        "survey replay: {sample} closures in {} precincts ({closed_in:.1?}), {answered} answers, \
         {:.0}% satisfied, {:.0}% dissatisfied, {} reopened, {:.0}% closed within 5 minutes, \
         {:.0}% with a summons, {} flagged; total {:.1?}",
        expected.len(),
        total.share_satisfied * 100.0,
        total.share_dissatisfied * 100.0,
        total.reopened,
        total.share_closed_within_5_minutes * 100.0,
        total.share_with_summons * 100.0,
        total.flagged_closures,
        started.elapsed()
    );
    suite.stop().await
}

/// Works one job to the closure the police department published for it.
async fn work(
    dispatch: &Dispatch,
    unit: &Unit,
    officer_id: &str,
    row: &CsvRequest,
    code: ResolutionCode,
    job: &Job,
) -> anyhow::Result<Job> {
    let incident = job.location.expect("located");
    drive_to_scene(dispatch, job, unit, officer_id, incident).await?;
    let request = close_request_as_recorded(
        &job.job_id,
        officer_id,
        code,
        incident,
        &row.unique_key,
        &row.resolution_description,
    );
    close(dispatch, request).await?;
    get_job(dispatch, &job.job_id).await
}
