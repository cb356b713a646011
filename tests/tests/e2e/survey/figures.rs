//! Satisfaction figures and the public export. Closures in two precincts,
//! of two complaint types, with and without a summons, answered across the
//! whole agreement scale: `GetSatisfactionStats` must equal, group by group,
//! the figures this test computes itself from the same closures and answers,
//! and `ExportSurveyResults` must hold one row per answer with nothing finer
//! than the month and the borough.

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use dispatch311_proto::{
    FILE_DESCRIPTOR_SET,
    common::v1::{GeoPoint, ResolutionCode},
    survey::v1::{
        Agreement, ConditionCorrected, DissatisfactionReason, ExportSurveyResultsRequest,
        ExportSurveyResultsResponse, GetSatisfactionStatsRequest, GroupBy,
    },
};
use dispatch311_tests::{
    cad::{EMPIRE_STATE, MIDTOWN_NORTH, contains_bytes, file, register_unit, timestamp_of},
    suite::{Suite, SuiteOptions},
    survey::{
        AnswerRecord, ClosureRecord, Complainant, Poller, answer, assert_groups_match,
        close_at_scene, complaint_from, expected_groups, new_york_month, timestamp_to_utc,
    },
};
use futures::TryStreamExt as _;
use prost::Message as _;
use tonic::Code;

/// The group a closure falls in.
type GroupKey = fn(&ClosureRecord) -> String;

/// One closure to produce through dispatch.
struct Plan {
    precinct: &'static str,
    location: GeoPoint,
    complaint_type: &'static str,
    descriptor: &'static str,
    borough: &'static str,
    complainant: Complainant,
    code: ResolutionCode,
}

/// The answers given, in turn, to the consenting closures (`None`: never answered).
const ANSWERS: [Option<(Agreement, DissatisfactionReason, ConditionCorrected)>; 8] = [
    Some((
        Agreement::StronglyAgree,
        DissatisfactionReason::Unspecified,
        ConditionCorrected::Yes,
    )),
    Some((
        Agreement::Disagree,
        DissatisfactionReason::TookTooLong,
        ConditionCorrected::Yes,
    )),
    Some((
        Agreement::StronglyDisagree,
        DissatisfactionReason::NotCorrectedReopen,
        ConditionCorrected::No,
    )),
    Some((
        Agreement::Agree,
        DissatisfactionReason::Unspecified,
        ConditionCorrected::DontKnow,
    )),
    None,
    Some((
        Agreement::Neither,
        DissatisfactionReason::Unspecified,
        ConditionCorrected::Unspecified,
    )),
    Some((
        Agreement::StronglyDisagree,
        DissatisfactionReason::NotCorrected,
        ConditionCorrected::No,
    )),
    Some((
        Agreement::Disagree,
        DissatisfactionReason::TookTooLong,
        ConditionCorrected::DontKnow,
    )),
];

#[tokio::test]
async fn figures_equal_those_computed_from_the_same_answers_and_the_export_is_coarse()
-> anyhow::Result<()> {
    let suite = Suite::start(SuiteOptions::default()).await?;
    let dispatch = suite.dispatch().await?;
    let mut survey = suite.survey().await?;
    let unit_14 = register_unit(&dispatch, "14-FIG-1", "14", &["O-14-9"], EMPIRE_STATE).await?;
    let unit_18 = register_unit(&dispatch, "18-FIG-1", "18", &["O-18-9"], MIDTOWN_NORTH).await?;

    use Complainant::{Anonymous, Consenting, NotConsenting};
    use ResolutionCode as R;
    let plans = [
        (
            "14",
            EMPIRE_STATE,
            "Illegal Parking",
            "Blocked Hydrant",
            "MANHATTAN",
            Consenting,
            R::SummonsIssued,
        ),
        (
            "14",
            EMPIRE_STATE,
            "Illegal Parking",
            "Double Parked Blocking Traffic",
            "MANHATTAN",
            Consenting,
            R::NoEvidence,
        ),
        (
            "14",
            EMPIRE_STATE,
            "Blocked Driveway",
            "No Access",
            "MANHATTAN",
            NotConsenting,
            R::SummonsIssued,
        ),
        (
            "14",
            EMPIRE_STATE,
            "Blocked Driveway",
            "No Access",
            "BROOKLYN",
            Consenting,
            R::ActionTaken,
        ),
        (
            "14",
            EMPIRE_STATE,
            "Illegal Parking",
            "Blocked Hydrant",
            "MANHATTAN",
            Anonymous,
            R::ConditionGoneOnArrival,
        ),
        (
            "18",
            MIDTOWN_NORTH,
            "Illegal Parking",
            "Blocked Hydrant",
            "MANHATTAN",
            Consenting,
            R::PoliceActionNotNecessary,
        ),
        (
            "18",
            MIDTOWN_NORTH,
            "Blocked Driveway",
            "Partial Access",
            "MANHATTAN",
            Consenting,
            R::SummonsIssued,
        ),
        (
            "18",
            MIDTOWN_NORTH,
            "Illegal Parking",
            "Double Parked Blocking Traffic",
            "BROOKLYN",
            Consenting,
            R::NoEvidence,
        ),
    ]
    .map(
        |(precinct, location, complaint_type, descriptor, borough, complainant, code)| Plan {
            precinct,
            location,
            complaint_type,
            descriptor,
            borough,
            complainant,
            code,
        },
    );

    // closures through dispatch, as the test records them
    let mut records: BTreeMap<(String, u32), ClosureRecord> = BTreeMap::new();
    let mut boroughs: BTreeMap<String, String> = BTreeMap::new();
    for plan in &plans {
        let request = complaint_from(
            plan.complainant,
            plan.complaint_type,
            plan.descriptor,
            plan.location,
            plan.borough,
        );
        let job = file(&suite, request).await?;
        assert_eq!(job.precinct, plan.precinct);
        let (unit, officer) = match plan.precinct {
            "14" => (&unit_14, "O-14-9"),
            _ => (&unit_18, "O-18-9"),
        };
        let job = close_at_scene(&dispatch, &job, unit, officer, plan.code).await?;
        boroughs.insert(job.sr_number.clone(), plan.borough.to_string());
        records.insert(
            (job.sr_number.clone(), 1),
            ClosureRecord {
                agency: "NYPD".into(),
                precinct: job.precinct.clone(),
                complaint_type: job.complaint_type.clone(),
                assigned_at: job.assigned_at,
                closed_at: job.closed_at.expect("closed"),
                resolution_code: plan.code,
                flagged: !job.flags.is_empty(),
                answer: None,
            },
        );
    }
    // and two slow closures of last month's style (assigned 20 minutes
    // before closing), stored the way the closed consumer stores them
    let db = suite.database().await?;
    let closed_at = Utc::now() - Duration::hours(1);
    for (n, summons) in [(1, false), (2, true)] {
        let sr_number = format!("SR-SLOW-{n}");
        let code = if summons {
            R::SummonsIssued
        } else {
            R::ActionTaken
        };
        sqlx::query(
            "INSERT INTO survey.closures (sr_id, sr_number, closure_number, agency, precinct, borough, \
                complaint_type, descriptor, resolution_code, resolution_text, closed_at, assigned_at, \
                flagged, summons_issued, complainant_consented) \
             VALUES ($1, $2, 1, 'NYPD', '18', 'QUEENS', 'Illegal Parking', 'Blocked Hydrant', $3, '', \
                $4, $5, $6, $7, true)",
        )
        .bind(uuid::Uuid::new_v4())
        .bind(&sr_number)
        .bind(code.as_str_name().trim_start_matches("RESOLUTION_CODE_"))
        .bind(closed_at)
        .bind(closed_at - Duration::minutes(20))
        .bind(n == 1)
        .bind(summons)
        .execute(&db)
        .await?;
        boroughs.insert(sr_number.clone(), "QUEENS".into());
        records.insert(
            (sr_number, 1),
            ClosureRecord {
                agency: "NYPD".into(),
                precinct: "18".into(),
                complaint_type: "Illegal Parking".into(),
                assigned_at: Some(timestamp_of(closed_at - Duration::minutes(20))),
                closed_at: timestamp_of(closed_at),
                resolution_code: code,
                flagged: n == 1,
                answer: None,
            },
        );
    }

    // the survey system polls, then answers for each consenting complainant
    let mut poller = Poller::new(survey.clone(), 3);
    let closures = poller
        .wait_for_count(
            "closures",
            records.len(),
            std::time::Duration::from_secs(20),
            |_| true,
        )
        .await?;
    assert_eq!(closures.len(), records.len());
    let mut answers = ANSWERS.iter().cycle();
    let mut exported_expected = Vec::new();
    for closure in &closures {
        let record = records
            .get_mut(&(closure.sr_number.clone(), closure.closure_number))
            .expect("a closure the test made");
        assert_eq!(
            closure.closure_flagged, record.flagged,
            "{}",
            closure.sr_number
        );
        if !closure.complainant_consented {
            continue;
        }
        let Some((agreement, reason, condition)) = answers.next().copied().flatten() else {
            continue;
        };
        let comment = format!("comment about {}", closure.sr_number);
        let answered = survey
            .submit_survey_response(answer(
                &closure.survey_token,
                agreement,
                reason,
                condition,
                &comment,
            ))
            .await?
            .into_inner();
        let reopened = reason == DissatisfactionReason::NotCorrectedReopen;
        assert_eq!(answered.reopened, reopened, "{}", closure.sr_number);
        record.answer = Some(AnswerRecord {
            agreement,
            reason,
            reopened,
        });
        exported_expected.push(ExportSurveyResultsResponse {
            month: new_york_month(timestamp_to_utc(&record.closed_at)),
            borough: boroughs[&closure.sr_number].clone(),
            agency: "NYPD".into(),
            complaint_type: closure.complaint_type.clone(),
            descriptor: closure.descriptor.clone(),
            agreement: agreement as i32,
            reason: reason as i32,
            condition_corrected: condition as i32,
            resolution_code: record.resolution_code as i32,
        });
    }
    let records: Vec<ClosureRecord> = records.into_values().collect();
    assert!(records.iter().filter(|r| r.answer.is_some()).count() >= 6);

    // every grouping, and the filters
    let stats = |request: GetSatisfactionStatsRequest| {
        let mut survey = survey.clone();
        async move {
            anyhow::Ok(
                survey
                    .get_satisfaction_stats(request)
                    .await?
                    .into_inner()
                    .groups,
            )
        }
    };
    let by = |group_by: GroupBy| GetSatisfactionStatsRequest {
        group_by: group_by as i32,
        ..Default::default()
    };
    let groupings: [(GroupBy, GroupKey); 5] = [
        (GroupBy::Unspecified, |_| "all".into()),
        (GroupBy::Agency, |r| r.agency.clone()),
        (GroupBy::Precinct, |r| r.precinct.clone()),
        (GroupBy::ComplaintType, |r| r.complaint_type.clone()),
        (GroupBy::Month, ClosureRecord::month),
    ];
    for (group_by, key) in groupings {
        assert_groups_match(
            &format!("{group_by:?}"),
            &expected_groups(&records, key),
            &stats(by(group_by)).await?,
        )?;
    }
    let precinct_14: Vec<ClosureRecord> = records
        .iter()
        .filter(|r| r.precinct == "14")
        .cloned()
        .collect();
    assert_groups_match(
        "precinct 14 by complaint type",
        &expected_groups(&precinct_14, |r| r.complaint_type.clone()),
        &stats(GetSatisfactionStatsRequest {
            group_by: GroupBy::ComplaintType as i32,
            precinct: "14".into(),
            ..Default::default()
        })
        .await?,
    )?;
    let recent: Vec<ClosureRecord> = records
        .iter()
        .filter(|r| timestamp_to_utc(&r.closed_at) >= closed_at + Duration::minutes(30))
        .cloned()
        .collect();
    assert_eq!(recent.len(), plans.len());
    assert_groups_match(
        "closed in the last half hour, by precinct",
        &expected_groups(&recent, |r| r.precinct.clone()),
        &stats(GetSatisfactionStatsRequest {
            group_by: GroupBy::Precinct as i32,
            closed_from: Some(timestamp_of(closed_at + Duration::minutes(30))),
            closed_to: Some(timestamp_of(Utc::now() + Duration::minutes(5))),
            ..Default::default()
        })
        .await?,
    )?;
    let refused = survey
        .get_satisfaction_stats(GetSatisfactionStatsRequest {
            closed_from: Some(timestamp_of(Utc::now())),
            closed_to: Some(timestamp_of(Utc::now() - Duration::days(1))),
            ..Default::default()
        })
        .await
        .expect_err("an empty window is refused");
    assert_eq!(refused.code(), Code::InvalidArgument);

    // the export: one row per answer, month and borough only
    let exported: Vec<ExportSurveyResultsResponse> = survey
        .export_survey_results(ExportSurveyResultsRequest::default())
        .await?
        .into_inner()
        .try_collect()
        .await?;
    let sort_key = |row: &ExportSurveyResultsResponse| row.encode_to_vec();
    let mut exported_sorted = exported.clone();
    exported_sorted.sort_by_key(sort_key);
    exported_expected.sort_by_key(sort_key);
    assert_eq!(exported_sorted, exported_expected);
    for row in &exported {
        assert!(
            row.month.len() == 7
                && row.month.as_bytes()[4] == b'-'
                && row.month.bytes().filter(u8::is_ascii_digit).count() == 6,
            "month {:?}",
            row.month
        );
        let bytes = row.encode_to_vec();
        for closure in &closures {
            assert!(
                !contains_bytes(&bytes, &closure.sr_number),
                "an SR number in {row:?}"
            );
        }
        assert!(
            !contains_bytes(&bytes, "comment about"),
            "a comment in {row:?}"
        );
    }
    let exported_fields = message_fields("ExportSurveyResultsResponse")?;
    assert_eq!(
        exported_fields,
        [
            ("month", None),
            ("borough", None),
            ("agency", None),
            ("complaint_type", None),
            ("descriptor", None),
            (
                "agreement",
                Some(".dispatch311.survey.v1.Agreement".to_string())
            ),
            (
                "reason",
                Some(".dispatch311.survey.v1.DissatisfactionReason".to_string())
            ),
            (
                "condition_corrected",
                Some(".dispatch311.survey.v1.ConditionCorrected".to_string())
            ),
            (
                "resolution_code",
                Some(".dispatch311.common.v1.ResolutionCode".to_string())
            ),
        ]
        .map(|(name, type_name)| (name.to_string(), type_name)),
        "the export carries no time, place or id finer than month and borough"
    );
    let none: Vec<ExportSurveyResultsResponse> = survey
        .export_survey_results(ExportSurveyResultsRequest {
            closed_from: Some(timestamp_of(Utc::now() - Duration::days(400))),
            closed_to: Some(timestamp_of(Utc::now() - Duration::days(300))),
        })
        .await?
        .into_inner()
        .try_collect()
        .await?;
    assert!(none.is_empty());

    suite.stop().await
}

/// The fields of a survey message as (name, enum or message type) from the
/// compiled descriptors: plain strings have no type name.
fn message_fields(message: &str) -> anyhow::Result<Vec<(String, Option<String>)>> {
    let set = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET)?;
    let descriptor = set
        .file
        .iter()
        .filter(|file| file.package() == "dispatch311.survey.v1")
        .flat_map(|file| file.message_type.iter())
        .find(|m| m.name() == message)
        .ok_or_else(|| anyhow::anyhow!("{message} is not in the descriptors"))?;
    Ok(descriptor
        .field
        .iter()
        .map(|f| {
            let type_name = f.type_name.clone().filter(|t| !t.is_empty());
            (f.name().to_string(), type_name)
        })
        .collect())
}
