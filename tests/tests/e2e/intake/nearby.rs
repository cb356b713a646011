//! "Already reported?": before filing, an app asks for the open requests of a
//! type near the complainant, and sees how many and how far — never where
//! exactly, who, or what they wrote.

use dispatch311_auth::Role;
use dispatch311_proto::{
    common::v1::ServiceRequestStatus,
    intake::v1::{ListNearbyOpenRequestsRequest, ListNearbyOpenRequestsResponse},
};
use dispatch311_tests::{
    cad::{
        COMPLAINANT_EMAIL, COMPLAINANT_NAME, COMPLAINANT_PHONE, EMPIRE_STATE, complaint, offset,
    },
    suite::{Service, Suite, SuiteOptions},
};
use tonic_types::StatusExt;

fn near(complaint_type: &str, radius_m: f64) -> ListNearbyOpenRequestsRequest {
    ListNearbyOpenRequestsRequest {
        complaint_type: complaint_type.into(),
        location: Some(EMPIRE_STATE),
        radius_m,
        ..Default::default()
    }
}

#[tokio::test]
async fn an_app_sees_the_open_reports_nearby_without_anything_personal() -> anyhow::Result<()> {
    let suite = Suite::start(SuiteOptions::only(&[Service::Intake])).await?;
    let mut app = suite.intake().await?;
    // two reports of one blocked driveway, one 300 m away, a noise complaint here
    let mut filed = Vec::new();
    for (complaint_type, descriptor, place) in [
        ("Blocked Driveway", "No Access", EMPIRE_STATE),
        (
            "Blocked Driveway",
            "No Access",
            offset(EMPIRE_STATE, 20.0, 0.0),
        ),
        (
            "Blocked Driveway",
            "Partial Access",
            offset(EMPIRE_STATE, 300.0, 0.0),
        ),
        ("Noise - Street/Sidewalk", "Loud Music/Party", EMPIRE_STATE),
    ] {
        let mut request = complaint(complaint_type, descriptor, place);
        request.description = "the grey van of apartment 4B again".into();
        let sr = app
            .create_service_request(request)
            .await?
            .into_inner()
            .service_request
            .expect("the request");
        filed.push(sr.sr_number);
    }

    // another app, or anyone: the two within 50 m, nearest first, however the type is spelled
    let mut public = suite.intake_as(Role::Public, "anyone").await?;
    let nearby = public
        .list_nearby_open_requests(near("blocked  DRIVEWAY", 0.0))
        .await?
        .into_inner();
    let numbers: Vec<&str> = nearby
        .requests
        .iter()
        .map(|r| r.sr_number.as_str())
        .collect();
    assert_eq!(numbers, [filed[0].as_str(), filed[1].as_str()]);
    assert_eq!(nearby.requests[0].distance_m, 0);
    assert_eq!(nearby.requests[1].distance_m, 20);
    assert_eq!(nearby.requests[0].status(), ServiceRequestStatus::Received);
    assert_eq!(nearby.requests[0].descriptor, "No Access");
    assert!(nearby.requests[0].created_at.is_some());
    // nothing to find anyone by
    let shown = format!("{nearby:?}");
    for private in [
        "apartment 4B",
        COMPLAINANT_NAME,
        COMPLAINANT_PHONE,
        COMPLAINANT_EMAIL,
        "40.748",
        "-73.98",
    ] {
        assert!(!shown.contains(private), "{private:?} in {shown}");
    }

    // a wider circle finds the third; another type is not mixed in
    let wider = public
        .list_nearby_open_requests(near("Blocked Driveway", 500.0))
        .await?
        .into_inner();
    assert_eq!(wider.requests.len(), 3);
    assert_eq!(wider.requests[2].distance_m, 300);
    let noise: ListNearbyOpenRequestsResponse = public
        .list_nearby_open_requests(near("Noise - Street/Sidewalk", 0.0))
        .await?
        .into_inner();
    assert_eq!(noise.requests.len(), 1);

    // bad questions are refused with every field named
    let refused = public
        .list_nearby_open_requests(ListNearbyOpenRequestsRequest {
            complaint_type: " ".into(),
            location: None,
            radius_m: 5_000.0,
            page_size: 1_000,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    let fields: Vec<String> = refused
        .get_details_bad_request()
        .expect("field violations")
        .field_violations
        .into_iter()
        .map(|f| f.field)
        .collect();
    assert_eq!(
        fields,
        ["complaint_type", "location", "radius_m", "page_size"]
    );

    suite.stop().await
}
