//! Short, stable names for the status enums, as stored in the databases and
//! shown in public timelines (`ROUTED` rather than
//! `SERVICE_REQUEST_STATUS_ROUTED`).

use dispatch311_proto::common::v1::{Channel, Priority, ResolutionCode, ServiceRequestStatus};

pub fn status_name(status: ServiceRequestStatus) -> &'static str {
    strip(status.as_str_name(), "SERVICE_REQUEST_STATUS_")
}

pub fn status_from_name(name: &str) -> Option<ServiceRequestStatus> {
    ServiceRequestStatus::from_str_name(&format!("SERVICE_REQUEST_STATUS_{name}"))
        .filter(|s| *s != ServiceRequestStatus::Unspecified)
}

pub fn priority_name(priority: Priority) -> &'static str {
    strip(priority.as_str_name(), "PRIORITY_")
}

pub fn priority_from_name(name: &str) -> Option<Priority> {
    Priority::from_str_name(&format!("PRIORITY_{name}")).filter(|p| *p != Priority::Unspecified)
}

pub fn channel_name(channel: Channel) -> &'static str {
    strip(channel.as_str_name(), "CHANNEL_")
}

/// `Unspecified` for names that are not a channel.
pub fn channel_from_name(name: &str) -> Channel {
    Channel::from_str_name(&format!("CHANNEL_{name}")).unwrap_or_default()
}

pub fn resolution_name(code: ResolutionCode) -> &'static str {
    strip(code.as_str_name(), "RESOLUTION_CODE_")
}

/// `None` for an empty name (not resolved yet) or an unknown one.
pub fn resolution_from_name(name: &str) -> Option<ResolutionCode> {
    ResolutionCode::from_str_name(&format!("RESOLUTION_CODE_{name}"))
        .filter(|c| *c != ResolutionCode::Unspecified)
}

fn strip(full: &'static str, prefix: &str) -> &'static str {
    full.strip_prefix(prefix).unwrap_or(full)
}

/// Where a public status sits in the main lifecycle; a status update whose
/// rank is lower than the current one arrived out of order and must not move
/// the request backwards. Side paths rank like the step they end.
pub fn lifecycle_rank(status: ServiceRequestStatus) -> u8 {
    use ServiceRequestStatus as S;
    match status {
        S::Unspecified => 0,
        S::Received => 1,
        S::Routed | S::NeedsTriage => 2,
        S::Queued => 3,
        S::Assigned => 4,
        S::Acknowledged => 5,
        S::EnRoute => 6,
        S::OnScene => 7,
        S::Closed | S::Referred | S::Duplicate | S::Cancelled => 8,
        S::Surveyed => 9,
        // a reopened request starts over from the queue; the transition key
        // of each update keeps it from being applied twice
        S::Reopened => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for status in [
            ServiceRequestStatus::Received,
            ServiceRequestStatus::NeedsTriage,
            ServiceRequestStatus::Referred,
        ] {
            assert_eq!(status_from_name(status_name(status)), Some(status));
        }
        assert_eq!(status_name(ServiceRequestStatus::EnRoute), "EN_ROUTE");
        assert_eq!(status_from_name("UNSPECIFIED"), None);
        assert_eq!(priority_name(Priority::High), "HIGH");
        assert_eq!(priority_from_name("HIGH"), Some(Priority::High));
    }

    #[test]
    fn the_main_lifecycle_only_moves_forward() {
        use ServiceRequestStatus as S;
        let path = [
            S::Received,
            S::Routed,
            S::Queued,
            S::Assigned,
            S::Acknowledged,
            S::EnRoute,
            S::OnScene,
            S::Closed,
            S::Surveyed,
        ];
        assert!(
            path.windows(2)
                .all(|w| lifecycle_rank(w[0]) < lifecycle_rank(w[1]))
        );
    }
}
