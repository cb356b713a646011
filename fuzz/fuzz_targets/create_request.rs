//! Intake's validation of a new request, on any message the wire can carry:
//! an accepted request or INVALID_ARGUMENT with its field violations.
#![no_main]

use dispatch311_domain::bounds::CityBounds;
use dispatch311_proto::intake::v1::CreateServiceRequestRequest;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = CreateServiceRequestRequest::decode(data) {
        let bounds = CityBounds::parse("40.49,-74.26,40.92,-73.69").expect("New York's box");
        if let Err(status) =
            dispatch311_intake::validate::validate(request, &bounds, chrono::Utc::now())
        {
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        }
    }
});
