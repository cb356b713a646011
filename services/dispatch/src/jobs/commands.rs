//! What each job transition is asked to do, once the API has checked the
//! request (fields, ranges, the caller's role).

use dispatch311_proto::{
    common::v1::{ResolutionCode, ServiceRequestStatus},
    dispatch::v1::{self as dispatch, EventType, JobState},
};
use uuid::Uuid;

use crate::{jobs::state_machine::Transition, store::events::ActorRef};

/// Give the job to a unit (a reassignment when it has one: `reason` required).
pub struct Assign {
    pub actor: ActorRef,
    pub job_id: Uuid,
    pub unit_id: Uuid,
    pub reason: String,
}

/// The assigned unit acknowledges, goes en route or arrives (`position`
/// required on arrival).
pub struct Advance {
    pub step: Step,
    pub actor: ActorRef,
    pub job_id: Uuid,
    pub position: Option<(f64, f64)>,
}

/// The crew or a supervisor opens photo `photo_index` of the job.
pub struct ViewPhoto {
    pub actor: ActorRef,
    pub job_id: Uuid,
    pub photo_index: u32,
}

/// A photo as fetched for its viewer, with the job as the view left it.
pub struct JobPhoto {
    pub content: Vec<u8>,
    pub content_type: &'static str,
    pub job: dispatch::Job,
}

/// A question from the crew to the complainant (already free of contact details).
pub struct AskComplainant {
    pub actor: ActorRef,
    pub job_id: Uuid,
    pub text: String,
}

/// Close the job with an outcome; the accountability rules decide.
pub struct Close {
    pub actor: ActorRef,
    pub job_id: Uuid,
    pub code: ResolutionCode,
    pub summons_number: String,
    pub notes: String,
    pub position: Option<(f64, f64)>,
    /// The SR number of the request this one duplicates.
    pub duplicate_of: Option<String>,
}

pub struct Cancel {
    pub actor: ActorRef,
    pub job_id: Uuid,
    pub reason: String,
}

/// A supervisor hands the job to another agency.
pub struct Reroute {
    pub actor: ActorRef,
    pub job_id: Uuid,
    pub agency: String,
    pub reason: String,
}

/// The three steps of a unit on its way: each one state further.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Acknowledge,
    EnRoute,
    OnScene,
}

impl Step {
    pub fn transition(self) -> Transition {
        match self {
            Self::Acknowledge => Transition::Acknowledge,
            Self::EnRoute => Transition::EnRoute,
            Self::OnScene => Transition::OnScene,
        }
    }

    pub fn state(self) -> JobState {
        match self {
            Self::Acknowledge => JobState::Acknowledged,
            Self::EnRoute => JobState::EnRoute,
            Self::OnScene => JobState::OnScene,
        }
    }

    pub fn event(self) -> EventType {
        match self {
            Self::Acknowledge => EventType::Acknowledged,
            Self::EnRoute => EventType::EnRoute,
            Self::OnScene => EventType::OnScene,
        }
    }

    pub fn public_status(self) -> ServiceRequestStatus {
        match self {
            Self::Acknowledge => ServiceRequestStatus::Acknowledged,
            Self::EnRoute => ServiceRequestStatus::EnRoute,
            Self::OnScene => ServiceRequestStatus::OnScene,
        }
    }

    pub fn public_message(self) -> &'static str {
        match self {
            Self::Acknowledge => "the assigned unit acknowledged the job",
            Self::EnRoute => "a unit is on its way",
            Self::OnScene => "a unit arrived at the location",
        }
    }

    /// The transition-key word, e.g. `dispatch:en_route:2`.
    pub fn key(self) -> &'static str {
        match self {
            Self::Acknowledge => "acknowledged",
            Self::EnRoute => "en_route",
            Self::OnScene => "on_scene",
        }
    }
}
