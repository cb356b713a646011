//! Photos end to end with the real binaries: an integrator uploads a JPEG
//! carrying EXIF with a GPS position, the phone's model, an ICC profile, a
//! comment and XMP, and a PNG with text chunks; only JPEG and PNG are taken,
//! decided from the bytes; the photos are filed with a request, and the
//! officer of the assigned unit fetches them through dispatch without any of
//! that metadata, each view recorded; nobody else's upload can be filed.

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
    suite::{Suite, SuiteOptions},
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
