//! The accountability rules of a closure, and of a reopening, as pure
//! decisions over the locked job and the facts the caller gathered: each rule
//! is tested here without a database.
//!
//! Refusals block the closure and change nothing (a police matter closed as
//! "outside jurisdiction" or "referred", a claimed visit without an arrival
//! near the location, a duplicate that names no other report, photos never
//! opened by the closer). What each resolution code needs is one table in
//! `dispatch311_domain::resolution`. Flags never block: they make a
//! suspicious closure visible to supervisors and oversight.

use std::time::Duration;

use chrono::{DateTime, Utc};
use dispatch311_domain::{
    complaint_type::match_key,
    distance::meters_between,
    resolution::{self, ClosingNeed},
    status::resolution_name,
};
use dispatch311_proto::{
    common::v1::{Priority, ResolutionCode},
    dispatch::v1::{FlagKind, Role},
};

use crate::{
    config::DispatchRules,
    jobs::state_machine::Refusal,
    store::{JobRow, changes::DuplicateTarget, flags::kind_name},
};

/// What the caller knows about a closure besides the job itself.
#[derive(Debug, Clone)]
pub struct CloseFacts<'a> {
    pub code: ResolutionCode,
    pub closer_id: &'a str,
    pub closer_role: Role,
    /// Where the closing officer says they are, if they said.
    pub position: Option<(f64, f64)>,
    pub at: DateTime<Utc>,
    /// The closer has an EVIDENCE_VIEWED event on this job since it was last reopened.
    pub closer_viewed_evidence: bool,
    /// Closures by the closer within the burst window, this one included.
    pub closer_recent_closures: u32,
    /// Whether the close carries a summons number.
    pub summons_number_given: bool,
    /// The closer's notes (a supervisor's written reason, for a duplicate
    /// closed without naming the other job).
    pub notes: &'a str,
    /// The job this one duplicates, when the close names one.
    pub duplicate_of: Option<DuplicateTarget>,
}

/// Who may close a job: the assigned unit's officer (checked against the crew)
/// or a supervisor.
pub const CLOSING_ROLES: &[Role] = &[Role::Officer, Role::Supervisor];

/// The shortest written reason a supervisor gives for closing a duplicate
/// without naming the job it duplicates.
pub const MIN_SUPERVISOR_REASON_CHARS: usize = 20;

/// A flag a closure raises, once per closure (its dedup key names the closure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagToRaise {
    pub kind: FlagKind,
    pub detail: String,
    pub dedup_key: String,
}

/// Whether the job may be closed as `facts` say, and which flags the closure
/// raises. The state machine has already allowed the closure. What each code
/// needs comes from the one table in `dispatch311_domain::resolution`.
#[tracing::instrument(
    name = "accountability checks",
    skip_all,
    fields(dispatch311.resolution.code = ?facts.code, dispatch311.refusal.rule = tracing::field::Empty)
)]
pub fn check_close(
    job: &JobRow,
    facts: &CloseFacts<'_>,
    rules: &DispatchRules,
) -> Result<Vec<FlagToRaise>, Refusal> {
    let Some(rule) = resolution::rule(facts.code) else {
        return Err(Refusal::new(
            "RESOLUTION_REQUIRED",
            "a job is closed with a resolution code",
        ));
    };
    let checked = rule
        .needs
        .iter()
        .try_for_each(|need| match need {
            ClosingNeed::SupervisorRerouteIfPoliceMatter => jurisdiction(job, facts.code),
            ClosingNeed::ArrivalNearScene => arrival_near_scene(job, facts.code, rules),
            ClosingNeed::SummonsNumber => summons_number(facts),
            ClosingNeed::LinkedDuplicate => linked_duplicate(job, facts, rules),
        })
        .and_then(|()| evidence_viewed(job, facts));
    if let Err(refusal) = &checked {
        tracing::Span::current().record("dispatch311.refusal.rule", refusal.rule);
    }
    checked.map(|()| closure_flags(job, facts, rules))
}

/// Rule 1: a complaint the police must handle never leaves police hands by a
/// plain close — not as "outside jurisdiction", not as "referred"; a
/// supervisor-approved re-route, with a reason, is the only way out.
pub fn jurisdiction(job: &JobRow, code: ResolutionCode) -> Result<(), Refusal> {
    if !job.police_matter {
        return Ok(());
    }
    let (reason, words) = match code {
        ResolutionCode::OutsideJurisdiction => (
            "POLICE_MATTER_NOT_OUTSIDE_JURISDICTION",
            "cannot be closed as outside jurisdiction",
        ),
        _ => (
            "POLICE_MATTER_REFERRAL_NEEDS_REROUTE",
            "cannot be closed as referred to another agency",
        ),
    };
    Err(Refusal::new(
        reason,
        format!(
            "a {} complaint is police jurisdiction and {words}; \
             a supervisor can approve a re-route to another agency, with the reason, instead",
            job.complaint_type
        ),
    ))
}

/// A summons closure names the summons.
pub fn summons_number(facts: &CloseFacts<'_>) -> Result<(), Refusal> {
    if facts.summons_number_given {
        return Ok(());
    }
    Err(Refusal::new(
        "SUMMONS_NUMBER_REQUIRED",
        "SUMMONS_ISSUED needs the summons number",
    ))
}

/// A duplicate names the report already filed: another job of the same
/// complaint type at the same place (within the on-scene radius, in the same
/// precinct), open or closed. Without one, only a supervisor with a written
/// reason may close a job as a duplicate.
pub fn linked_duplicate(
    job: &JobRow,
    facts: &CloseFacts<'_>,
    rules: &DispatchRules,
) -> Result<(), Refusal> {
    let Some(other) = &facts.duplicate_of else {
        if facts.closer_role == Role::Supervisor
            && facts.notes.trim().chars().count() >= MIN_SUPERVISOR_REASON_CHARS
        {
            return Ok(());
        }
        return Err(Refusal::new(
            "DUPLICATE_NOT_LINKED",
            format!(
                "a duplicate must name the request it duplicates (duplicate_of_sr_number: another {} job at the same place); \
                 without one, only a supervisor may close it as a duplicate, with a written reason of at least \
                 {MIN_SUPERVISOR_REASON_CHARS} characters",
                job.complaint_type
            ),
        ));
    };
    let refuse = |why: String| {
        Err(Refusal::new(
            "DUPLICATE_NOT_SAME_INCIDENT",
            format!(
                "{} is not a duplicate of {}: {why}",
                job.sr_number, other.sr_number
            ),
        ))
    };
    if other.job_id == job.job_id {
        return refuse("a request cannot duplicate itself".into());
    }
    if match_key(&other.complaint_type) != match_key(&job.complaint_type) {
        return refuse(format!(
            "it is a {} complaint, this one is {}",
            other.complaint_type, job.complaint_type
        ));
    }
    if other.precinct != job.precinct {
        return refuse(format!("it is in precinct {}", other.precinct));
    }
    let (Some(here), Some(there)) = (job.location, other.location) else {
        return refuse("one of them has no location to compare".into());
    };
    let distance = meters_between(here, there);
    if distance > rules.on_scene_radius_m {
        return refuse(format!(
            "it is {distance:.0} m away (the same place is within {:.0} m)",
            rules.on_scene_radius_m
        ));
    }
    Ok(())
}

/// Rule 2: an outcome that says officers were there needs an arrival on
/// scene reported near the location.
pub fn arrival_near_scene(
    job: &JobRow,
    code: ResolutionCode,
    rules: &DispatchRules,
) -> Result<(), Refusal> {
    if !resolution::claims_visit(code) {
        return Ok(());
    }
    let Some(arrival) = job.on_scene_position else {
        return Err(Refusal::new(
            "NO_ARRIVAL_ON_SCENE",
            format!(
                "{} says officers went to the scene, but no arrival on scene was reported; report on scene first",
                resolution_name(code)
            ),
        ));
    };
    // a dispatched job always has a location; without one there is nothing to measure
    let Some(location) = job.location else {
        return Ok(());
    };
    let distance = meters_between(arrival, location);
    if distance > rules.on_scene_radius_m {
        return Err(Refusal::new(
            "ARRIVAL_NOT_NEAR_SCENE",
            format!(
                "{} says officers went to the scene, but the arrival was reported {distance:.0} m from the location \
                 (it must be within {:.0} m)",
                resolution_name(code),
                rules.on_scene_radius_m
            ),
        ));
    }
    Ok(())
}

/// Rule 3: whoever closes a request with photos has opened them.
pub fn evidence_viewed(job: &JobRow, facts: &CloseFacts<'_>) -> Result<(), Refusal> {
    if job.photo_count > 0 && !facts.closer_viewed_evidence {
        let photos = if job.photo_count == 1 {
            "a photo".to_string()
        } else {
            format!("{} photos", job.photo_count)
        };
        return Err(Refusal::new(
            "EVIDENCE_NOT_VIEWED",
            format!("the complainant attached {photos}: open the photos first, then close the job"),
        ));
    }
    Ok(())
}

/// Rule 4: the flags a closure raises (none of them blocks it).
pub fn closure_flags(
    job: &JobRow,
    facts: &CloseFacts<'_>,
    rules: &DispatchRules,
) -> Vec<FlagToRaise> {
    let closure_number = job.closure_count + 1;
    let mut flags = Vec::new();
    let mut flag = |kind: FlagKind, detail: String| {
        flags.push(FlagToRaise {
            kind,
            detail,
            dedup_key: format!("{}:{closure_number}", kind_name(kind).to_lowercase()),
        });
    };
    if let Some(assigned_at) = job.assigned_at {
        let taken = elapsed(assigned_at, facts.at);
        if taken < rules.fast_closure {
            flag(
                FlagKind::FastClosure,
                format!(
                    "closed {} after assignment (under {})",
                    for_people(taken),
                    for_people(rules.fast_closure)
                ),
            );
        }
    }
    if let Some(on_scene_at) = job.on_scene_at {
        let stayed = elapsed(on_scene_at, facts.at);
        if stayed < rules.min_on_scene {
            flag(
                FlagKind::ShortOnScene,
                format!(
                    "on scene for {} before closing (under {})",
                    for_people(stayed),
                    for_people(rules.min_on_scene)
                ),
            );
        }
    }
    if let Some((position, location)) = facts.position.zip(job.location) {
        let distance = meters_between(position, location);
        if distance > rules.far_from_scene_m {
            flag(
                FlagKind::ClosedFarFromScene,
                format!(
                    "closed {distance:.0} m from the location (over {:.0} m)",
                    rules.far_from_scene_m
                ),
            );
        }
    }
    if rules.burst_count > 0 && facts.closer_recent_closures >= rules.burst_count {
        flag(
            FlagKind::ClosureBurst,
            format!(
                "{} closed {} jobs within {}",
                facts.closer_id,
                facts.closer_recent_closures,
                for_people(rules.burst_window)
            ),
        );
    }
    flags
}

/// One priority step up, URGENT at most.
pub fn raised(priority: Priority) -> Priority {
    match priority {
        Priority::Unspecified | Priority::Low => Priority::Normal,
        Priority::Normal => Priority::High,
        Priority::High | Priority::Urgent => Priority::Urgent,
    }
}

/// Whether a reopening comes from the complainant saying the problem was not
/// fixed: a reason that says so, or the survey path (the service itself)
/// asking for a higher priority.
pub fn reopened_by_complainant(reason: &str, role: Role, raise_priority: bool) -> bool {
    reason.to_lowercase().contains("complainant") || (role == Role::System && raise_priority)
}

/// The time from `from` to `to`; zero when `to` is earlier (clock skew).
fn elapsed(from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
    (to - from).to_std().unwrap_or(Duration::ZERO)
}

/// `4m 10s`, `45s`, `2h 5m`.
pub fn for_people(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 if secs.is_multiple_of(60) => format!("{}m", secs / 60),
        60..3600 => format!("{}m {}s", secs / 60, secs % 60),
        _ if secs.is_multiple_of(3600) => format!("{}h", secs / 3600),
        _ => format!("{}h {}m", secs / 3600, secs % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use dispatch311_proto::dispatch::v1::JobState;
    use uuid::Uuid;

    use super::*;
    use crate::jobs::state_machine::Transition;

    const LOCATION: (f64, f64) = (40.748_44, -73.985_66);

    /// About `meters` north of the location.
    fn north_of_location(meters: f64) -> (f64, f64) {
        (
            LOCATION.0 + (meters / 6_371_008.8_f64).to_degrees(),
            LOCATION.1,
        )
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 0).unwrap()
    }

    /// A hydrant job assigned 20 minutes ago, on scene for 10 minutes, right at the location.
    fn job_on_scene() -> JobRow {
        let now = now();
        JobRow {
            job_id: Uuid::nil(),
            sr_id: Uuid::nil(),
            location: Some(LOCATION),
            state: JobState::OnScene,
            unit_id: Some(Uuid::nil()),
            assignment_number: 1,
            created_at: now - TimeDelta::minutes(30),
            queued_at: now - TimeDelta::minutes(30),
            assigned_at: Some(now - TimeDelta::minutes(20)),
            acknowledged_at: Some(now - TimeDelta::minutes(19)),
            en_route_at: Some(now - TimeDelta::minutes(18)),
            on_scene_at: Some(now - TimeDelta::minutes(10)),
            on_scene_position: Some(north_of_location(20.0)),
            complainant_consented: true,
            ..JobRow::sample()
        }
    }

    fn facts(code: ResolutionCode) -> CloseFacts<'static> {
        CloseFacts {
            code,
            closer_id: "O-1",
            closer_role: Role::Officer,
            position: Some(north_of_location(30.0)),
            at: now(),
            closer_viewed_evidence: false,
            closer_recent_closures: 1,
            summons_number_given: code == ResolutionCode::SummonsIssued,
            notes: "",
            duplicate_of: None,
        }
    }

    fn kinds(flags: &[FlagToRaise]) -> Vec<FlagKind> {
        flags.iter().map(|f| f.kind).collect()
    }

    #[test]
    fn an_unhurried_closure_on_scene_passes_without_flags() {
        let flags = check_close(
            &job_on_scene(),
            &facts(ResolutionCode::ActionTaken),
            &DispatchRules::default(),
        )
        .unwrap();
        assert_eq!(flags, []);
    }

    #[test]
    fn a_police_matter_is_never_closed_as_outside_jurisdiction() {
        let rules = DispatchRules::default();
        let refusal = check_close(
            &job_on_scene(),
            &facts(ResolutionCode::OutsideJurisdiction),
            &rules,
        )
        .unwrap_err();
        assert_eq!(refusal.rule, "POLICE_MATTER_NOT_OUTSIDE_JURISDICTION");
        assert!(
            refusal.description.contains("re-route"),
            "{}",
            refusal.description
        );

        let heat = JobRow {
            police_matter: false,
            complaint_type: "HEAT/HOT WATER".into(),
            ..job_on_scene()
        };
        assert!(check_close(&heat, &facts(ResolutionCode::OutsideJurisdiction), &rules).is_ok());
    }

    #[test]
    fn a_claimed_visit_needs_an_arrival_near_the_location() {
        let rules = DispatchRules::default();
        let never_arrived = JobRow {
            state: JobState::EnRoute,
            on_scene_at: None,
            on_scene_position: None,
            ..job_on_scene()
        };
        for code in [
            ResolutionCode::ActionTaken,
            ResolutionCode::SummonsIssued,
            ResolutionCode::NoEvidence,
            ResolutionCode::ConditionGoneOnArrival,
            ResolutionCode::UnableToGainEntry,
            // its public words say the police responded
            ResolutionCode::PoliceActionNotNecessary,
        ] {
            let refusal = check_close(&never_arrived, &facts(code), &rules).unwrap_err();
            assert_eq!(refusal.rule, "NO_ARRIVAL_ON_SCENE", "{code:?}");
        }
        // outcomes that claim no visit may close from the road: a duplicate
        // naming the report already filed, another agency's work referred
        let linked = CloseFacts {
            duplicate_of: Some(DuplicateTarget {
                job_id: Uuid::from_u128(2),
                sr_number: "SR-2026-0000002".into(),
                complaint_type: "Illegal Parking".into(),
                precinct: "14".into(),
                location: Some(north_of_location(15.0)),
            }),
            ..facts(ResolutionCode::Duplicate)
        };
        assert!(check_close(&never_arrived, &linked, &rules).is_ok());
        let not_police = JobRow {
            police_matter: false,
            ..never_arrived.clone()
        };
        assert!(check_close(&not_police, &facts(ResolutionCode::Referred), &rules).is_ok());

        let arrived_far = JobRow {
            on_scene_position: Some(north_of_location(400.0)),
            ..job_on_scene()
        };
        let refusal =
            check_close(&arrived_far, &facts(ResolutionCode::NoEvidence), &rules).unwrap_err();
        assert_eq!(refusal.rule, "ARRIVAL_NOT_NEAR_SCENE");
        assert!(
            refusal.description.contains("400 m"),
            "{}",
            refusal.description
        );
        let arrived_at_the_edge = JobRow {
            on_scene_position: Some(north_of_location(140.0)),
            ..job_on_scene()
        };
        assert!(
            check_close(
                &arrived_at_the_edge,
                &facts(ResolutionCode::NoEvidence),
                &rules
            )
            .is_ok()
        );
    }

    #[test]
    fn photos_must_be_opened_by_whoever_closes() {
        let rules = DispatchRules::default();
        let with_photos = JobRow {
            photo_count: 2,
            ..job_on_scene()
        };
        let refusal =
            check_close(&with_photos, &facts(ResolutionCode::ActionTaken), &rules).unwrap_err();
        assert_eq!(refusal.rule, "EVIDENCE_NOT_VIEWED");
        assert!(refusal.description.contains("open the photos first"));
        let viewed = CloseFacts {
            closer_viewed_evidence: true,
            ..facts(ResolutionCode::ActionTaken)
        };
        assert!(check_close(&with_photos, &viewed, &rules).is_ok());
    }

    #[test]
    fn a_hurried_closure_is_flagged_but_not_refused() {
        let rules = DispatchRules::default();
        let now = now();
        let hurried = JobRow {
            assigned_at: Some(now - TimeDelta::seconds(170)),
            on_scene_at: Some(now - TimeDelta::seconds(25)),
            closure_count: 1,
            ..job_on_scene()
        };
        let flags = check_close(&hurried, &facts(ResolutionCode::NoEvidence), &rules).unwrap();
        assert_eq!(
            kinds(&flags),
            [FlagKind::FastClosure, FlagKind::ShortOnScene]
        );
        assert_eq!(flags[0].detail, "closed 2m 50s after assignment (under 5m)");
        assert_eq!(flags[0].dedup_key, "fast_closure:2", "one flag per closure");
        assert_eq!(
            flags[1].detail,
            "on scene for 25s before closing (under 1m)"
        );
    }

    #[test]
    fn closing_from_far_away_or_in_a_burst_is_flagged() {
        let rules = DispatchRules::default();
        let far = CloseFacts {
            position: Some(north_of_location(2_000.0)),
            ..facts(ResolutionCode::ActionTaken)
        };
        let flags = check_close(&job_on_scene(), &far, &rules).unwrap();
        assert_eq!(kinds(&flags), [FlagKind::ClosedFarFromScene]);
        assert!(
            flags[0].detail.starts_with("closed 2000 m"),
            "{}",
            flags[0].detail
        );
        let no_position = CloseFacts {
            position: None,
            ..facts(ResolutionCode::ActionTaken)
        };
        assert_eq!(
            check_close(&job_on_scene(), &no_position, &rules).unwrap(),
            []
        );

        let burst = CloseFacts {
            closer_recent_closures: rules.burst_count,
            ..facts(ResolutionCode::ActionTaken)
        };
        let flags = check_close(&job_on_scene(), &burst, &rules).unwrap();
        assert_eq!(kinds(&flags), [FlagKind::ClosureBurst]);
        assert_eq!(flags[0].detail, "O-1 closed 5 jobs within 10m");
        let one_fewer = CloseFacts {
            closer_recent_closures: rules.burst_count - 1,
            ..facts(ResolutionCode::ActionTaken)
        };
        assert_eq!(
            check_close(&job_on_scene(), &one_fewer, &rules).unwrap(),
            []
        );
    }

    #[test]
    fn a_refusal_comes_before_any_flag() {
        let hurried_far_without_arrival = JobRow {
            assigned_at: Some(now() - TimeDelta::seconds(10)),
            on_scene_position: None,
            on_scene_at: None,
            ..job_on_scene()
        };
        assert!(
            check_close(
                &hurried_far_without_arrival,
                &facts(ResolutionCode::ActionTaken),
                &DispatchRules::default()
            )
            .is_err()
        );
    }

    /// Every resolution code × every job state × every role, against the
    /// table of ARCHITECTURE.md written out here on its own (as the access
    /// matrix test does for RPCs): a police job, with its arrival recorded at
    /// the place when it is on scene and none before.
    #[test]
    fn every_code_state_and_role_closes_as_the_table_says() {
        use ResolutionCode as R;
        use dispatch311_proto::dispatch::v1::JobState as S;

        fn expected(code: R, state: S, role: Role, police: bool, linked: bool) -> &'static str {
            if !matches!(role, Role::Officer | Role::Supervisor) {
                return "PERMISSION_DENIED";
            }
            if !matches!(state, S::Acknowledged | S::EnRoute | S::OnScene) {
                return "INVALID_TRANSITION";
            }
            match code {
                R::ActionTaken
                | R::SummonsIssued
                | R::NoEvidence
                | R::PoliceActionNotNecessary
                | R::UnableToGainEntry
                | R::ConditionGoneOnArrival => {
                    if state == S::OnScene {
                        "OK"
                    } else {
                        "NO_ARRIVAL_ON_SCENE"
                    }
                }
                R::Referred if police => "POLICE_MATTER_REFERRAL_NEEDS_REROUTE",
                R::OutsideJurisdiction if police => "POLICE_MATTER_NOT_OUTSIDE_JURISDICTION",
                R::Referred | R::OutsideJurisdiction => "OK",
                R::Duplicate if linked || role == Role::Supervisor => "OK",
                R::Duplicate => "DUPLICATE_NOT_LINKED",
                R::Unspecified => unreachable!(),
            }
        }

        let states = [
            S::Queued,
            S::Assigned,
            S::Acknowledged,
            S::EnRoute,
            S::OnScene,
            S::Closed,
            S::Cancelled,
            S::Rerouted,
        ];
        let roles = [
            Role::Unspecified,
            Role::Dispatcher,
            Role::Officer,
            Role::Supervisor,
            Role::System,
        ];
        let rules = DispatchRules::default();
        let other_report = DuplicateTarget {
            job_id: Uuid::from_u128(7),
            sr_number: "SR-2026-0000007".into(),
            complaint_type: "illegal parking".into(),
            precinct: "14".into(),
            location: Some(north_of_location(40.0)),
        };
        let mut checked = 0;
        for police in [true, false] {
            for linked in [false, true] {
                for rule in resolution::RESOLUTION_RULES {
                    for state in states {
                        for role in roles {
                            let job = JobRow {
                                state,
                                police_matter: police,
                                on_scene_at: (state == S::OnScene).then_some(now()),
                                on_scene_position: (state == S::OnScene)
                                    .then(|| north_of_location(20.0)),
                                ..job_on_scene()
                            };
                            let facts = CloseFacts {
                                closer_role: role,
                                notes: "the same car, reported twice by one caller",
                                duplicate_of: linked.then(|| other_report.clone()),
                                ..facts(rule.code)
                            };
                            let got = if !CLOSING_ROLES.contains(&role) {
                                "PERMISSION_DENIED"
                            } else if let Err(refusal) = Transition::Close.check(state) {
                                refusal.rule
                            } else {
                                check_close(&job, &facts, &rules).map_or_else(|r| r.rule, |_| "OK")
                            };
                            assert_eq!(
                                got,
                                expected(rule.code, state, role, police, linked),
                                "{:?} from {state:?} by {role:?}, police matter {police}, linked {linked}",
                                rule.code
                            );
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 4 * 9 * 8 * 5);
    }

    #[test]
    fn a_duplicate_names_another_report_of_the_same_complaint_at_the_same_place() {
        let rules = DispatchRules::default();
        let job = job_on_scene();
        let target =
            |complaint_type: &str, precinct: &str, meters: f64, job_id: u128| DuplicateTarget {
                job_id: Uuid::from_u128(job_id),
                sr_number: "SR-2026-0000009".into(),
                complaint_type: complaint_type.into(),
                precinct: precinct.into(),
                location: Some(north_of_location(meters)),
            };
        let close_as = |other: DuplicateTarget| {
            check_close(
                &job,
                &CloseFacts {
                    duplicate_of: Some(other),
                    ..facts(ResolutionCode::Duplicate)
                },
                &rules,
            )
        };
        assert!(close_as(target("Illegal Parking", "14", 100.0, 9)).is_ok());
        for (other, why) in [
            (
                target("Noise - Residential", "14", 10.0, 9),
                "Noise - Residential complaint",
            ),
            (target("Illegal Parking", "13", 10.0, 9), "precinct 13"),
            (target("Illegal Parking", "14", 400.0, 9), "400 m away"),
            (
                target("Illegal Parking", "14", 0.0, 0),
                "cannot duplicate itself",
            ),
        ] {
            let refusal = close_as(other).unwrap_err();
            assert_eq!(refusal.rule, "DUPLICATE_NOT_SAME_INCIDENT");
            assert!(refusal.description.contains(why), "{}", refusal.description);
        }
    }

    #[test]
    fn reopening_raises_priority_one_step_up_to_urgent() {
        assert_eq!(raised(Priority::Low), Priority::Normal);
        assert_eq!(raised(Priority::Normal), Priority::High);
        assert_eq!(raised(Priority::High), Priority::Urgent);
        assert_eq!(raised(Priority::Urgent), Priority::Urgent);
    }

    #[test]
    fn a_complainant_reopening_is_recognised() {
        assert!(reopened_by_complainant(
            "Complainant says the car is still there",
            Role::Supervisor,
            false
        ));
        assert!(reopened_by_complainant(
            "survey answer: not fixed",
            Role::System,
            true
        ));
        assert!(!reopened_by_complainant(
            "audit sample",
            Role::Supervisor,
            true
        ));
        assert!(!reopened_by_complainant(
            "audit sample",
            Role::System,
            false
        ));
    }

    #[test]
    fn durations_read_like_a_person_writes_them() {
        assert_eq!(for_people(Duration::from_secs(45)), "45s");
        assert_eq!(for_people(Duration::from_secs(300)), "5m");
        assert_eq!(for_people(Duration::from_secs(250)), "4m 10s");
        assert_eq!(for_people(Duration::from_secs(7_500)), "2h 5m");
        assert_eq!(for_people(Duration::from_secs(3_600)), "1h");
    }
}
