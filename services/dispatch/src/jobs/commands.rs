//! What each job transition is asked to do, once the API has checked the
//! request (fields, ranges, the caller's role).

use dispatch311_proto::{common::v1::ResolutionCode, dispatch::v1 as dispatch};
use uuid::Uuid;

use crate::{jobs::lifecycle::Step, store::events::ActorRef};

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
