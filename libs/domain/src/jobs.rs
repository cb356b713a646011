//! The queues of the shared job queue and the kinds of job on them: the
//! contract between the services. Payload types are in
//! `dispatch311_proto::jobs::v1`.

/// Queue names. Each queue has one consuming service (one consumer group).
pub mod queues {
    /// intake -> routing: `RouteJob`.
    pub const ROUTE: &str = "route";
    /// routing -> dispatch: `DispatchJob`.
    pub const DISPATCH: &str = "dispatch";
    /// routing, dispatch, survey -> intake: `StatusUpdate`.
    pub const STATUS: &str = "status";
    /// dispatch -> survey: `ClosedEvent`.
    pub const CLOSED: &str = "closed";
    /// dispatch -> dispatch: `DispatchTimer`, scheduled (acknowledgement
    /// timeouts, SLA breaches); one delivery per timer across replicas.
    pub const DISPATCH_TIMERS: &str = "dispatch-timers";
    /// survey -> dispatch: `ReopenRequest`.
    pub const REOPEN: &str = "reopen";
    /// intake -> intake: `RetentionSweep`, scheduled; each sweep schedules
    /// the next.
    pub const RETENTION: &str = "retention";
    /// dispatch -> intake: `ComplainantQuestion`.
    pub const COMPLAINANT_QUESTIONS: &str = "complainant-questions";
    /// intake -> dispatch: `ComplainantAnswer`.
    pub const COMPLAINANT_ANSWERS: &str = "complainant-answers";
}

/// Job kinds (the `kind` field of the envelope).
pub mod kinds {
    pub const ROUTE: &str = "route";
    pub const DISPATCH: &str = "dispatch";
    pub const STATUS_UPDATE: &str = "status_update";
    pub const CLOSED: &str = "closed";
    pub const DISPATCH_TIMER: &str = "dispatch_timer";
    pub const REOPEN: &str = "reopen";
    pub const RETENTION_SWEEP: &str = "retention_sweep";
    pub const COMPLAINANT_QUESTION: &str = "complainant_question";
    pub const COMPLAINANT_ANSWER: &str = "complainant_answer";
}

/// Consumer group names: one per consuming service.
pub mod groups {
    pub const INTAKE: &str = "intake";
    pub const ROUTING: &str = "routing";
    pub const DISPATCH: &str = "dispatch";
    pub const SURVEY: &str = "survey";
}

/// A status update's transition key in a request's dispatch epoch: keys
/// repeat from one job to the next (a report unlinked into a job of its
/// own), and intake keeps one timeline entry per key.
pub fn epoch_key(key: &str, epoch: i32) -> String {
    if epoch == 0 {
        key.to_owned()
    } else {
        format!("{key}@{epoch}")
    }
}
