//! Helpers for the survey end-to-end tests: a poller that follows the
//! closed-request cursor and remembers what it saw, filing complaints with
//! or without a consenting complainant, working a job to closure, answering
//! surveys, and the satisfaction figures computed independently of the
//! survey service.

use std::{
    collections::{BTreeMap, HashMap},
    time::Duration,
};

use crate::suite::AuthChannel;
use anyhow::Context as _;
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc, Weekday};
use dispatch311_proto::{
    Timestamp,
    common::v1::{Address, GeoPoint, ResolutionCode},
    dispatch::v1::{Job, Unit},
    intake::v1::CreateServiceRequestRequest,
    survey::v1::{
        Agreement, ClosedRequest, ConditionCorrected, DissatisfactionReason,
        ListClosedRequestsRequest, SatisfactionGroup, SubmitSurveyResponseRequest,
        survey_service_client::SurveyServiceClient,
    },
};

use crate::cad::{self, Dispatch, PIPELINE, close, close_request, drive_to_scene, get_job};

pub type Survey = SurveyServiceClient<AuthChannel>;

/// Whether and how a complainant can be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Complainant {
    /// Left contact details and agreed to a survey.
    Consenting,
    /// Left contact details, did not agree to be contacted.
    NotConsenting,
    /// Left nothing.
    Anonymous,
}

/// A complaint at `location` in `borough` from `complainant`.
pub fn complaint_from(
    complainant: Complainant,
    complaint_type: &str,
    descriptor: &str,
    location: GeoPoint,
    borough: &str,
) -> CreateServiceRequestRequest {
    let mut request = cad::complaint(complaint_type, descriptor, location);
    request.request_id = format!("survey-{}", uuid::Uuid::new_v4().simple());
    request.address = Some(Address {
        street_address: "350 5th Avenue".into(),
        borough: borough.into(),
        ..Default::default()
    });
    match complainant {
        Complainant::Consenting => {}
        Complainant::NotConsenting => {
            if let Some(contact) = request.complainant.as_mut() {
                contact.consent_to_contact = false;
            }
        }
        Complainant::Anonymous => request.complainant = None,
    }
    request
}

/// Works `job` with `unit` (crewed by `officer_id`) to a closure with
/// `code`, arriving at the incident, and returns the closed job.
pub async fn close_at_scene(
    dispatch: &Dispatch,
    job: &Job,
    unit: &Unit,
    officer_id: &str,
    code: ResolutionCode,
) -> anyhow::Result<Job> {
    let incident = job.location.context("dispatched jobs have a location")?;
    drive_to_scene(dispatch, job, unit, officer_id, incident).await?;
    close(
        dispatch,
        close_request(&job.job_id, officer_id, code, incident),
    )
    .await?;
    get_job(dispatch, &job.job_id).await
}

/// A survey system's poller: follows `next_cursor` and keeps every closure
/// it was handed, in order.
pub struct Poller {
    survey: Survey,
    pub cursor: String,
    pub page_size: i32,
    pub seen: Vec<ClosedRequest>,
}

impl Poller {
    pub fn new(survey: Survey, page_size: i32) -> Self {
        Self {
            survey,
            cursor: String::new(),
            page_size,
            seen: Vec::new(),
        }
    }

    /// Follows the cursor until a page comes back empty; returns how many
    /// closures were new.
    pub async fn poll(&mut self) -> anyhow::Result<usize> {
        let mut new = 0;
        loop {
            let page = self
                .survey
                .list_closed_requests(ListClosedRequestsRequest {
                    cursor: self.cursor.clone(),
                    page_size: self.page_size,
                })
                .await?
                .into_inner();
            if page.closed_requests.is_empty() {
                anyhow::ensure!(
                    page.next_cursor == self.cursor,
                    "an empty page moved the cursor"
                );
                return Ok(new);
            }
            anyhow::ensure!(
                page.closed_requests.len() <= self.page_size.max(1) as usize,
                "a page of {} for page size {}",
                page.closed_requests.len(),
                self.page_size
            );
            new += page.closed_requests.len();
            self.seen.extend(page.closed_requests);
            self.cursor = page.next_cursor;
        }
    }

    /// Polls until a closure matching `wanted` was handed out; returns it.
    pub async fn wait_for(
        &mut self,
        what: &str,
        wanted: impl Fn(&ClosedRequest) -> bool,
    ) -> anyhow::Result<ClosedRequest> {
        let deadline = tokio::time::Instant::now() + PIPELINE;
        loop {
            self.poll().await?;
            if let Some(found) = self.seen.iter().find(|c| wanted(c)) {
                return Ok(found.clone());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "timed out after {PIPELINE:?} waiting for {what} in the closed-request feed"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls until `count` closures matching `wanted` were handed out.
    pub async fn wait_for_count(
        &mut self,
        what: &str,
        count: usize,
        timeout: Duration,
        wanted: impl Fn(&ClosedRequest) -> bool,
    ) -> anyhow::Result<Vec<ClosedRequest>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            self.poll().await?;
            let found: Vec<ClosedRequest> =
                self.seen.iter().filter(|c| wanted(c)).cloned().collect();
            if found.len() >= count {
                return Ok(found);
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {count} {what} in the closed-request feed (have {})",
                found.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The closure of `sr_number` numbered `closure_number`.
pub fn closure_of(sr_number: &str, closure_number: u32) -> impl Fn(&ClosedRequest) -> bool {
    let sr_number = sr_number.to_string();
    move |c| c.sr_number == sr_number && c.closure_number == closure_number
}

/// An answer to the survey behind `token`.
pub fn answer(
    token: &str,
    agreement: Agreement,
    reason: DissatisfactionReason,
    condition: ConditionCorrected,
    comment: &str,
) -> SubmitSurveyResponseRequest {
    SubmitSurveyResponseRequest {
        survey_token: token.to_string(),
        agreement: agreement as i32,
        reason: reason as i32,
        condition_corrected: condition as i32,
        comment: comment.to_string(),
    }
}

/// One closure as the test recorded it, with the answer it got (if any).
#[derive(Debug, Clone)]
pub struct ClosureRecord {
    pub agency: String,
    pub precinct: String,
    pub complaint_type: String,
    pub assigned_at: Option<Timestamp>,
    pub closed_at: Timestamp,
    pub resolution_code: ResolutionCode,
    pub flagged: bool,
    pub answer: Option<AnswerRecord>,
}

#[derive(Debug, Clone, Copy)]
pub struct AnswerRecord {
    pub agreement: Agreement,
    pub reason: DissatisfactionReason,
    pub reopened: bool,
}

impl ClosureRecord {
    /// The closure's month in New York ("YYYY-MM").
    pub fn month(&self) -> String {
        new_york_month(timestamp_to_utc(&self.closed_at))
    }
}

/// The figures `GetSatisfactionStats` must show for `records`, grouped by
/// `key`, computed here from what the test did.
pub fn expected_groups(
    records: &[ClosureRecord],
    key: impl Fn(&ClosureRecord) -> String,
) -> BTreeMap<String, SatisfactionGroup> {
    #[derive(Default)]
    struct Counts {
        closures: i64,
        quick: i64,
        summons: i64,
        flagged: i64,
        answers: HashMap<Agreement, i64>,
        reasons: HashMap<String, i64>,
        reopened: i64,
    }
    let mut counts: BTreeMap<String, Counts> = BTreeMap::new();
    for record in records {
        let group = counts.entry(key(record)).or_default();
        group.closures += 1;
        if let Some(assigned_at) = &record.assigned_at
            && cad::seconds_between(assigned_at, &record.closed_at) <= 300.0
        {
            group.quick += 1;
        }
        group.summons += i64::from(record.resolution_code == ResolutionCode::SummonsIssued);
        group.flagged += i64::from(record.flagged);
        if let Some(answer) = record.answer {
            *group.answers.entry(answer.agreement).or_default() += 1;
            if answer.reason != DissatisfactionReason::Unspecified {
                let name = answer
                    .reason
                    .as_str_name()
                    .trim_start_matches("DISSATISFACTION_REASON_")
                    .to_string();
                *group.reasons.entry(name).or_default() += 1;
            }
            group.reopened += i64::from(answer.reopened);
        }
    }
    counts
        .into_iter()
        .map(|(key, c)| {
            let count = |a: Agreement| c.answers.get(&a).copied().unwrap_or(0);
            let responses: i64 = c.answers.values().sum();
            let share = |part: i64, whole: i64| {
                if whole == 0 {
                    0.0
                } else {
                    part as f64 / whole as f64
                }
            };
            let group = SatisfactionGroup {
                key: key.clone(),
                responses,
                strongly_agree: count(Agreement::StronglyAgree),
                agree: count(Agreement::Agree),
                neither: count(Agreement::Neither),
                disagree: count(Agreement::Disagree),
                strongly_disagree: count(Agreement::StronglyDisagree),
                share_satisfied: share(
                    count(Agreement::StronglyAgree) + count(Agreement::Agree),
                    responses,
                ),
                share_dissatisfied: share(
                    count(Agreement::Disagree) + count(Agreement::StronglyDisagree),
                    responses,
                ),
                reasons: c.reasons.into_iter().collect(),
                reopened: c.reopened,
                closures: c.closures,
                share_closed_within_5_minutes: share(c.quick, c.closures),
                share_with_summons: share(c.summons, c.closures),
                flagged_closures: c.flagged,
                // nothing is linked in these tests: a request per job closure
                requests_closed: c.closures,
                reports_per_job: share(c.closures, c.closures),
            };
            (key, group)
        })
        .collect()
}

/// Fails, naming the group and the figure, unless the service's groups are
/// exactly the expected ones with the same figures.
pub fn assert_groups_match(
    what: &str,
    expected: &BTreeMap<String, SatisfactionGroup>,
    actual: &[SatisfactionGroup],
) -> anyhow::Result<()> {
    let actual_keys: Vec<&str> = actual.iter().map(|g| g.key.as_str()).collect();
    let expected_keys: Vec<&str> = expected.keys().map(String::as_str).collect();
    anyhow::ensure!(
        actual_keys == expected_keys,
        "{what}: groups {actual_keys:?}, expected {expected_keys:?}"
    );
    for group in actual {
        let want = &expected[&group.key];
        let key = &group.key;
        let counts = |g: &SatisfactionGroup| {
            [
                ("responses", g.responses),
                ("strongly_agree", g.strongly_agree),
                ("agree", g.agree),
                ("neither", g.neither),
                ("disagree", g.disagree),
                ("strongly_disagree", g.strongly_disagree),
                ("reopened", g.reopened),
                ("closures", g.closures),
                ("flagged_closures", g.flagged_closures),
                ("requests_closed", g.requests_closed),
            ]
        };
        for ((name, got), (_, wanted)) in counts(group).into_iter().zip(counts(want)) {
            anyhow::ensure!(
                got == wanted,
                "{what} {key:?}: {name} is {got}, expected {wanted}"
            );
        }
        let shares = |g: &SatisfactionGroup| {
            [
                ("share_satisfied", g.share_satisfied),
                ("share_dissatisfied", g.share_dissatisfied),
                (
                    "share_closed_within_5_minutes",
                    g.share_closed_within_5_minutes,
                ),
                ("share_with_summons", g.share_with_summons),
                ("reports_per_job", g.reports_per_job),
            ]
        };
        for ((name, got), (_, wanted)) in shares(group).into_iter().zip(shares(want)) {
            anyhow::ensure!(
                (got - wanted).abs() < 1e-9,
                "{what} {key:?}: {name} is {got}, expected {wanted}"
            );
        }
        let reasons: BTreeMap<&String, &i64> = group.reasons.iter().collect();
        let wanted_reasons: BTreeMap<&String, &i64> = want.reasons.iter().collect();
        anyhow::ensure!(
            reasons == wanted_reasons,
            "{what} {key:?}: reasons {reasons:?}, expected {wanted_reasons:?}"
        );
    }
    Ok(())
}

pub fn timestamp_to_utc(ts: &Timestamp) -> DateTime<Utc> {
    DateTime::from_timestamp(ts.seconds, ts.nanos.max(0) as u32).unwrap_or_default()
}

/// "YYYY-MM" of `at` on New York's clock (US daylight-saving rules since
/// 2007: EDT from the second Sunday of March, 2:00 EST, to the first Sunday of
/// November, 2:00 EDT).
pub fn new_york_month(at: DateTime<Utc>) -> String {
    let year = at.year();
    let sunday = |month: u32, n: u8| {
        NaiveDate::from_weekday_of_month_opt(year, month, Weekday::Sun, n)
            .expect("every month has two Sundays")
    };
    // 2:00 EST is 7:00 UTC; 2:00 EDT is 6:00 UTC
    let dst_start = Utc.from_utc_datetime(&sunday(3, 2).and_hms_opt(7, 0, 0).expect("a time"));
    let dst_end = Utc.from_utc_datetime(&sunday(11, 1).and_hms_opt(6, 0, 0).expect("a time"));
    let offset_hours = if at >= dst_start && at < dst_end {
        4
    } else {
        5
    };
    (at - chrono::Duration::hours(offset_hours))
        .format("%Y-%m")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_follow_the_new_york_clock() {
        let utc = |text: &str| DateTime::parse_from_rfc3339(text).unwrap().to_utc();
        // 1 March 03:00 UTC is still 28 February in New York (EST)
        assert_eq!(new_york_month(utc("2023-03-01T03:00:00Z")), "2023-02");
        assert_eq!(new_york_month(utc("2023-03-01T05:00:00Z")), "2023-03");
        // 1 July 03:30 UTC is 30 June 23:30 EDT
        assert_eq!(new_york_month(utc("2026-07-01T03:30:00Z")), "2026-06");
        assert_eq!(new_york_month(utc("2026-07-01T04:00:00Z")), "2026-07");
    }
}
