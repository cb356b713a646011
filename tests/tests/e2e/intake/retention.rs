//! Retention, end to end with the real binaries and short periods: voice
//! recording references go after their period whatever the request's state,
//! and photos uploaded but never filed after theirs;
//! the contact and original description of a finished request go after
//! theirs, after which the survey path answers NOT_FOUND; an open request
//! keeps its contact; every deletion is recorded, append-only; and the sweeps
//! that do it are jobs on the shared queue that keep themselves scheduled.

use std::time::Duration;

use dispatch311_auth::Role;
use dispatch311_proto::{
    common::v1::{ResolutionCode, ServiceRequestStatus},
    intake::v1::{DeletedData, ListRetentionDeletionsRequest},
    survey::v1::GetSurveyContactRequest,
};
use dispatch311_tests::{
    cad::{EMPIRE_STATE, complaint, register_unit, wait_for_job, wait_for_sr_status},
    suite::{Service, Suite, SuiteOptions, eventually},
    survey::{Poller, close_at_scene, closure_of},
};
use sqlx::PgPool;
use tonic::Code;

/// Seconds as the fraction of a day the retention settings take.
fn days(seconds: f64) -> String {
    format!("{:.9}", seconds / 86_400.0)
}

/// What auditors are shown was deleted of `sr_number`, by kind, sorted.
async fn deletions(suite: &Suite, sr_number: &str) -> anyhow::Result<Vec<DeletedData>> {
    let mut auditor = suite
        .intake_as(Role::Auditor, "city-privacy-office")
        .await?;
    let mut deleted: Vec<DeletedData> = auditor
        .list_retention_deletions(ListRetentionDeletionsRequest {
            sr_number: sr_number.to_string(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .deletions
        .iter()
        .map(|deletion| {
            assert_eq!(deletion.sr_number, sr_number);
            assert!(deletion.deleted_at.is_some(), "{deletion:?}");
            deletion.deleted()
        })
        .collect();
    deleted.sort();
    Ok(deleted)
}

async fn count(db: &PgPool, table: &str, sr_id: &str) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM intake.{table} WHERE sr_id = $1::uuid"
    )))
    .bind(sr_id)
    .fetch_one(db)
    .await?)
}

#[tokio::test]
async fn personal_data_is_deleted_on_schedule_and_the_survey_path_then_finds_nothing()
-> anyhow::Result<()> {
    const CONTACTS_KEPT: f64 = 12.0;
    const RECORDINGS_KEPT: f64 = 4.0;
    let suite = Suite::start(SuiteOptions {
        env: vec![
            (
                "DISPATCH311_CONTACT_RETENTION_DAYS".into(),
                days(CONTACTS_KEPT),
            ),
            (
                "DISPATCH311_VOICE_RETENTION_DAYS".into(),
                days(RECORDINGS_KEPT),
            ),
            (
                "DISPATCH311_UNFILED_PHOTO_DAYS".into(),
                days(RECORDINGS_KEPT),
            ),
            ("DISPATCH311_RETENTION_SWEEP_SECS".into(), "1".into()),
        ],
        ..Default::default()
    })
    .await?;
    let db = suite.database().await?;
    let dispatch = suite.dispatch().await?;
    let mut intake = suite.intake().await?;
    let mut survey = suite.survey().await?;

    // a photo filed with a request stays; one uploaded and never filed goes
    let upload = || {
        let mut intake = intake.clone();
        async move {
            let content = dispatch311_photos::samples::jpeg(false);
            anyhow::Ok(
                intake
                    .upload_photo(dispatch311_proto::intake::v1::UploadPhotoRequest { content })
                    .await?
                    .into_inner()
                    .photo_id,
            )
        }
    };
    let filed_photo = upload().await?;
    let unfiled_photo = upload().await?;

    // two calls by phone, with recordings; one is worked and closed, one stays open
    let file = |recording: &str| {
        let mut request = complaint("Illegal Parking", "Blocked Hydrant", EMPIRE_STATE);
        request.voice_recording_uri = format!("s3://city-311-calls/{recording}.ogg");
        request
    };
    let closed = intake
        .create_service_request(file("closed"))
        .await?
        .into_inner()
        .service_request
        .unwrap();
    let mut with_photo = file("open");
    with_photo.photo_ids = vec![filed_photo.clone()];
    let open = intake
        .create_service_request(with_photo)
        .await?
        .into_inner()
        .service_request
        .unwrap();
    let filed_at = std::time::Instant::now();
    let job = wait_for_job(&dispatch, &closed.sr_number).await?;
    wait_for_job(&dispatch, &open.sr_number).await?;
    let unit = register_unit(&dispatch, "14-KEEP-1", "14", &["O-14-5"], EMPIRE_STATE).await?;
    close_at_scene(&dispatch, &job, &unit, "O-14-5", ResolutionCode::NoEvidence).await?;
    wait_for_sr_status(&suite, &closed.sr_number, ServiceRequestStatus::Closed).await?;
    let closed_at = std::time::Instant::now();

    // within the survey window the contact is there for the survey
    let closure = Poller::new(survey.clone(), 100)
        .wait_for(&closed.sr_number, closure_of(&closed.sr_number, 1))
        .await?;
    let token = GetSurveyContactRequest {
        survey_token: closure.survey_token.clone(),
    };
    survey.get_survey_contact(token.clone()).await?;
    assert!(
        closed_at.elapsed() < Duration::from_secs_f64(CONTACTS_KEPT),
        "the test was too slow to see the contact before its deletion"
    );

    // recordings go after their period, open or closed
    for sr in [&closed, &open] {
        eventually(
            Duration::from_secs(30),
            &format!("the recording reference of {} deleted", sr.sr_number),
            || {
                let db = db.clone();
                let sr_id = sr.sr_id.clone();
                async move {
                    let uri: Option<String> = sqlx::query_scalar(
                        "SELECT voice_recording_uri FROM intake.service_requests WHERE sr_id = $1::uuid",
                    )
                    .bind(&sr_id)
                    .fetch_one(&db)
                    .await?;
                    Ok(uri.is_none().then_some(()))
                }
            },
        )
        .await?;
    }
    assert!(
        filed_at.elapsed() >= Duration::from_secs_f64(RECORDINGS_KEPT),
        "a recording went early"
    );
    let photo_file = |id: &str| {
        suite
            .log_dir
            .join("photos")
            .join(uuid::Uuid::parse_str(id).unwrap().simple().to_string())
    };
    eventually(Duration::from_secs(30), "the unfiled photo deleted", || {
        let db = db.clone();
        let id = unfiled_photo.clone();
        async move {
            let left: i64 =
                sqlx::query_scalar("SELECT count(*) FROM intake.photos WHERE photo_id = $1::uuid")
                    .bind(&id)
                    .fetch_one(&db)
                    .await?;
            Ok((left == 0).then_some(()))
        }
    })
    .await?;
    eventually(Duration::from_secs(5), "its file deleted", || {
        let gone = !photo_file(&unfiled_photo).exists();
        async move { Ok(gone.then_some(())) }
    })
    .await?;
    assert!(photo_file(&filed_photo).exists(), "a filed photo stays");

    // the finished request's contact and words go after theirs
    eventually(
        Duration::from_secs(40),
        "the closed request's contact deleted",
        || {
            let db = db.clone();
            let sr_id = closed.sr_id.clone();
            async move { Ok((count(&db, "complainant_contacts", &sr_id).await? == 0).then_some(())) }
        },
    )
    .await?;
    assert!(
        closed_at.elapsed() >= Duration::from_secs_f64(CONTACTS_KEPT) - Duration::from_secs(1),
        "the contact went early: {:?} after closing",
        closed_at.elapsed()
    );
    assert_eq!(count(&db, "sealed_descriptions", &closed.sr_id).await?, 0);
    let gone = survey
        .get_survey_contact(token)
        .await
        .expect_err("the contact is gone");
    assert_eq!(gone.code(), Code::NotFound, "{gone:?}");

    // the open request keeps its contact and its words
    assert_eq!(count(&db, "complainant_contacts", &open.sr_id).await?, 1);
    assert_eq!(count(&db, "sealed_descriptions", &open.sr_id).await?, 1);

    // each deletion recorded, and the record cannot be edited
    assert_eq!(
        deletions(&suite, &closed.sr_number).await?,
        [
            DeletedData::Contact,
            DeletedData::Description,
            DeletedData::VoiceRecording
        ]
    );
    assert_eq!(
        deletions(&suite, &open.sr_number).await?,
        [DeletedData::VoiceRecording]
    );
    // all of them, a page at a time, newest first
    let mut auditor = suite
        .intake_as(Role::Auditor, "city-privacy-office")
        .await?;
    let (mut listed, mut page_token) = (Vec::new(), String::new());
    loop {
        let page = auditor
            .list_retention_deletions(ListRetentionDeletionsRequest {
                page_size: 2,
                page_token,
                ..Default::default()
            })
            .await?
            .into_inner();
        assert!(page.deletions.len() <= 2);
        listed.extend(page.deletions);
        page_token = page.next_page_token;
        if page_token.is_empty() {
            break;
        }
    }
    assert_eq!(listed.len(), 5, "{listed:?}");
    // the unfiled photo's deletion is recorded too, by photo: it has no request
    let photo_deletion: Vec<_> = listed
        .iter()
        .filter(|d| d.deleted == DeletedData::UnfiledPhoto as i32)
        .collect();
    assert_eq!(photo_deletion.len(), 1, "{listed:?}");
    assert_eq!(photo_deletion[0].photo_id, unfiled_photo);
    assert!(photo_deletion[0].sr_number.is_empty());
    assert!(
        listed.windows(2).all(
            |pair| pair[0].deleted_at.as_ref().map(|t| (t.seconds, t.nanos))
                >= pair[1].deleted_at.as_ref().map(|t| (t.seconds, t.nanos))
        ),
        "newest first: {listed:?}"
    );
    // the integrator that filed the request is not an auditor
    let refused = intake
        .list_retention_deletions(ListRetentionDeletionsRequest::default())
        .await
        .expect_err("integrators do not list deletions");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let edit = sqlx::query("DELETE FROM intake.retention_deletions")
        .execute(&db)
        .await;
    assert!(edit.is_err(), "retention deletions are append-only");
    // the public record stays
    let kept = intake
        .get_service_request(dispatch311_proto::intake::v1::GetServiceRequestRequest {
            key: Some(
                dispatch311_proto::intake::v1::get_service_request_request::Key::SrNumber(
                    closed.sr_number.clone(),
                ),
            ),
        })
        .await?
        .into_inner()
        .service_request
        .unwrap();
    assert_eq!(kept.status, ServiceRequestStatus::Closed as i32);

    // the sweeps are jobs on the shared queue, one pending at a time
    let next_due: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT next_due_at FROM intake.retention_schedule")
            .fetch_one(&db)
            .await?;
    assert!(next_due > chrono::Utc::now() - chrono::Duration::seconds(5));
    let log = std::fs::read_to_string(suite.log_path(Service::Intake))?;
    assert!(
        log.lines()
            .any(|l| l.contains("retention sweep done") && l.contains("\"contacts\":1")),
        "the sweep that deleted the contact is logged with its counts"
    );

    db.close().await;
    suite.stop().await
}
