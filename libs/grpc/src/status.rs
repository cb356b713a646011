//! The gRPC errors dispatch311 returns, built in one place so every service
//! answers the same way (AIP-193): a code that says what kind of failure, a
//! message a person can act on, and `google.rpc` details a program can act on
//! (`BadRequest`, `ResourceInfo`, `PreconditionFailure`, `RetryInfo`), read
//! back with `tonic_types::StatusExt`.
//!
//! Failures that are not the caller's fault ([`internal`], [`unavailable`])
//! are logged here with their whole cause chain, and the caller gets a generic
//! message with the trace id to quote, never the cause itself: a database
//! error can carry data the caller must not see.

use std::{
    error::Error,
    fmt::{self, Write as _},
    time::Duration,
};

use dispatch311_telemetry::propagation;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// How long a client should wait before retrying a call that failed UNAVAILABLE.
pub const RETRY_DELAY: Duration = Duration::from_secs(1);

/// Every problem found in a request, reported together as one
/// INVALID_ARGUMENT so a caller can fix them all at once.
///
/// ```
/// use dispatch311_grpc::status::FieldViolations;
///
/// let mut violations = FieldViolations::new();
/// violations.add("location.latitude", "must be between -90 and 90");
/// let status = violations.into_result().unwrap_err();
/// assert_eq!(status.message(), "invalid request: location.latitude: must be between -90 and 90");
/// ```
#[derive(Debug, Default, Clone)]
pub struct FieldViolations {
    violations: Vec<FieldViolation>,
}

impl FieldViolations {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `field` (a path such as `photos[0].uri`) is wrong, and how.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.violations
            .push(FieldViolation::new(field, description));
    }

    pub fn is_empty(&self) -> bool {
        self.violations.is_empty()
    }

    pub fn len(&self) -> usize {
        self.violations.len()
    }

    /// `Ok` when nothing was recorded, otherwise INVALID_ARGUMENT listing every
    /// violation in the message and in a `BadRequest` detail.
    pub fn into_result(self) -> Result<(), Status> {
        if self.violations.is_empty() {
            return Ok(());
        }
        let mut message = String::from("invalid request: ");
        for (i, violation) in self.violations.iter().enumerate() {
            let separator = if i == 0 { "" } else { "; " };
            let _ = write!(
                message,
                "{separator}{}: {}",
                violation.field, violation.description
            );
        }
        Err(Status::with_error_details(
            Code::InvalidArgument,
            message,
            ErrorDetails::with_bad_request(self.violations),
        ))
    }
}

/// INVALID_ARGUMENT for a single bad field.
pub fn invalid_argument(field: impl Into<String>, description: impl Into<String>) -> Status {
    let mut violations = FieldViolations::new();
    violations.add(field, description);
    match violations.into_result() {
        Err(status) => status,
        Ok(()) => unreachable!("one violation was recorded"),
    }
}

/// NOT_FOUND for `resource_type` (e.g. `service request`) named `name`.
pub fn not_found(resource_type: &str, name: impl Into<String>) -> Status {
    let name = name.into();
    Status::with_error_details(
        Code::NotFound,
        format!("{resource_type} {name} not found"),
        ErrorDetails::with_resource_info(resource_type, name, "", "not found"),
    )
}

/// ALREADY_EXISTS for `resource_type` named `name`.
pub fn already_exists(resource_type: &str, name: impl Into<String>) -> Status {
    let name = name.into();
    Status::with_error_details(
        Code::AlreadyExists,
        format!("{resource_type} {name} already exists"),
        ErrorDetails::with_resource_info(resource_type, name, "", "already exists"),
    )
}

/// The `ErrorInfo` domain of every reason this suite gives.
pub const ERROR_DOMAIN: &str = "dispatch311";

/// FAILED_PRECONDITION: the request is valid but the system is not in a state
/// that allows it (a forbidden transition, an accountability rule). The
/// `description` is the message; `reason_type` (e.g. `INVALID_TRANSITION`) and
/// `subject` (what was checked, e.g. `jobs/42`) go in a `PreconditionFailure`,
/// and `reason_type` also in an `ErrorInfo` (domain `dispatch311`), so clients
/// branch on a stable reason, never on the message.
pub fn failed_precondition(
    reason_type: &str,
    subject: impl Into<String>,
    description: impl Into<String>,
) -> Status {
    let description = description.into();
    let subject = subject.into();
    let mut details = ErrorDetails::with_precondition_failure_violation(
        reason_type,
        subject.clone(),
        &description,
    );
    details.set_error_info(
        reason_type,
        ERROR_DOMAIN,
        std::collections::HashMap::from([("subject".to_owned(), subject)]),
    );
    Status::with_error_details(Code::FailedPrecondition, description, details)
}

/// PERMISSION_DENIED with `reason` as the message.
pub fn permission_denied(reason: impl Into<String>) -> Status {
    Status::permission_denied(reason)
}

/// UNAVAILABLE because `dependency` (e.g. `postgresql`, `redis`, `routing`)
/// failed; logs `error` and asks the client to retry after [`RETRY_DELAY`].
/// (Pass an `anyhow::Error` as `&*error`.)
pub fn unavailable(dependency: &str, error: &(impl Error + ?Sized)) -> Status {
    tracing::warn!(dependency, error = %Chain(error), "dependency unavailable");
    Status::with_error_details(
        Code::Unavailable,
        format!("{dependency} is unavailable, retry later{}", trace_suffix()),
        ErrorDetails::with_retry_info(Some(RETRY_DELAY)),
    )
}

/// A storage error as a caller needs it told: a dependency away for now, or
/// a failure of ours. Each service's store error says which ([`storage`]).
pub trait StorageFailure: Error {
    /// The dependency that could not be reached (`"postgresql"`, `"redis"`…),
    /// when that is what happened; `None` for a failure of ours.
    fn unreachable_dependency(&self) -> Option<&'static str>;
}

impl StorageFailure for sqlx::Error {
    fn unreachable_dependency(&self) -> Option<&'static str> {
        dispatch311_db::is_unavailable(self).then_some("postgresql")
    }
}

impl StorageFailure for dispatch311_queue::QueueError {
    fn unreachable_dependency(&self) -> Option<&'static str> {
        use dispatch311_queue::QueueError;
        match self {
            QueueError::Database(e) => e.unreachable_dependency(),
            QueueError::Redis(e)
                if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() =>
            {
                Some("redis")
            }
            _ => None,
        }
    }
}

/// The one mapping of a storage error to a status: UNAVAILABLE with a retry
/// delay when PostgreSQL or Redis is away (the caller tries again), INTERNAL
/// otherwise. The caller learns the dependency's name or the trace id, never
/// the error itself (it is logged with its causes).
pub fn storage(error: &impl StorageFailure) -> Status {
    match error.unreachable_dependency() {
        Some(dependency) => unavailable(dependency, error),
        None => internal(error),
    }
}

/// INTERNAL for a failure that is nobody's fault but ours; logs `error` with
/// its cause chain and tells the caller only the trace id to quote.
pub fn internal(error: &(impl Error + ?Sized)) -> Status {
    tracing::error!(error = %Chain(error), "internal error");
    Status::internal(format!("internal error{}", trace_suffix()))
}

/// An error and its sources: `outer: cause: root cause`.
struct Chain<'a, E: ?Sized>(&'a E);

impl<E: Error + ?Sized> fmt::Display for Chain<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

/// ` (trace <id>)` when the current span is in a trace, so an operator can
/// go from what the caller saw to the logs and spans of the request.
fn trace_suffix() -> String {
    propagation::trace_id_of(&tracing::Span::current())
        .map(|trace_id| format!(" (trace {trace_id})"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn every_field_violation_is_in_the_message_and_in_the_bad_request_detail() {
        let mut violations = FieldViolations::new();
        assert!(violations.clone().into_result().is_ok());
        violations.add("location.latitude", "must be between -90 and 90");
        violations.add(
            format!("photos[{}].uri", 0),
            String::from("must be an http(s) URI"),
        );
        assert_eq!(violations.len(), 2);

        let status = violations.into_result().unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "invalid request: location.latitude: must be between -90 and 90; \
             photos[0].uri: must be an http(s) URI"
        );
        let bad_request = status
            .get_details_bad_request()
            .expect("a BadRequest detail");
        let fields: Vec<_> = bad_request
            .field_violations
            .iter()
            .map(|violation| (violation.field.as_str(), violation.description.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                ("location.latitude", "must be between -90 and 90"),
                ("photos[0].uri", "must be an http(s) URI"),
            ]
        );
    }

    #[test]
    fn a_single_invalid_argument_names_its_field() {
        let status = invalid_argument("page_token", "is not a token from a previous response");
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status.get_details_bad_request().unwrap().field_violations[0].field,
            "page_token"
        );
    }

    #[test]
    fn not_found_and_already_exists_name_the_resource() {
        let status = not_found("service request", "SR-2026-0000042");
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(
            status.message(),
            "service request SR-2026-0000042 not found"
        );
        let resource = status.get_details_resource_info().unwrap();
        assert_eq!(resource.resource_type, "service request");
        assert_eq!(resource.resource_name, "SR-2026-0000042");

        let status = already_exists("unit", "PCT-14-RMP-3");
        assert_eq!(status.code(), Code::AlreadyExists);
        assert_eq!(
            status.get_details_resource_info().unwrap().resource_name,
            "PCT-14-RMP-3"
        );
    }

    #[test]
    fn failed_precondition_explains_the_rule_that_was_broken() {
        let status = failed_precondition(
            "JURISDICTION",
            "jobs/42",
            "a police-jurisdiction complaint cannot be closed as outside jurisdiction",
        );
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(
            status.message(),
            "a police-jurisdiction complaint cannot be closed as outside jurisdiction"
        );
        let violation = &status
            .get_details_precondition_failure()
            .unwrap()
            .violations[0];
        assert_eq!(violation.r#type, "JURISDICTION");
        assert_eq!(violation.subject, "jobs/42");
    }

    /// Runs `f`, returning what it logged.
    fn logged(f: impl FnOnce()) -> String {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let writer = Arc::clone(&lines);
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || Log(Arc::clone(&writer)))
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        String::from_utf8(lines.lock().unwrap().clone()).unwrap()
    }

    struct Log(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Log {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn dependency_and_internal_failures_are_logged_but_their_cause_stays_private() {
        let cause = std::io::Error::other("password authentication failed for user dispatch");
        let mut status = None;
        let log = logged(|| status = Some(unavailable("postgresql", &cause)));
        let status = status.unwrap();
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(status.message(), "postgresql is unavailable, retry later");
        assert_eq!(
            status.get_details_retry_info().unwrap().retry_delay,
            Some(RETRY_DELAY)
        );
        assert!(log.contains("password authentication failed"), "{log}");

        let cause = anyhow::anyhow!("row 17 is malformed").context("loading job 17");
        let mut status = None;
        let log = logged(|| status = Some(internal(&*cause)));
        let status = status.unwrap();
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(status.message(), "internal error");
        assert!(log.contains("loading job 17: row 17 is malformed"), "{log}");
    }

    #[test]
    fn permission_denied_says_why() {
        let status = permission_denied("only supervisors reopen jobs");
        assert_eq!(status.code(), Code::PermissionDenied);
        assert_eq!(status.message(), "only supervisors reopen jobs");
    }
}
