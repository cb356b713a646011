//! Codes in the words a precinct uses: job states, priorities, flags, and
//! the services' refusals (a gRPC status becomes a sentence and what to do,
//! never a code on the screen).

use dispatch311_proto::common::v1::Priority;
use dispatch311_proto::dispatch::v1::{FlagKind, JobState};
use tonic::{Code, Status};

pub fn state(state: i32) -> &'static str {
    match JobState::try_from(state).unwrap_or(JobState::Unspecified) {
        JobState::Queued => "Waiting",
        JobState::Assigned => "Assigned",
        JobState::Acknowledged => "Acknowledged",
        JobState::EnRoute => "En route",
        JobState::OnScene => "On scene",
        JobState::Closed => "Closed",
        JobState::Cancelled => "Cancelled",
        JobState::Rerouted => "Re-routed",
        JobState::Unspecified => "Unknown",
    }
}

pub fn priority(priority: i32) -> &'static str {
    match Priority::try_from(priority).unwrap_or(Priority::Unspecified) {
        Priority::Urgent => "Urgent",
        Priority::High => "High",
        Priority::Normal => "Normal",
        Priority::Low => "Low",
        Priority::Unspecified => "—",
    }
}

pub fn flag(kind: i32) -> &'static str {
    match FlagKind::try_from(kind).unwrap_or(FlagKind::Unspecified) {
        FlagKind::FastClosure => "Closed fast",
        FlagKind::ShortOnScene => "Short on scene",
        FlagKind::ClosedFarFromScene => "Closed far from the scene",
        FlagKind::ClosureBurst => "Burst of closures",
        FlagKind::SlaBreach => "Overdue",
        FlagKind::AckTimeout => "Not acknowledged in time",
        FlagKind::ReopenedByComplainant => "Reopened by the complainant",
        _ => "Flagged",
    }
}

/// "4 min", "1 h 05 min", "2 d 3 h": how long, for a glance.
pub fn duration(seconds: i64) -> String {
    let seconds = seconds.max(0);
    let (days, hours, minutes) = (seconds / 86_400, seconds / 3_600 % 24, seconds / 60 % 60);
    if days > 0 {
        format!("{days} d {hours} h")
    } else if hours > 0 {
        format!("{hours} h {minutes:02} min")
    } else if minutes > 0 {
        format!("{minutes} min")
    } else {
        format!("{seconds} s")
    }
}

/// A refusal or failure from a service, for a person: what happened and
/// what to do. The services' messages are already plain sentences; the
/// code decides the framing.
pub fn status(status: &Status) -> String {
    let message = status.message();
    match status.code() {
        Code::FailedPrecondition | Code::InvalidArgument => message.to_string(),
        Code::PermissionDenied => format!("Not allowed: {message}"),
        Code::NotFound => format!("Not found: {message}"),
        Code::Unauthenticated => "Your sign-in has ended: sign in again.".to_string(),
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
            "The dispatch service is not answering right now; this page tries again by itself."
                .to_string()
        }
        Code::Aborted => format!("{message} (someone else changed it at the same moment)"),
        _ => format!("Something went wrong on our side; tell the help desk this trace: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration(42), "42 s");
        assert_eq!(duration(4 * 60 + 5), "4 min");
        assert_eq!(duration(3_600 + 5 * 60), "1 h 05 min");
        assert_eq!(duration(2 * 86_400 + 3 * 3_600), "2 d 3 h");
        assert_eq!(duration(-5), "0 s");
    }

    #[test]
    fn a_refusal_keeps_the_services_sentence_and_a_failure_says_what_to_do() {
        let refused = Status::failed_precondition(
            "the complainant attached a photo: open the photos first, then close the job",
        );
        assert_eq!(
            status(&refused),
            "the complainant attached a photo: open the photos first, then close the job"
        );
        assert!(status(&Status::unavailable("x")).contains("tries again"));
        assert!(status(&Status::unauthenticated("expired")).contains("sign in again"));
    }
}
