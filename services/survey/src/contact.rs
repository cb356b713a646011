//! Fetching a complainant's contact details from intake for one survey.
//! Intake decides (consent, retention) and records the release; this side
//! passes the details through to the caller and keeps nothing: no storage,
//! no log line, no span attribute.

use std::time::Duration;

use dispatch311_grpc::status as grpc_status;
use dispatch311_proto::intake::v1::{
    Complainant, ReleaseComplainantContactRequest, ReleasePurpose,
    intake_service_client::IntakeServiceClient,
};
use dispatch311_telemetry::grpc::TracedChannel;
use tonic::{Code, Status, metadata::AsciiMetadataValue};

/// A release should be quick; a slow intake is an unavailable one.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct ContactSource {
    intake: IntakeServiceClient<TracedChannel>,
}

impl ContactSource {
    /// A client of intake at `url` that connects on first use, over mutual
    /// TLS when `tls` is set. Must be called inside the Tokio runtime.
    pub fn connect_lazy(
        url: &str,
        tls: Option<&dispatch311_grpc::tls::TlsConfig>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            intake: IntakeServiceClient::new(dispatch311_grpc::client::connect_lazy(url, tls)?),
        })
    }

    /// The contact of `sr_number`'s complainant, released for the
    /// satisfaction survey to the caller whose `authorization` is forwarded:
    /// intake verifies that token again and records its subject.
    pub async fn release(
        &self,
        sr_number: &str,
        authorization: Option<AsciiMetadataValue>,
    ) -> Result<Complainant, Status> {
        let mut request = tonic::Request::new(ReleaseComplainantContactRequest {
            sr_number: sr_number.to_string(),
            purpose: ReleasePurpose::SatisfactionSurvey as i32,
        });
        if let Some(authorization) = authorization {
            request
                .metadata_mut()
                .insert("authorization", authorization);
        }
        request.set_timeout(RELEASE_TIMEOUT);
        match self
            .intake
            .clone()
            .release_complainant_contact(request)
            .await
        {
            Ok(answer) => answer.into_inner().complainant.ok_or_else(|| {
                grpc_status::internal(&std::io::Error::other(
                    "intake answered a release without a contact",
                ))
            }),
            Err(refusal) => Err(intake_refusal(sr_number, refusal)),
        }
    }
}

/// What the survey system hears when intake refuses or cannot answer.
/// Intake's messages never carry contact values, but they are not passed on
/// as they are either: the caller gets this service's own wording.
fn intake_refusal(sr_number: &str, refusal: Status) -> Status {
    match refusal.code() {
        Code::NotFound => grpc_status::not_found("complainant contact of", sr_number),
        Code::FailedPrecondition => grpc_status::failed_precondition(
            "NO_CONSENT",
            sr_number,
            "the complainant did not agree to be contacted",
        ),
        // intake trusts other keys or roles than this service does: a
        // deployment mistake the caller should hear about, not retry
        Code::Unauthenticated | Code::PermissionDenied => Status::permission_denied(format!(
            "intake refused to release the contact to this caller: {}",
            refusal.message()
        )),
        // down, overloaded, slow, or not yet able to release: worth retrying
        Code::Unavailable
        | Code::DeadlineExceeded
        | Code::Cancelled
        | Code::ResourceExhausted
        | Code::Unimplemented
        | Code::Unknown => grpc_status::unavailable("intake", &refusal),
        _ => grpc_status::internal(&refusal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intake_refusals_map_to_what_the_survey_system_can_act_on() {
        let cases = [
            (Code::NotFound, Code::NotFound),
            (Code::FailedPrecondition, Code::FailedPrecondition),
            (Code::Unavailable, Code::Unavailable),
            (Code::DeadlineExceeded, Code::Unavailable),
            (Code::Unimplemented, Code::Unavailable),
            (Code::PermissionDenied, Code::PermissionDenied),
            (Code::Unauthenticated, Code::PermissionDenied),
            (Code::InvalidArgument, Code::Internal),
        ];
        for (from_intake, expected) in cases {
            let mapped = intake_refusal("SR-2026-0000042", Status::new(from_intake, "no"));
            assert_eq!(mapped.code(), expected, "{from_intake:?}");
        }
        let not_found = intake_refusal("SR-2026-0000042", Status::not_found("gone"));
        assert_eq!(
            not_found.message(),
            "complainant contact of SR-2026-0000042 not found"
        );
    }
}
