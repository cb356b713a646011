//! Photos end to end with the real binaries: an integrator uploads a JPEG
//! carrying EXIF with a GPS position, the phone's model, an ICC profile, a
//! comment and XMP, and a PNG with text chunks; only JPEG and PNG are taken,
//! decided from the bytes; the photos are filed with a request, and the
//! officer of the assigned unit fetches them through dispatch without any of
//! that metadata, each view recorded; nobody else's upload can be filed.
//! The same through S3-compatible storage (a real S3-compatible server),
//! where a write the store refuses records nothing.

use dispatch311_auth::Role;
use dispatch311_photos::samples::{SECRETS, jpeg, png};
use dispatch311_proto::{
    common::v1::ResolutionCode,
    dispatch::v1::{EventType, GetJobPhotoRequest},
    intake::v1::{UploadPhotoRequest, UploadPhotoResponse},
};
use dispatch311_tests::{
    cad::{
        EMPIRE_STATE, complaint, drive_to_scene, officer, register_unit, timeline, wait_for_job,
    },
    s3::{self, S3Server},
    suite::{Service, Suite, SuiteOptions},
};
use tonic::Code;

fn assert_clean(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} still holds {secret:?}");
    }
}

#[tokio::test]
async fn a_photo_with_gps_exif_comes_back_from_dispatch_without_any_metadata() -> anyhow::Result<()>
{
    let suite = Suite::start(SuiteOptions::default()).await?;
    let mut app = suite.intake().await?;
    let upload = |content: Vec<u8>| UploadPhotoRequest { content };

    let UploadPhotoResponse {
        photo_id: jpeg_id,
        content_type,
        size_bytes,
    } = app.upload_photo(upload(jpeg(true))).await?.into_inner();
    assert_eq!(content_type, "image/jpeg");
    assert_eq!(size_bytes as usize, jpeg(false).len());
    let png_id = app.upload_photo(upload(png(true))).await?.into_inner();
    assert_eq!(png_id.content_type, "image/png");

    // only JPEG and PNG, by content; at most 5 MiB
    for (what, content) in [
        ("a GIF", b"GIF89a\x01\0\x01\0\0\0\0;".to_vec()),
        (
            "HTML named like a photo",
            b"<html>holiday.jpg</html>".to_vec(),
        ),
        ("nothing", Vec::new()),
        ("a cut-off JPEG", jpeg(false)[..40].to_vec()),
        ("6 MiB", vec![0xFF; dispatch311_photos::MAX_PHOTO_BYTES + 1]),
    ] {
        let refused = app
            .upload_photo(upload(content))
            .await
            .expect_err(&format!("{what} is refused"));
        assert_eq!(refused.code(), Code::InvalidArgument, "{what}: {refused:?}");
    }
    // the store holds the stripped bytes only
    let mut stored = 0;
    for entry in std::fs::read_dir(suite.log_dir.join("photos"))? {
        let bytes = std::fs::read(entry?.path())?;
        assert_clean("a stored photo", &bytes);
        stored += 1;
    }
    assert_eq!(stored, 2, "one file per accepted upload");

    // another integrator cannot file them
    let mut request = complaint("Illegal Parking", "Blocked Hydrant", EMPIRE_STATE);
    request.photo_ids = vec![jpeg_id.clone(), png_id.photo_id.clone()];
    let stolen = suite
        .intake_as(Role::Integrator, "partner-agency")
        .await?
        .create_service_request(request.clone())
        .await
        .expect_err("not its photos");
    assert_eq!(stolen.code(), Code::InvalidArgument, "{stolen:?}");

    // the uploader files them, and the job carries them
    let sr = app
        .create_service_request(request)
        .await?
        .into_inner()
        .service_request
        .unwrap();
    assert_eq!(sr.photo_count, 2);
    let dispatch = suite.dispatch().await?;
    let job = wait_for_job(&dispatch, &sr.sr_number).await?;
    assert_eq!(job.photo_count, 2);

    let unit = register_unit(&dispatch, "14-PHOTO-1", "14", &["O-14-21"], EMPIRE_STATE).await?;
    drive_to_scene(&dispatch, &job, &unit, "O-14-21", EMPIRE_STATE).await?;
    let fetch = |actor: &str, photo_index: u32| GetJobPhotoRequest {
        actor: officer(actor),
        job_id: job.job_id.clone(),
        photo_index,
    };
    let events_before = timeline(&dispatch, &job.job_id).await?.len();

    // an officer of another unit, and a dispatcher, do not see them
    let other = dispatch
        .clone()
        .get_job_photo(fetch("O-99-1", 0))
        .await
        .expect_err("not this officer's job");
    assert_eq!(other.code(), Code::PermissionDenied, "{other:?}");
    let dispatcher = suite
        .authenticated(
            dispatch311_tests::suite::Service::Dispatch,
            Role::Dispatcher,
            "D-100",
        )
        .await?;
    let refused =
        dispatch311_proto::dispatch::v1::dispatch_service_client::DispatchServiceClient::new(
            dispatcher,
        )
        .get_job_photo(GetJobPhotoRequest {
            actor: None,
            job_id: job.job_id.clone(),
            photo_index: 0,
        })
        .await
        .expect_err("dispatchers do not open photos");
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(timeline(&dispatch, &job.job_id).await?.len(), events_before);

    // the crew's officer gets each photo, clean, and each view is recorded
    let first = dispatch
        .clone()
        .get_job_photo(fetch("O-14-21", 0))
        .await?
        .into_inner();
    assert_eq!(first.content_type, "image/jpeg");
    assert_eq!(
        first.content,
        jpeg(false),
        "the picture, and only the picture"
    );
    assert_clean("the JPEG from dispatch", &first.content);
    let second = dispatch
        .clone()
        .get_job_photo(fetch("O-14-21", 1))
        .await?
        .into_inner();
    assert_eq!(second.content_type, "image/png");
    assert_eq!(second.content, png(false));
    let past = dispatch
        .clone()
        .get_job_photo(fetch("O-14-21", 2))
        .await
        .expect_err("two photos");
    assert_eq!(past.code(), Code::InvalidArgument);

    let views: Vec<_> = timeline(&dispatch, &job.job_id)
        .await?
        .into_iter()
        .filter(|e| e.r#type == EventType::EvidenceViewed as i32)
        .collect();
    assert_eq!(views.len(), 2, "{views:?}");
    assert!(
        views
            .iter()
            .all(|e| e.actor.as_ref().is_some_and(|a| a.id == "O-14-21"))
    );

    // having seen the evidence, the officer may close without it as the reason
    dispatch311_tests::cad::close(
        &dispatch,
        dispatch311_tests::cad::close_request(
            &job.job_id,
            "O-14-21",
            ResolutionCode::NoEvidence,
            EMPIRE_STATE,
        ),
    )
    .await?;

    suite.stop().await
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test]
async fn photos_kept_in_s3_compatible_storage_reach_the_officer_and_a_refused_write_stores_nothing()
-> anyhow::Result<()> {
    let scratch = std::env::temp_dir()
        .join("dispatch311-tests")
        .join(format!("s3-{}", uuid::Uuid::new_v4().simple()));
    let s3 = S3Server::start(scratch.join("data"), "city-311-photos").await?;
    let mut suite = Suite::start(SuiteOptions {
        env: s3.photo_store_env("suite/photos", s3::ACCESS_KEY_ID),
        ..SuiteOptions::default()
    })
    .await?;
    let mut app = suite.intake().await?;

    let uploaded = app
        .upload_photo(UploadPhotoRequest {
            content: jpeg(true),
        })
        .await?
        .into_inner();
    // in the bucket, under the prefix, stripped; nothing on local disk
    let stored: Vec<_> = files_under(&s3.data_dir)
        .into_iter()
        .filter(|path| std::fs::read(path).is_ok_and(|bytes| bytes == jpeg(false)))
        .collect();
    assert_eq!(stored.len(), 1, "the stripped photo, once, in the bucket");
    let stored_at = stored[0].to_string_lossy().into_owned();
    assert!(
        stored_at.contains("city-311-photos") && stored_at.contains("suite/photos"),
        "{stored_at}"
    );
    for path in files_under(&s3.data_dir) {
        assert_clean("an object in the bucket", &std::fs::read(path)?);
    }
    assert!(
        !suite.log_dir.join("photos").exists(),
        "no local photo directory"
    );

    // dispatch reads it from the same store for the crew's officer
    let mut request = complaint("Illegal Parking", "Blocked Hydrant", EMPIRE_STATE);
    request.photo_ids = vec![uploaded.photo_id.clone()];
    let sr = app
        .create_service_request(request)
        .await?
        .into_inner()
        .service_request
        .unwrap();
    let dispatch = suite.dispatch().await?;
    let job = wait_for_job(&dispatch, &sr.sr_number).await?;
    let unit = register_unit(&dispatch, "14-S3-1", "14", &["O-14-31"], EMPIRE_STATE).await?;
    drive_to_scene(&dispatch, &job, &unit, "O-14-31", EMPIRE_STATE).await?;
    let fetched = dispatch
        .clone()
        .get_job_photo(GetJobPhotoRequest {
            actor: officer("O-14-31"),
            job_id: job.job_id.clone(),
            photo_index: 0,
        })
        .await?
        .into_inner();
    assert_eq!(fetched.content, jpeg(false));

    // an intake whose credentials the store refuses: UNAVAILABLE, nothing recorded
    let photos_before: i64 = sqlx::query_scalar("SELECT count(*) FROM intake.photos")
        .fetch_one(&suite.database().await?)
        .await?;
    suite.set_env("AWS_ACCESS_KEY_ID", "a-revoked-key");
    let misconfigured = suite.spawn_replica(Service::Intake).await?;
    let refused = dispatch311_proto::intake::v1::intake_service_client::IntakeServiceClient::new(
        misconfigured
            .authenticated(Role::Integrator, "test-311-app")
            .await?,
    )
    .upload_photo(UploadPhotoRequest {
        content: jpeg(true),
    })
    .await
    .expect_err("the store refuses a revoked key");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    let photos_after: i64 = sqlx::query_scalar("SELECT count(*) FROM intake.photos")
        .fetch_one(&suite.database().await?)
        .await?;
    assert_eq!(photos_after, photos_before);

    drop(misconfigured);
    suite.stop().await?;
    drop(s3);
    let _ = std::fs::remove_dir_all(scratch);
    Ok(())
}
