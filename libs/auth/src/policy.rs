//! The one policy table: which role may call which RPC, and which view of the
//! data it gets. [`crate::AuthLayer`] enforces the roles before a handler
//! runs; handlers read the [`View`] from the [`crate::Caller`] to narrow what
//! they return. A method missing from the table is refused to everyone.
//!
//! Finer rules stay with the domain (an officer acts only on their own
//! unit's job; a supervisor's reroute needs a reason); this table is the
//! outer wall. ARCHITECTURE.md shows it as a matrix.

use crate::Role::{self, *};

/// How much of the data a role sees through one RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Everything the RPC returns (which never includes contact details,
    /// except the release RPC itself).
    Full,
    /// Only the service requests this caller filed (integrators).
    OwnRequests,
    /// One request by its SR number, without location, address or trace id.
    Public,
}

/// One role's access to one RPC.
#[derive(Debug, Clone, Copy)]
pub struct Grant {
    pub role: Role,
    pub view: View,
}

/// The roles that may call one RPC.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// The full gRPC service name, e.g. `dispatch311.intake.v1.IntakeService`.
    pub service: &'static str,
    /// The method, e.g. `CreateServiceRequest`.
    pub method: &'static str,
    pub grants: &'static [Grant],
}

impl Rule {
    /// Whether this rule is for the gRPC path `/service/Method`.
    pub fn is_for(&self, path: &str) -> bool {
        path.strip_prefix('/')
            .and_then(|rest| rest.strip_prefix(self.service))
            .and_then(|rest| rest.strip_prefix('/'))
            == Some(self.method)
    }

    /// The view `role` gets, or `None` when the role may not call it.
    pub fn view_for(&self, role: Role) -> Option<View> {
        self.grants
            .iter()
            .find(|grant| grant.role == role)
            .map(|grant| grant.view)
    }
}

const fn full(role: Role) -> Grant {
    Grant {
        role,
        view: View::Full,
    }
}

const OWN_REQUESTS: Grant = Grant {
    role: Integrator,
    view: View::OwnRequests,
};
const BY_SR_NUMBER: Grant = Grant {
    role: Public,
    view: View::Public,
};

/// Reads of dispatch's jobs and units: the people who work them and oversight.
const DISPATCH_READ: &[Grant] = &[
    full(Dispatcher),
    full(Officer),
    full(Supervisor),
    full(Auditor),
    full(Admin),
];
/// Reading the routing rules and dry-running a route.
const ROUTING_READ: &[Grant] = &[
    full(Integrator),
    full(Dispatcher),
    full(Supervisor),
    full(Auditor),
    full(Admin),
];
/// A routing decision of a filed request (staff and oversight).
const ROUTING_DECISION: &[Grant] = &[
    full(Dispatcher),
    full(Supervisor),
    full(Auditor),
    full(Admin),
];
/// What a unit reports about its own job (a supervisor may act for it).
const UNIT_REPORT: &[Grant] = &[full(Officer), full(Supervisor)];
/// A unit's status and position: its device, or the dispatcher by radio.
const UNIT_STATUS: &[Grant] = &[full(Officer), full(Dispatcher), full(Supervisor)];
const DISPATCHING: &[Grant] = &[full(Dispatcher), full(Supervisor)];
const SUPERVISOR_ONLY: &[Grant] = &[full(Supervisor)];
const OVERSIGHT: &[Grant] = &[full(Supervisor), full(Auditor), full(Admin)];
const SURVEY_SYSTEM: &[Grant] = &[full(SurveySystem)];

pub const INTAKE: &str = "dispatch311.intake.v1.IntakeService";
pub const ROUTING: &str = "dispatch311.routing.v1.RoutingService";
pub const DISPATCH: &str = "dispatch311.dispatch.v1.DispatchService";
pub const SURVEY: &str = "dispatch311.survey.v1.SurveyService";

macro_rules! rules {
    ($($service:ident $method:literal => $grants:expr;)*) => {
        &[$(Rule { service: $service, method: $method, grants: $grants },)*]
    };
}

/// Every RPC of the four services, with who may call it and what they see.
pub const POLICY: &[Rule] = rules! {
    INTAKE "CreateServiceRequest" => &[OWN_REQUESTS];
    INTAKE "GetServiceRequest" => &[
        OWN_REQUESTS,
        BY_SR_NUMBER,
        full(Dispatcher),
        full(Officer),
        full(Supervisor),
        full(SurveySystem),
        full(Auditor),
        full(Admin),
    ];
    INTAKE "ListServiceRequests" => &[OWN_REQUESTS, full(Supervisor), full(Auditor), full(Admin)];
    // a public view by design (no location, address, contact or free text)
    INTAKE "ListNearbyOpenRequests" => &[
        full(Integrator),
        full(Public),
        full(Dispatcher),
        full(Officer),
        full(Supervisor),
        full(Auditor),
        full(Admin),
    ];
    // the only RPC that returns contact details, recorded: the survey path,
    // and the complainant's own access through the app that filed it
    INTAKE "ReleaseComplainantContact" => &[full(SurveySystem), OWN_REQUESTS];
    INTAKE "ListContactReleases" => &[full(Auditor), full(Admin)];
    INTAKE "ListRetentionDeletions" => &[full(Auditor), full(Admin)];
    INTAKE "UploadPhoto" => &[OWN_REQUESTS];
    // the complainant's side of a responder's question, through the app that filed it
    INTAKE "ListComplainantMessages" => &[OWN_REQUESTS];
    INTAKE "AnswerComplainantMessage" => &[OWN_REQUESTS];

    ROUTING "ExplainRoute" => ROUTING_READ;
    ROUTING "ListRoutingRules" => ROUTING_READ;
    ROUTING "GetRoutingDecision" => ROUTING_DECISION;

    DISPATCH "ListQueue" => DISPATCH_READ;
    DISPATCH "GetJob" => DISPATCH_READ;
    DISPATCH "ListJobs" => DISPATCH_READ;
    DISPATCH "GetJobTimeline" => DISPATCH_READ;
    DISPATCH "VerifyJobTimeline" => OVERSIGHT;
    DISPATCH "ListEventLog" => &[full(Auditor), full(Admin)];
    DISPATCH "RegisterUnit" => DISPATCHING;
    DISPATCH "ReportUnitStatus" => UNIT_STATUS;
    DISPATCH "ListUnits" => DISPATCH_READ;
    DISPATCH "RecommendUnits" => DISPATCHING;
    DISPATCH "SetAutoAssign" => SUPERVISOR_ONLY;
    DISPATCH "AssignJob" => DISPATCHING;
    DISPATCH "AcknowledgeJob" => UNIT_REPORT;
    DISPATCH "ReportEnRoute" => UNIT_REPORT;
    DISPATCH "ReportOnScene" => UNIT_REPORT;
    DISPATCH "RecordEvidenceViewed" => UNIT_REPORT;
    // the photo itself, each view recorded
    DISPATCH "GetJobPhoto" => UNIT_REPORT;
    DISPATCH "RelayMessageToComplainant" => UNIT_REPORT;
    DISPATCH "CloseJob" => UNIT_REPORT;
    DISPATCH "CancelJob" => DISPATCHING;
    DISPATCH "ReopenJob" => SUPERVISOR_ONLY;
    DISPATCH "ApproveReroute" => SUPERVISOR_ONLY;
    DISPATCH "UnlinkReport" => SUPERVISOR_ONLY;
    DISPATCH "WatchAssignments" => &[full(Officer), full(Dispatcher), full(Supervisor)];
    DISPATCH "ListReviewItems" => &[full(Supervisor), full(Auditor)];
    DISPATCH "GetPrecinctStats" => OVERSIGHT;
    // the SREs operating the suite, and supervisors watching their precinct's pace
    DISPATCH "ListSlowJobs" => &[full(Supervisor), full(Admin), full(Auditor)];
    // where complaints keep coming from, for the precinct's commanders and oversight
    DISPATCH "ListRepeatLocations" => OVERSIGHT;

    SURVEY "ListClosedRequests" => SURVEY_SYSTEM;
    SURVEY "GetSurveyContact" => SURVEY_SYSTEM;
    SURVEY "SubmitSurveyResponse" => SURVEY_SYSTEM;
    SURVEY "GetSatisfactionStats" => &[full(SurveySystem), full(Supervisor), full(Auditor), full(Admin)];
    SURVEY "ExportSurveyResults" => &[full(SurveySystem), full(Auditor), full(Admin)];
};

/// Services anyone may call without a token: health probes and reflection
/// (the API's shape is public; its data is not).
pub const OPEN_SERVICES: &[&str] = &[
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// Whether `path` belongs to one of the [`OPEN_SERVICES`].
pub fn is_open(path: &str) -> bool {
    OPEN_SERVICES.iter().any(|service| {
        path.strip_prefix('/')
            .and_then(|rest| rest.strip_prefix(service))
            .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// The rule of a gRPC path, if the table has one.
pub fn rule_for(path: &str) -> Option<&'static Rule> {
    POLICY.iter().find(|rule| rule.is_for(path))
}

/// The table as the markdown matrix ARCHITECTURE.md shows: an RPC a row, a
/// role a column; `✓` full view, `own` the caller's own requests, `status`
/// the public view.
pub fn markdown_matrix() -> String {
    let mut text = String::from("| RPC |");
    for role in Role::ALL {
        text.push_str(&format!(" {role} |"));
    }
    text.push_str("\n|---|");
    text.push_str(&":-:|".repeat(Role::ALL.len()));
    text.push('\n');
    for rule in POLICY {
        let service = rule.service.rsplit('.').next().unwrap_or(rule.service);
        text.push_str(&format!("| {service}.{} |", rule.method));
        for role in Role::ALL {
            let cell = match rule.view_for(role) {
                None => "",
                Some(View::Full) => "✓",
                Some(View::OwnRequests) => "own",
                Some(View::Public) => "status",
            };
            text.push_str(&format!(" {cell} |"));
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_architecture_page_shows_this_table() {
        let page = include_str!("../../../ARCHITECTURE.md");
        let table = markdown_matrix();
        assert!(
            page.contains(&table),
            "ARCHITECTURE.md must show the policy table as it is; paste this in:\n{table}"
        );
    }

    #[test]
    fn paths_match_their_rule_only() {
        let rule = rule_for("/dispatch311.intake.v1.IntakeService/CreateServiceRequest").unwrap();
        assert_eq!(rule.view_for(Integrator), Some(View::OwnRequests));
        assert_eq!(rule.view_for(Officer), None);
        assert!(rule_for("/dispatch311.intake.v1.IntakeService/CreateServiceRequestX").is_none());
        assert!(rule_for("/dispatch311.intake.v1.IntakeServiceX/CreateServiceRequest").is_none());
        assert!(is_open("/grpc.health.v1.Health/Check"));
        assert!(!is_open("/grpc.health.v1.HealthX/Check"));
    }

    #[test]
    fn contact_details_reach_the_survey_system_and_the_filing_integrator_only() {
        let release =
            rule_for("/dispatch311.intake.v1.IntakeService/ReleaseComplainantContact").unwrap();
        let allowed: Vec<Role> = Role::ALL
            .into_iter()
            .filter(|role| release.view_for(*role).is_some())
            .collect();
        assert_eq!(allowed, [Integrator, SurveySystem]);
        assert_eq!(release.view_for(Integrator), Some(View::OwnRequests));
    }

    #[test]
    fn each_method_has_one_rule() {
        for (i, rule) in POLICY.iter().enumerate() {
            assert!(
                POLICY[i + 1..]
                    .iter()
                    .all(|other| (other.service, other.method) != (rule.service, rule.method)),
                "{}/{} is in the table twice",
                rule.service,
                rule.method
            );
        }
    }
}
