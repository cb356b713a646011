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
}

/// Job kinds (the `kind` field of the envelope).
pub mod kinds {
    pub const ROUTE: &str = "route";
    pub const DISPATCH: &str = "dispatch";
    pub const STATUS_UPDATE: &str = "status_update";
}

/// Consumer group names: one per consuming service.
pub mod groups {
    pub const INTAKE: &str = "intake";
    pub const ROUTING: &str = "routing";
    pub const DISPATCH: &str = "dispatch";
    pub const SURVEY: &str = "survey";
}
