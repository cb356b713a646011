//! Which transition a job may take from which state, in one table. Every
//! change to a job is checked here, under the job's row lock, before anything
//! is written; a refusal changes nothing.

use dispatch311_proto::dispatch::v1::{JobState, UnitStatus};

/// Something a job can go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Assign,
    /// Another unit takes an assigned job (with a reason).
    Reassign,
    Acknowledge,
    EnRoute,
    OnScene,
    /// An officer opened the request's photos; the state does not change.
    ViewEvidence,
    Close,
    Cancel,
    Reopen,
    /// A supervisor hands the job to another agency.
    Reroute,
    /// The job goes back to the queue because its unit was taken away
    /// (a 911 emergency, out of service, an acknowledgement timeout).
    Requeue,
}

use JobState as S;

/// Every state a job is still open in: it can be cancelled or re-routed.
const OPEN: &[JobState] = &[
    S::Queued,
    S::Assigned,
    S::Acknowledged,
    S::EnRoute,
    S::OnScene,
];

impl Transition {
    /// The states this transition may start from.
    pub fn allowed_from(self) -> &'static [JobState] {
        match self {
            Self::Assign => &[S::Queued],
            // a unit on scene finishes the job it is at
            Self::Reassign => &[S::Assigned, S::Acknowledged, S::EnRoute],
            Self::Acknowledge => &[S::Assigned],
            Self::EnRoute => &[S::Acknowledged],
            // a unit close by may report arrival without going en route first
            Self::OnScene => &[S::Acknowledged, S::EnRoute],
            // which outcomes need ON_SCENE is an accountability rule, not a state
            Self::Close => &[S::Acknowledged, S::EnRoute, S::OnScene],
            Self::ViewEvidence | Self::Cancel | Self::Reroute => OPEN,
            Self::Reopen => &[S::Closed],
            Self::Requeue => &[S::Assigned, S::Acknowledged, S::EnRoute, S::OnScene],
        }
    }

    pub fn verb(self) -> &'static str {
        match self {
            Self::Assign => "assign",
            Self::Reassign => "reassign",
            Self::Acknowledge => "acknowledge",
            Self::EnRoute => "report en route",
            Self::OnScene => "report on scene",
            Self::ViewEvidence => "record viewed evidence for",
            Self::Close => "close",
            Self::Cancel => "cancel",
            Self::Reopen => "reopen",
            Self::Reroute => "re-route",
            Self::Requeue => "re-queue",
        }
    }

    /// `Ok` when a job in `state` may take this transition.
    pub fn check(self, state: JobState) -> Result<(), Refusal> {
        let allowed = self.allowed_from();
        if allowed.contains(&state) {
            return Ok(());
        }
        let names: Vec<&str> = allowed.iter().map(|s| state_words(*s)).collect();
        let list = match names.split_last() {
            Some((last, [])) => (*last).to_string(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        };
        Err(Refusal::new(
            "INVALID_TRANSITION",
            format!(
                "cannot {} a job that is {}; only a job that is {list}",
                self.verb(),
                state_words(state)
            ),
        ))
    }
}

/// Whether a job in `state` is still being worked (not closed, cancelled or re-routed).
pub fn is_open(state: JobState) -> bool {
    OPEN.contains(&state)
}

/// The status a unit shows while its job is in `state`; `None` when the job
/// no longer holds a unit.
pub fn unit_status_for(state: JobState) -> Option<UnitStatus> {
    match state {
        S::Assigned | S::Acknowledged => Some(UnitStatus::Assigned),
        S::EnRoute => Some(UnitStatus::EnRoute),
        S::OnScene => Some(UnitStatus::OnScene),
        _ => None,
    }
}

/// What a unit becomes when its job is taken from it or finished: available
/// again, unless it went to a 911 emergency or out of service meanwhile.
pub fn unit_status_after_release(current: UnitStatus) -> UnitStatus {
    match current {
        UnitStatus::BusyEmergency | UnitStatus::OutOfService => current,
        _ => UnitStatus::Available,
    }
}

/// `on scene` for `ON_SCENE`: state names as a person reads them.
pub fn state_words(state: JobState) -> &'static str {
    match state {
        S::Unspecified => "unknown",
        S::Queued => "queued",
        S::Assigned => "assigned",
        S::Acknowledged => "acknowledged",
        S::EnRoute => "en route",
        S::OnScene => "on scene",
        S::Closed => "closed",
        S::Cancelled => "cancelled",
        S::Rerouted => "re-routed",
    }
}

/// Why a change was refused: the rule (a stable `PreconditionFailure` type
/// such as `INVALID_TRANSITION`) and what a person should know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub rule: &'static str,
    pub description: String,
}

impl Refusal {
    pub fn new(rule: &'static str, description: impl Into<String>) -> Self {
        Self {
            rule,
            description: description.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::jobs::JobError;

    const ALL: [JobState; 8] = [
        S::Queued,
        S::Assigned,
        S::Acknowledged,
        S::EnRoute,
        S::OnScene,
        S::Closed,
        S::Cancelled,
        S::Rerouted,
    ];

    fn allowed(t: Transition) -> Vec<JobState> {
        ALL.into_iter().filter(|s| t.check(*s).is_ok()).collect()
    }

    #[test]
    fn the_main_path_goes_one_step_at_a_time() {
        assert_eq!(allowed(Transition::Assign), [S::Queued]);
        assert_eq!(allowed(Transition::Acknowledge), [S::Assigned]);
        assert_eq!(allowed(Transition::EnRoute), [S::Acknowledged]);
        assert_eq!(allowed(Transition::OnScene), [S::Acknowledged, S::EnRoute]);
        assert_eq!(
            allowed(Transition::Close),
            [S::Acknowledged, S::EnRoute, S::OnScene]
        );
    }

    #[test]
    fn a_unit_on_scene_is_not_replaced_and_finished_jobs_stay_finished() {
        assert_eq!(
            allowed(Transition::Reassign),
            [S::Assigned, S::Acknowledged, S::EnRoute]
        );
        for t in [
            Transition::Assign,
            Transition::Acknowledge,
            Transition::Close,
            Transition::Cancel,
            Transition::Reroute,
            Transition::ViewEvidence,
        ] {
            for finished in [S::Closed, S::Cancelled, S::Rerouted] {
                assert!(t.check(finished).is_err(), "{t:?} from {finished:?}");
            }
        }
        assert_eq!(allowed(Transition::Reopen), [S::Closed]);
    }

    #[test]
    fn open_jobs_can_be_cancelled_rerouted_and_their_photos_viewed() {
        let open = [
            S::Queued,
            S::Assigned,
            S::Acknowledged,
            S::EnRoute,
            S::OnScene,
        ];
        assert_eq!(allowed(Transition::Cancel), open);
        assert_eq!(allowed(Transition::Reroute), open);
        assert_eq!(allowed(Transition::ViewEvidence), open);
        assert!(open.iter().all(|s| is_open(*s)));
        assert!(!is_open(S::Closed) && !is_open(S::Rerouted));
    }

    #[test]
    fn only_a_job_holding_a_unit_is_requeued() {
        assert_eq!(
            allowed(Transition::Requeue),
            [S::Assigned, S::Acknowledged, S::EnRoute, S::OnScene]
        );
    }

    #[test]
    fn a_refusal_says_what_was_tried_and_what_is_needed() {
        let refusal = Transition::Close.check(S::Assigned).unwrap_err();
        assert_eq!(refusal.rule, "INVALID_TRANSITION");
        assert_eq!(
            refusal.description,
            "cannot close a job that is assigned; only a job that is acknowledged, en route or on scene"
        );
        let refusal = Transition::Reopen.check(S::Queued).unwrap_err();
        assert_eq!(
            refusal.description,
            "cannot reopen a job that is queued; only a job that is closed"
        );
        let refused = refusal.for_job(Uuid::nil());
        assert!(
            matches!(&refused, JobError::Refused { subject, .. } if subject == &format!("jobs/{}", Uuid::nil()))
        );
    }

    #[test]
    fn units_follow_their_job_and_911_work_is_kept_on_release() {
        assert_eq!(unit_status_for(S::Acknowledged), Some(UnitStatus::Assigned));
        assert_eq!(unit_status_for(S::EnRoute), Some(UnitStatus::EnRoute));
        assert_eq!(unit_status_for(S::OnScene), Some(UnitStatus::OnScene));
        assert_eq!(unit_status_for(S::Closed), None);
        assert_eq!(
            unit_status_after_release(UnitStatus::OnScene),
            UnitStatus::Available
        );
        assert_eq!(
            unit_status_after_release(UnitStatus::BusyEmergency),
            UnitStatus::BusyEmergency
        );
        assert_eq!(
            unit_status_after_release(UnitStatus::OutOfService),
            UnitStatus::OutOfService
        );
    }
}
