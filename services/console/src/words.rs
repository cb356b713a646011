//! Codes in the words a precinct uses: job states, priorities, flags, and
//! the services' refusals (a gRPC status becomes a sentence and what to do,
//! never a code on the screen).

use dispatch311_proto::common::v1::{Priority, ResolutionCode};
use dispatch311_proto::dispatch::v1::{EventType, FlagKind, JobState, UnitStatus};
use tonic::{Code, Status};
use tonic_types::StatusExt as _;

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

pub fn unit_status(status: i32) -> &'static str {
    match UnitStatus::try_from(status).unwrap_or(UnitStatus::Unspecified) {
        UnitStatus::Available => "Available",
        UnitStatus::Assigned => "Assigned",
        UnitStatus::EnRoute => "En route",
        UnitStatus::OnScene => "On scene",
        UnitStatus::BusyEmergency => "On a 911 job (never offered for 311 work)",
        UnitStatus::OutOfService => "Out of service",
        UnitStatus::Unspecified => "Unknown",
    }
}

pub fn event(kind: i32) -> &'static str {
    match EventType::try_from(kind).unwrap_or(EventType::Unspecified) {
        EventType::Queued => "Queued in the precinct",
        EventType::Assigned => "Assigned",
        EventType::Reassigned => "Reassigned",
        EventType::Acknowledged => "Acknowledged",
        EventType::EnRoute => "En route",
        EventType::OnScene => "On scene",
        EventType::EvidenceViewed => "Photo opened",
        EventType::Closed => "Closed",
        EventType::Cancelled => "Cancelled",
        EventType::Reopened => "Reopened",
        EventType::AckTimeout => "Not acknowledged in time",
        EventType::SlaBreached => "SLA breached",
        EventType::Flagged => "Flagged",
        EventType::RerouteApproved => "Re-route approved",
        EventType::MessageToComplainant => "Question to the complainant",
        EventType::ComplainantAnswered => "The complainant answered",
        EventType::DuplicateLinked => "Another report linked",
        EventType::DuplicateUnlinked => "A linked report taken out",
        EventType::Unspecified => "Event",
    }
}

/// The city's resolution codes, as the close form offers them (the code's
/// name as the value, the city's published words as the label).
pub const RESOLUTIONS: [(ResolutionCode, &str); 9] = [
    (
        ResolutionCode::ActionTaken,
        "Responded and took action to fix the condition",
    ),
    (ResolutionCode::SummonsIssued, "Issued a summons"),
    (
        ResolutionCode::NoEvidence,
        "Observed no evidence of the violation at that time",
    ),
    (
        ResolutionCode::PoliceActionNotNecessary,
        "Determined that police action was not necessary",
    ),
    (
        ResolutionCode::UnableToGainEntry,
        "Unable to gain entry to the premises",
    ),
    (
        ResolutionCode::ConditionGoneOnArrival,
        "Upon arrival those responsible for the condition were gone",
    ),
    (
        ResolutionCode::Duplicate,
        "A duplicate of a previous service request",
    ),
    (
        ResolutionCode::Referred,
        "Referred the complaint to another agency",
    ),
    (
        ResolutionCode::OutsideJurisdiction,
        "Does not fall under the Police Department's jurisdiction",
    ),
];

pub fn resolution(code: i32) -> &'static str {
    RESOLUTIONS
        .iter()
        .find(|(known, _)| *known as i32 == code)
        .map_or("", |(_, words)| words)
}

/// What to do about a rule's refusal (the `ErrorInfo` reason dispatch
/// sends), beside the service's own sentence saying what was refused.
fn what_to_do(reason: &str) -> Option<&'static str> {
    Some(match reason {
        "EVIDENCE_NOT_VIEWED" => "Open the photos below, then close the job.",
        "NO_ARRIVAL_ON_SCENE" => {
            "Go to the place and tap \"On scene\" there, or choose what you did instead."
        }
        "ARRIVAL_NOT_NEAR_SCENE" => {
            "Report on scene again from the place itself, or choose what you did instead."
        }
        "SUMMONS_NUMBER_REQUIRED" => "Type the summons number and close again.",
        "DUPLICATE_NOT_LINKED" | "DUPLICATE_NOT_SAME_INCIDENT" => {
            "Give the SR number of the earlier request of the same complaint at the same place."
        }
        "RESOLUTION_REQUIRED" => "Choose what you did.",
        "UNIT_ON_EMERGENCY" | "UNIT_OUT_OF_SERVICE" | "UNIT_BUSY" => {
            "Choose another unit from the recommended ones."
        }
        "UNIT_OF_ANOTHER_PRECINCT" => "Choose a unit of this precinct.",
        "INVALID_TRANSITION" => "Reload the page to see where the job is now.",
        reason if reason.starts_with("POLICE_MATTER_") => "Choose what officers did at the scene.",
        _ => return None,
    })
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
        Code::FailedPrecondition => {
            let advice = status
                .get_details_error_info()
                .and_then(|info| what_to_do(&info.reason));
            let mut sentence = capitalised(message);
            if !sentence.ends_with('.') {
                sentence.push('.');
            }
            match advice {
                Some(advice) => format!("{sentence} {advice}"),
                None => sentence,
            }
        }
        Code::InvalidArgument => capitalised(message),
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

/// A sentence starts with a capital (the services' messages start lower case).
fn capitalised(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
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
        let refused = dispatch311_grpc::status::failed_precondition(
            "EVIDENCE_NOT_VIEWED",
            "job 1",
            "the complainant attached a photo: open the photos first, then close the job",
        );
        assert_eq!(
            status(&refused),
            "The complainant attached a photo: open the photos first, then close the job. \
             Open the photos below, then close the job."
        );
        let unknown = Status::failed_precondition("a rule said no");
        assert_eq!(status(&unknown), "A rule said no.");
        assert!(status(&Status::unavailable("x")).contains("tries again"));
        assert!(status(&Status::unauthenticated("expired")).contains("sign in again"));
    }
}
