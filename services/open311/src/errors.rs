//! Errors as the specification shapes them: a list of `{code, description}`
//! (`<errors><error>…` in XML) with the HTTP status. A refusal of intake's
//! becomes one entry per field violation, named by the Open311 parameter the
//! client sent, never a gRPC code.

use std::time::Duration;

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::Response,
};
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::render::{Format, Value, answer};

/// An answer of errors.
#[derive(Debug)]
pub struct Open311Error {
    pub status: StatusCode,
    /// (description) per problem; each is reported with `status` as its code.
    pub problems: Vec<String>,
    /// `Retry-After`, for 429 and 503.
    pub retry_after: Option<Duration>,
}

impl Open311Error {
    pub fn new(status: StatusCode, problem: impl Into<String>) -> Self {
        Self {
            status,
            problems: vec![problem.into()],
            retry_after: None,
        }
    }

    pub fn bad_request(problems: Vec<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            problems,
            retry_after: None,
        }
    }

    pub fn not_found(problem: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, problem)
    }

    pub fn forbidden(problem: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, problem)
    }

    pub fn unavailable(what: &str) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            problems: vec![format!(
                "{what} is not answering right now; try again shortly"
            )],
            retry_after: Some(Duration::from_secs(5)),
        }
    }

    /// A service's status, for a client of this gateway: `what` names the
    /// service in an outage's words.
    pub fn from_status(status: &tonic::Status, what: &str) -> Self {
        match status.code() {
            Code::InvalidArgument | Code::FailedPrecondition => {
                let violations = status
                    .get_details_bad_request()
                    .map(|bad| bad.field_violations)
                    .unwrap_or_default();
                if violations.is_empty() {
                    Self::bad_request(vec![status.message().to_string()])
                } else {
                    Self::bad_request(
                        violations
                            .iter()
                            .map(|v| format!("{}: {}", parameter_of(&v.field), v.description))
                            .collect(),
                    )
                }
            }
            Code::NotFound => Self::not_found(status.message()),
            Code::PermissionDenied | Code::Unauthenticated => {
                Self::forbidden("this api_key may not do that")
            }
            Code::ResourceExhausted => Self {
                status: StatusCode::TOO_MANY_REQUESTS,
                problems: vec!["too many requests for this api_key; slow down".into()],
                retry_after: Some(
                    status
                        .get_details_retry_info()
                        .and_then(|info| info.retry_delay)
                        .unwrap_or(Duration::from_secs(1)),
                ),
            },
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Aborted => {
                Self::unavailable(what)
            }
            _ => {
                tracing::error!(code = ?status.code(), message = status.message(), "{what} failed");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the request could not be handled; it was logged",
                )
            }
        }
    }

    pub fn render(&self, format: Format) -> Response {
        let errors = Value::List(
            "error",
            self.problems
                .iter()
                .map(|problem| {
                    Value::Object(vec![
                        ("code", Value::Integer(i64::from(self.status.as_u16()))),
                        ("description", Value::text(problem.clone())),
                    ])
                })
                .collect(),
        );
        let mut response = answer(format, self.status, "errors", &errors);
        if let Some(after) = self.retry_after {
            let seconds = after.as_secs().max(1);
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_str(&seconds.to_string()).expect("digits"),
            );
        }
        response
    }
}

/// Intake's field, as the Open311 parameter that carried it.
fn parameter_of(field: &str) -> &str {
    match field {
        "complaint_type" => "service_code",
        "descriptor" => "attribute[descriptor]",
        "location" | "location.latitude" => "lat",
        "location.longitude" => "long",
        "address" | "address.street_address" => "address_string",
        "complainant.email" => "email",
        "complainant.phone" => "phone",
        "complainant.name" => "first_name",
        "request_id" => "Idempotency-Key",
        field if field.starts_with("photos") => "media_url",
        field if field.starts_with("photo_ids") => "media",
        field => field,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_violations_become_one_error_each_named_as_the_client_sent_them() {
        let mut violations = dispatch311_grpc::status::FieldViolations::new();
        violations.add("location.latitude", "outside the city");
        violations.add("description", "at most 4000 characters");
        let status = violations.into_result().unwrap_err();
        let error = Open311Error::from_status(&status, "intake");
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            error.problems,
            [
                "lat: outside the city",
                "description: at most 4000 characters"
            ]
        );
    }

    #[test]
    fn an_outage_is_503_with_retry_after() {
        let error = Open311Error::from_status(&tonic::Status::unavailable("down"), "intake");
        let response = error.render(Format::Json);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "5");
    }
}
