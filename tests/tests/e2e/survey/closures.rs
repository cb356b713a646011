//! Closures flow from dispatch into the survey feed: what the survey system
//! sees of each (and that it never sees a contact), a token only for a
//! complainant who consented, one entry per closure however often the
//! `closed` event is delivered, and a request reopened and closed again
//! appearing again as closure 2.

use std::time::Duration;

use dispatch311_domain::jobs::{kinds, queues};
use dispatch311_proto::{
    common::v1::ResolutionCode,
    dispatch::v1::{JobState, ReopenJobRequest},
    jobs::v1::ClosedEvent,
};
use dispatch311_queue::{JobQueue, QueueConfig};
use dispatch311_tests::{
    cad::{
        COMPLAINANT_EMAIL, COMPLAINANT_NAME, COMPLAINANT_PHONE, EMPIRE_STATE, contains_bytes, file,
        register_unit, supervisor,
    },
    suite::{Service, Suite, SuiteOptions, eventually},
    survey::{Complainant, Poller, close_at_scene, closure_of, complaint_from, timestamp_to_utc},
};
use sqlx::Row as _;

#[tokio::test]
async fn closures_reach_the_feed_once_each_with_a_token_only_for_consenting_complainants()
-> anyhow::Result<()> {
    let suite = Suite::start(SuiteOptions::default()).await?;
    let dispatch = suite.dispatch().await?;
    let unit = register_unit(&dispatch, "14-SURVEY-1", "14", &["O-14-1"], EMPIRE_STATE).await?;
    let mut poller = Poller::new(suite.survey().await?, 50);

    let cases = [
        (Complainant::Consenting, ResolutionCode::NoEvidence),
        (Complainant::NotConsenting, ResolutionCode::SummonsIssued),
        (Complainant::Anonymous, ResolutionCode::ActionTaken),
    ];
    let mut closed = Vec::new();
    for (complainant, code) in cases {
        let request = complaint_from(
            complainant,
            "Illegal Parking",
            "Blocked Hydrant",
            EMPIRE_STATE,
            "MANHATTAN",
        );
        let job = file(&suite, request).await?;
        let job = close_at_scene(&dispatch, &job, &unit, "O-14-1", code).await?;
        closed.push((complainant, code, job));
    }

    let issued_at = chrono::Utc::now();
    for (complainant, code, job) in &closed {
        let seen = poller
            .wait_for(&job.sr_number, closure_of(&job.sr_number, 1))
            .await?;
        assert_eq!(seen.agency, "NYPD");
        assert_eq!(seen.precinct, "14");
        assert_eq!(seen.borough, "MANHATTAN");
        assert_eq!(seen.complaint_type, "Illegal Parking");
        assert_eq!(seen.descriptor, "Blocked Hydrant");
        assert_eq!(seen.resolution_code, *code as i32);
        assert_eq!(
            seen.resolution_text,
            dispatch311_domain::resolution::public_text(*code)
        );
        assert_eq!(seen.closed_at, job.closed_at, "{}", job.sr_number);
        assert_eq!(
            seen.closure_flagged,
            !job.flags.is_empty(),
            "{}: flags {:?}",
            job.sr_number,
            job.flags
        );
        let consented = *complainant == Complainant::Consenting;
        assert_eq!(seen.complainant_consented, consented);
        if consented {
            assert!(
                seen.survey_token.len() >= 22
                    && seen
                        .survey_token
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "a URL-safe token of at least 128 bits: {:?}",
                seen.survey_token
            );
            let expires = timestamp_to_utc(seen.survey_token_expires_at.as_ref().expect("expiry"));
            let thirty_days = issued_at + chrono::Duration::days(30);
            assert!(
                (expires - thirty_days).num_minutes().abs() < 10,
                "the token lasts 30 days: expires {expires}"
            );
        } else {
            assert_eq!(
                seen.survey_token, "",
                "{complainant:?}: no token without consent"
            );
            assert_eq!(seen.survey_token_expires_at, None);
        }
    }

    // the survey schema keeps the token's hash, never the token, and no contact
    let db = suite.database().await?;
    let consenting = &poller
        .seen
        .iter()
        .find(|c| c.complainant_consented)
        .expect("the consenting closure")
        .clone();
    let (by_hash, by_text): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE token_hash = sha256(convert_to($1, 'UTF8'))), \
                count(*) FILTER (WHERE token_hash = convert_to($1, 'UTF8')) \
         FROM survey.survey_tokens",
    )
    .bind(&consenting.survey_token)
    .fetch_one(&db)
    .await?;
    assert_eq!((by_hash, by_text), (1, 0));
    let stored: Vec<String> = sqlx::query_scalar(
        "SELECT row_to_json(c)::text FROM survey.closures c \
         UNION ALL SELECT row_to_json(t)::text FROM survey.survey_tokens t \
         UNION ALL SELECT row_to_json(r)::text FROM survey.responses r",
    )
    .fetch_all(&db)
    .await?;
    for row in &stored {
        for secret in [
            COMPLAINANT_NAME,
            COMPLAINANT_PHONE,
            COMPLAINANT_EMAIL,
            consenting.survey_token.as_str(),
        ] {
            assert!(!row.contains(secret), "survey stored {secret:?}: {row}");
        }
    }

    // a redelivered closed event stores nothing new
    let (first_job, queue) = {
        let (_, code, job) = &closed[0];
        let event = ClosedEvent {
            sr_id: job.sr_id.clone(),
            sr_number: job.sr_number.clone(),
            agency: job.agency.clone(),
            precinct: job.precinct.clone(),
            borough: "MANHATTAN".into(),
            complaint_type: job.complaint_type.clone(),
            descriptor: job.descriptor.clone(),
            resolution_code: *code as i32,
            resolution_text: "redelivered".into(),
            closed_at: job.closed_at,
            assigned_at: job.assigned_at,
            flagged: false,
            complainant_consented: true,
            closure_number: 1,
            summons_issued: false,
            origin_traceparent: String::new(),
            job_id: job.job_id.clone(),
        };
        let queue = JobQueue::connect(QueueConfig {
            redis_url: suite.redis_url.clone(),
            key_prefix: suite.redis_prefix.clone(),
            ..QueueConfig::default()
        })
        .await?;
        queue
            .publish(queues::CLOSED, kinds::CLOSED, &event.sr_id, &event)
            .await?;
        (job.clone(), queue)
    };
    eventually(
        Duration::from_secs(10),
        "the redelivered closed event to be handled",
        || {
            let queue = queue.clone();
            async move {
                let stats = queue.stats(queues::CLOSED).await?;
                Ok((stats.stream_len == 0 && stats.delayed == 0).then_some(()))
            }
        },
    )
    .await?;
    let stored_once: i64 =
        sqlx::query_scalar("SELECT count(*) FROM survey.closures WHERE sr_number = $1")
            .bind(&first_job.sr_number)
            .fetch_one(&db)
            .await?;
    assert_eq!(stored_once, 1, "one row per closure");
    let dead = queue.stats(queues::CLOSED).await?.dead;
    assert_eq!(dead, 0, "a repeat is not an error");
    let text: String =
        sqlx::query("SELECT resolution_text FROM survey.closures WHERE sr_number = $1")
            .bind(&first_job.sr_number)
            .fetch_one(&db)
            .await?
            .get(0);
    assert_ne!(text, "redelivered", "the first delivery is kept");

    // reopened by a supervisor and closed again: a second closure, handed out again
    dispatch
        .clone()
        .reopen_job(ReopenJobRequest {
            actor: supervisor(),
            job_id: first_job.job_id.clone(),
            reason: "the supervisor wants the block checked again".into(),
            raise_priority: false,
        })
        .await?;
    let reopened = dispatch311_tests::cad::get_job(&dispatch, &first_job.job_id).await?;
    assert_eq!(reopened.state, JobState::Queued as i32);
    let job = close_at_scene(
        &dispatch,
        &reopened,
        &unit,
        "O-14-1",
        ResolutionCode::ActionTaken,
    )
    .await?;
    let second = poller
        .wait_for("the second closure", closure_of(&job.sr_number, 2))
        .await?;
    assert_eq!(second.resolution_code, ResolutionCode::ActionTaken as i32);
    assert!(
        !second.survey_token.is_empty() && second.survey_token != consenting.survey_token,
        "the new closure has its own token"
    );
    let position = |number: u32| {
        poller
            .seen
            .iter()
            .position(closure_of(&job.sr_number, number))
            .expect("handed out")
    };
    assert!(position(1) < position(2));

    // over the whole run, each closure was handed out exactly once
    let mut keys: Vec<(String, u32)> = poller
        .seen
        .iter()
        .map(|c| (c.sr_number.clone(), c.closure_number))
        .collect();
    let total = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), total, "a closure was handed out twice");
    assert_eq!(total, 4);

    // the poll results never carried contact details
    for closure in &poller.seen {
        let bytes = prost::Message::encode_to_vec(closure);
        for secret in [COMPLAINANT_NAME, COMPLAINANT_PHONE, COMPLAINANT_EMAIL] {
            assert!(!contains_bytes(&bytes, secret));
        }
    }
    let log = std::fs::read_to_string(suite.log_path(Service::Survey))?;
    for secret in [
        COMPLAINANT_NAME,
        COMPLAINANT_PHONE,
        COMPLAINANT_EMAIL,
        consenting.survey_token.as_str(),
    ] {
        assert!(!log.contains(secret), "the survey log shows {secret:?}");
    }

    suite.stop().await
}
