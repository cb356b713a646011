//! The routing decision for one request: rule, then geography, then outcome,
//! with one human-readable reason per step.
//!
//! Every request gets a decision. When the rule or the location is not good
//! enough to act on, the request is held for 311 triage, never dropped.

use dispatch311_proto::common::v1::Priority;
use dispatch311_proto::routing::v1::{RouteDecision, RouteOutcome};

use crate::precincts::{PrecinctMap, valid_position};
use crate::rules::{Rule, RuleOutcome, RuleTable, priority_name};

/// The agency that holds requests no rule or no precinct could route.
pub const TRIAGE_AGENCY: &str = "311-TRIAGE";
/// The rule id recorded when no rule matched.
pub const DEFAULT_RULE_ID: &str = "default";

/// Longest piece of caller text repeated in an explanation.
const MAX_ECHOED_CHARS: usize = 100;

/// What routing needs to know of a request.
#[derive(Debug, Clone, Copy, Default)]
pub struct RouteRequest<'a> {
    pub complaint_type: &'a str,
    pub descriptor: &'a str,
    /// (latitude, longitude) in WGS84.
    pub location: Option<(f64, f64)>,
    /// Whether the request names a street address (an agency can act on an
    /// address alone; only a precinct needs coordinates).
    pub has_street_address: bool,
}

/// Decides where a request goes.
pub fn decide(rules: &RuleTable, map: &PrecinctMap, request: &RouteRequest<'_>) -> RouteDecision {
    let RouteRequest {
        complaint_type,
        descriptor,
        location,
        has_street_address,
    } = *request;
    let mut explanation = Vec::with_capacity(5);

    let found = rules.find(complaint_type, descriptor);
    if let Some(found) = found
        && let Some(alias) = found.alias
    {
        explanation.push(format!(
            "complaint type '{}' is another name of '{}' (an alias in the rules)",
            echo(alias),
            found.rule.complaint_type
        ));
    }
    let rule = found.map(|found| found.rule);
    explanation.push(match rule {
        Some(rule) => explain_match(complaint_type, descriptor, rule),
        None => explain_no_match(complaint_type, descriptor),
    });

    // The precinct is looked up for every outcome: referrals and triage carry
    // it too, so the next person does not have to place the location again.
    let precinct = locate(map, location, has_street_address, &mut explanation);

    let Some(rule) = rule else {
        explanation.push(format!(
            "held for 311 triage by {TRIAGE_AGENCY}, priority normal, no SLA until routed"
        ));
        return RouteDecision {
            outcome: RouteOutcome::Triage.into(),
            agency: TRIAGE_AGENCY.to_owned(),
            precinct: precinct.unwrap_or_default().to_owned(),
            priority: Priority::Normal.into(),
            sla_minutes: 0,
            rule_id: DEFAULT_RULE_ID.to_owned(),
            explanation,
            complaint_type: String::new(),
            police_matter: false,
            duplicate_rule: None,
        };
    };

    match (rule.outcome, precinct) {
        (RuleOutcome::Dispatch, Some(precinct)) => {
            explanation.push(format!(
                "police work: dispatch to {} precinct {precinct}",
                rule.agency
            ));
            explanation.push(format!(
                "priority {}, SLA {} min",
                priority_name(rule.priority),
                rule.sla_minutes
            ));
            decision(
                rule,
                RouteOutcome::Dispatch,
                &rule.agency,
                precinct,
                rule.sla_minutes,
                explanation,
            )
        }
        (RuleOutcome::Dispatch, None) => {
            // Police work that cannot be placed in a precinct has no queue to go
            // to: a person must fix the location first.
            explanation.push(format!(
                "police work needs a precinct: held for 311 triage by {TRIAGE_AGENCY}"
            ));
            explanation.push(format!(
                "priority {} kept from the rule, no SLA until dispatched",
                priority_name(rule.priority)
            ));
            decision(
                rule,
                RouteOutcome::Triage,
                TRIAGE_AGENCY,
                "",
                0,
                explanation,
            )
        }
        (RuleOutcome::Refer, _)
            if rule.needs_location && location.is_none() && !has_street_address =>
        {
            // The agency could not find the condition: 311 staff ask the
            // complainant where it is, then refer it.
            explanation.push(format!(
                "{} needs a place to act on and none was given: held for 311 triage by {TRIAGE_AGENCY}",
                rule.agency
            ));
            explanation.push(format!(
                "priority {} kept from the rule",
                priority_name(rule.priority)
            ));
            decision(
                rule,
                RouteOutcome::Triage,
                TRIAGE_AGENCY,
                "",
                0,
                explanation,
            )
        }
        (RuleOutcome::Refer, precinct) => {
            explanation.push(format!("not police work: referred to {}", rule.agency));
            explanation.push(if rule.sla_minutes == 0 {
                format!(
                    "priority {}, no SLA here: {} keeps its own clock",
                    priority_name(rule.priority),
                    rule.agency
                )
            } else {
                format!(
                    "priority {}, SLA {} min",
                    priority_name(rule.priority),
                    rule.sla_minutes
                )
            });
            decision(
                rule,
                RouteOutcome::Refer,
                &rule.agency,
                precinct.unwrap_or_default(),
                rule.sla_minutes,
                explanation,
            )
        }
    }
}

fn decision(
    rule: &Rule,
    outcome: RouteOutcome,
    agency: &str,
    precinct: &str,
    sla_minutes: u32,
    explanation: Vec<String>,
) -> RouteDecision {
    RouteDecision {
        outcome: outcome.into(),
        agency: agency.to_owned(),
        precinct: precinct.to_owned(),
        priority: rule.priority.into(),
        sla_minutes,
        rule_id: rule.id.clone(),
        explanation,
        complaint_type: rule.complaint_type.clone(),
        police_matter: rule.police_matter,
        // only a dispatched job is linked to: a referral leaves the city's hands
        duplicate_rule: rule
            .duplicates
            .filter(|_| outcome == RouteOutcome::Dispatch),
    }
}

fn locate<'map>(
    map: &'map PrecinctMap,
    location: Option<(f64, f64)>,
    has_street_address: bool,
    explanation: &mut Vec<String>,
) -> Option<&'map str> {
    let Some((latitude, longitude)) = location else {
        explanation.push(if has_street_address {
            "a street address but no coordinates, so no precinct can be found".to_owned()
        } else {
            "no location given, so no precinct can be found".to_owned()
        });
        return None;
    };
    if !valid_position(latitude, longitude) {
        explanation.push(format!(
            "location {latitude},{longitude} is not a valid latitude and longitude"
        ));
        return None;
    }
    match map.precinct_at(latitude, longitude) {
        Some(precinct) => {
            explanation.push(format!(
                "location {latitude},{longitude} is inside precinct {precinct}"
            ));
            Some(precinct)
        }
        None => {
            explanation.push(format!(
                "location {latitude},{longitude} is outside every precinct on the map"
            ));
            None
        }
    }
}

fn explain_match(complaint_type: &str, descriptor: &str, rule: &Rule) -> String {
    let scope = if rule.descriptor.is_some() {
        "rule"
    } else {
        "type-wide rule"
    };
    format!(
        "{} matched {scope} '{}'",
        describe_request(complaint_type, descriptor),
        rule.id
    )
}

fn explain_no_match(complaint_type: &str, descriptor: &str) -> String {
    if complaint_type.trim().is_empty() {
        return "no complaint type given, so no routing rule applies".to_owned();
    }
    format!(
        "no routing rule for {}",
        describe_request(complaint_type, descriptor)
    )
}

fn describe_request(complaint_type: &str, descriptor: &str) -> String {
    let complaint_type = echo(complaint_type);
    if descriptor.trim().is_empty() {
        return format!("complaint type '{complaint_type}' (no descriptor)");
    }
    format!(
        "complaint type '{complaint_type}' / descriptor '{}'",
        echo(descriptor)
    )
}

/// Caller text as it goes into an explanation: trimmed and bounded, because
/// explanations are stored and shown with every decision.
fn echo(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() <= MAX_ECHOED_CHARS {
        return text.to_owned();
    }
    let mut shortened: String = text.chars().take(MAX_ECHOED_CHARS).collect();
    shortened.push('…');
    shortened
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::precincts::{real_precinct_map, shared_data_file};

    const SHIPPED_RULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/rules.toml");

    const EMPIRE_STATE_BUILDING: (f64, f64) = (40.7484, -73.9857);
    const HUDSON_RIVER: (f64, f64) = (40.7600, -74.0150);

    const RULES: &str = r#"
        [[rule]]
        id = "nypd-illegal-parking"
        complaint_type = "Illegal Parking"
        outcome = "dispatch"
        agency = "NYPD"
        priority = "normal"
        sla_minutes = 240

        [[rule]]
        id = "nypd-illegal-parking-hydrant"
        complaint_type = "Illegal Parking"
        descriptor = "Blocked Hydrant"
        outcome = "dispatch"
        agency = "NYPD"
        priority = "high"
        sla_minutes = 60

        [[rule]]
        id = "dsny-graffiti"
        complaint_type = "Graffiti"
        outcome = "refer"
        agency = "DSNY"
        priority = "low"
        sla_minutes = 0
    "#;

    fn rules() -> RuleTable {
        RuleTable::from_toml_str(RULES).unwrap()
    }

    /// The map routing ships: the city's 78 precincts.
    fn city_map() -> PrecinctMap {
        PrecinctMap::from_geojson_str(crate::router::DEFAULT_PRECINCT_MAP).unwrap()
    }

    /// The decision for a request with coordinates (or none) and no street address.
    fn route(
        rules: &RuleTable,
        map: &PrecinctMap,
        complaint_type: &str,
        descriptor: &str,
        location: Option<(f64, f64)>,
    ) -> RouteDecision {
        decide(
            rules,
            map,
            &RouteRequest {
                complaint_type,
                descriptor,
                location,
                has_street_address: false,
            },
        )
    }

    #[test]
    fn police_work_inside_a_precinct_is_dispatched() {
        let decision = route(
            &rules(),
            &city_map(),
            "Illegal Parking",
            "Blocked Hydrant",
            Some(EMPIRE_STATE_BUILDING),
        );
        assert_eq!(decision.outcome(), RouteOutcome::Dispatch);
        assert_eq!(decision.agency, "NYPD");
        assert_eq!(decision.precinct, "14");
        assert_eq!(decision.priority(), Priority::High);
        assert_eq!(decision.sla_minutes, 60);
        assert_eq!(decision.rule_id, "nypd-illegal-parking-hydrant");
        assert_eq!(
            decision.explanation,
            [
                "complaint type 'Illegal Parking' / descriptor 'Blocked Hydrant' matched rule 'nypd-illegal-parking-hydrant'",
                "location 40.7484,-73.9857 is inside precinct 14",
                "police work: dispatch to NYPD precinct 14",
                "priority high, SLA 60 min",
            ]
        );
    }

    #[test]
    fn type_wide_rule_is_named_as_such() {
        let decision = route(
            &rules(),
            &city_map(),
            "illegal parking",
            "Posted Parking Sign Violation",
            Some(EMPIRE_STATE_BUILDING),
        );
        assert_eq!(decision.outcome(), RouteOutcome::Dispatch);
        assert_eq!(decision.rule_id, "nypd-illegal-parking");
        assert_eq!(
            (decision.priority(), decision.sla_minutes),
            (Priority::Normal, 240)
        );
        assert_eq!(
            decision.explanation[0],
            "complaint type 'illegal parking' / descriptor 'Posted Parking Sign Violation' matched type-wide rule 'nypd-illegal-parking'"
        );
    }

    #[test]
    fn other_agencies_work_is_referred_with_the_precinct_for_information() {
        let decision = route(
            &rules(),
            &city_map(),
            "Graffiti",
            "",
            Some(EMPIRE_STATE_BUILDING),
        );
        assert_eq!(decision.outcome(), RouteOutcome::Refer);
        assert_eq!(decision.agency, "DSNY");
        assert_eq!(decision.precinct, "14");
        assert_eq!(decision.priority(), Priority::Low);
        assert_eq!(decision.sla_minutes, 0);
        assert_eq!(decision.rule_id, "dsny-graffiti");
        assert_eq!(
            decision.explanation,
            [
                "complaint type 'Graffiti' (no descriptor) matched type-wide rule 'dsny-graffiti'",
                "location 40.7484,-73.9857 is inside precinct 14",
                "not police work: referred to DSNY",
                "priority low, no SLA here: DSNY keeps its own clock",
            ]
        );
    }

    #[test]
    fn referral_needs_a_street_address_or_coordinates_unless_its_rule_says_not() {
        let on_a_street = decide(
            &rules(),
            &city_map(),
            &RouteRequest {
                complaint_type: "Graffiti",
                descriptor: "Graffiti",
                location: None,
                has_street_address: true,
            },
        );
        assert_eq!(on_a_street.outcome(), RouteOutcome::Refer);
        assert_eq!(on_a_street.agency, "DSNY");
        assert_eq!(on_a_street.precinct, "");
        assert_eq!(
            on_a_street.explanation[1],
            "a street address but no coordinates, so no precinct can be found"
        );

        let nowhere = route(&rules(), &city_map(), "Graffiti", "Graffiti", None);
        assert_eq!(nowhere.outcome(), RouteOutcome::Triage);
        assert_eq!(
            nowhere.rule_id, "dsny-graffiti",
            "triage sees which rule fits"
        );
        assert_eq!(
            nowhere.explanation[2],
            "DSNY needs a place to act on and none was given: held for 311 triage by 311-TRIAGE"
        );

        let tax = RuleTable::from_toml_str(
            r#"
            [[rule]]
            id = "dof-property-owner-issue"
            complaint_type = "DOF Property - Owner Issue"
            outcome = "refer"
            agency = "DOF"
            priority = "low"
            sla_minutes = 0
            needs_location = false
            "#,
        )
        .unwrap();
        let question = route(&tax, &city_map(), "DOF Property - Owner Issue", "", None);
        assert_eq!(question.outcome(), RouteOutcome::Refer);
        assert_eq!(question.agency, "DOF");
        assert!(!question.police_matter);
    }

    #[test]
    fn an_alias_is_explained_and_routed_as_its_complaint_type() {
        let rules = RuleTable::load(SHIPPED_RULES).unwrap();
        let decision = route(
            &rules,
            &city_map(),
            "derelict  VEHICLE",
            "With License Plate",
            Some(EMPIRE_STATE_BUILDING),
        );
        assert_eq!(decision.outcome(), RouteOutcome::Dispatch);
        assert_eq!(decision.complaint_type, "Abandoned Vehicle");
        assert!(decision.police_matter);
        assert_eq!(
            decision.explanation[0],
            "complaint type 'Derelict Vehicle' is another name of 'Abandoned Vehicle' (an alias in the rules)"
        );
    }

    #[test]
    fn unknown_complaint_type_is_held_for_triage() {
        let decision = route(
            &rules(),
            &city_map(),
            "Loose Tiger",
            "In Lobby",
            Some(EMPIRE_STATE_BUILDING),
        );
        assert_eq!(decision.outcome(), RouteOutcome::Triage);
        assert_eq!(decision.agency, "311-TRIAGE");
        assert_eq!(decision.rule_id, "default");
        assert_eq!(decision.precinct, "14", "triage still learns where it is");
        assert_eq!(decision.priority(), Priority::Normal);
        assert_eq!(decision.sla_minutes, 0);
        assert_eq!(
            decision.explanation,
            [
                "no routing rule for complaint type 'Loose Tiger' / descriptor 'In Lobby'",
                "location 40.7484,-73.9857 is inside precinct 14",
                "held for 311 triage by 311-TRIAGE, priority normal, no SLA until routed",
            ]
        );
    }

    #[test]
    fn empty_complaint_type_is_held_for_triage() {
        let decision = route(&rules(), &city_map(), "  ", "Blocked Hydrant", None);
        assert_eq!(decision.outcome(), RouteOutcome::Triage);
        assert_eq!(decision.rule_id, "default");
        assert_eq!(
            decision.explanation[0],
            "no complaint type given, so no routing rule applies"
        );
    }

    #[test]
    fn police_work_without_a_location_is_held_for_triage() {
        let decision = route(
            &rules(),
            &city_map(),
            "Illegal Parking",
            "Blocked Hydrant",
            None,
        );
        assert_eq!(decision.outcome(), RouteOutcome::Triage);
        assert_eq!(decision.agency, "311-TRIAGE");
        assert_eq!(decision.precinct, "");
        assert_eq!(decision.rule_id, "nypd-illegal-parking-hydrant");
        assert_eq!(
            decision.priority(),
            Priority::High,
            "triage sees how urgent it is"
        );
        assert_eq!(decision.sla_minutes, 0);
        assert_eq!(
            decision.explanation,
            [
                "complaint type 'Illegal Parking' / descriptor 'Blocked Hydrant' matched rule 'nypd-illegal-parking-hydrant'",
                "no location given, so no precinct can be found",
                "police work needs a precinct: held for 311 triage by 311-TRIAGE",
                "priority high kept from the rule, no SLA until dispatched",
            ]
        );
    }

    #[test]
    fn police_work_outside_every_precinct_is_held_for_triage() {
        let decision = route(
            &rules(),
            &city_map(),
            "Illegal Parking",
            "Blocked Hydrant",
            Some(HUDSON_RIVER),
        );
        assert_eq!(decision.outcome(), RouteOutcome::Triage);
        assert_eq!(decision.agency, "311-TRIAGE");
        assert_eq!(decision.precinct, "");
        assert_eq!(
            decision.explanation[1],
            "location 40.76,-74.015 is outside every precinct on the map"
        );
    }

    #[test]
    fn invalid_coordinates_are_held_for_triage_not_a_crash() {
        for location in [
            (f64::NAN, -73.9857),
            (40.7484, f64::INFINITY),
            (140.0, -73.9857),
        ] {
            let decision = route(
                &rules(),
                &city_map(),
                "Illegal Parking",
                "Blocked Hydrant",
                Some(location),
            );
            assert_eq!(decision.outcome(), RouteOutcome::Triage, "{location:?}");
            assert!(
                decision.explanation[1].ends_with("is not a valid latitude and longitude"),
                "{:?}",
                decision.explanation
            );
        }
    }

    #[test]
    fn long_caller_text_is_shortened_in_the_explanation() {
        let long_type = "x".repeat(500);
        let decision = route(&rules(), &city_map(), &long_type, "", None);
        assert_eq!(decision.outcome(), RouteOutcome::Triage);
        assert!(
            decision.explanation[0].len() < 200,
            "{}",
            decision.explanation[0]
        );
        assert!(decision.explanation[0].contains('…'));
    }

    #[test]
    fn shipped_rules_and_map_dispatch_a_midtown_bike_lane_complaint() {
        let rules = RuleTable::load(SHIPPED_RULES).unwrap();
        let decision = route(
            &rules,
            &city_map(),
            "Illegal Parking",
            "Blocked Bike Lane",
            Some(EMPIRE_STATE_BUILDING),
        );
        assert_eq!(decision.outcome(), RouteOutcome::Dispatch);
        assert_eq!(decision.precinct, "14");
        assert_eq!(
            (decision.priority(), decision.sla_minutes),
            (Priority::High, 60)
        );
    }

    /// Splits CSV text into records: quoted fields may hold commas, quotes and
    /// line breaks, as in the city's exports.
    fn csv_records(text: &str) -> Vec<Vec<String>> {
        let mut records = Vec::new();
        let mut record = Vec::new();
        let mut field = String::new();
        let mut in_quotes = false;
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if in_quotes {
                match c {
                    '"' if chars.peek() == Some(&'"') => {
                        field.push('"');
                        chars.next();
                    }
                    '"' => in_quotes = false,
                    _ => field.push(c),
                }
                continue;
            }
            match c {
                '"' => in_quotes = true,
                ',' => record.push(std::mem::take(&mut field)),
                '\r' => {}
                '\n' => {
                    record.push(std::mem::take(&mut field));
                    records.push(std::mem::take(&mut record));
                }
                _ => field.push(c),
            }
        }
        if !field.is_empty() || !record.is_empty() {
            record.push(field);
            records.push(record);
        }
        records
    }

    #[test]
    fn csv_reader_handles_quotes_and_line_breaks() {
        let records = csv_records("a,b,c\r\n1,\"two, \"\"2\"\"\nlines\",3\n");
        assert_eq!(
            records,
            [vec!["a", "b", "c"], vec!["1", "two, \"2\"\nlines", "3"]]
        );
    }

    /// The agency the shipped table gives a sample request of this agency and
    /// type, where it deliberately differs from the city's.
    fn agency_in_table<'a>(sample_agency: &'a str, complaint_type: &str) -> &'a str {
        match (sample_agency, complaint_type) {
            // the city files most encampment reports with NYPD
            ("DHS", "Encampment") => "NYPD",
            // 311's routing desk code for sewer and water work that DEP does
            ("NYC311-PRD", "Sewer" | "Water System") => "DEP",
            _ => sample_agency,
        }
    }

    /// No real request may fall to triage by accident: every request of the
    /// city's sample files matches a rule that sends it where the city sent it,
    /// and every police request with coordinates is dispatched to a precinct of
    /// the real map.
    #[test]
    fn every_real_sample_request_is_routed() {
        let rules = RuleTable::load(SHIPPED_RULES).unwrap();
        let Some(map) = real_precinct_map() else {
            return;
        };
        let files = [
            "nyc311/service-requests-2023-02-28.csv",
            "nyc311/service-requests-2023-03-31-smoke.csv",
        ];
        for file in files {
            let Some(path) = shared_data_file(file) else {
                continue;
            };
            let bytes = std::fs::read(&path).unwrap();
            let records = csv_records(&String::from_utf8_lossy(&bytes));
            let (header, rows) = records.split_first().unwrap();
            let column = |name: &str| header.iter().position(|h| h == name).unwrap();
            let (agency, complaint_type, descriptor) = (
                column("Agency"),
                column("Complaint Type"),
                column("Descriptor"),
            );
            let (latitude, longitude) = (column("Latitude"), column("Longitude"));

            let mut dispatched = 0;
            for (line, row) in rows.iter().enumerate() {
                assert_eq!(row.len(), header.len(), "{file} record {} is cut", line + 1);
                let location = row[latitude]
                    .parse::<f64>()
                    .ok()
                    .zip(row[longitude].parse::<f64>().ok());
                let decision = route(
                    &rules,
                    map,
                    &row[complaint_type],
                    &row[descriptor],
                    location,
                );
                assert_ne!(
                    decision.rule_id, DEFAULT_RULE_ID,
                    "{file}: {} / {} has no rule",
                    row[complaint_type], row[descriptor]
                );
                assert_eq!(
                    decision.agency == TRIAGE_AGENCY,
                    decision.outcome() == RouteOutcome::Triage
                );
                if decision.outcome() != RouteOutcome::Triage {
                    assert_eq!(
                        decision.agency,
                        agency_in_table(&row[agency], &row[complaint_type]),
                        "{file}: {} / {}",
                        row[complaint_type],
                        row[descriptor]
                    );
                }
                if row[agency] != "NYPD" || location.is_none() {
                    continue;
                }
                assert_eq!(
                    decision.outcome(),
                    RouteOutcome::Dispatch,
                    "{file}: {:?}",
                    decision.explanation
                );
                assert_eq!(decision.agency, "NYPD");
                assert!(!decision.precinct.is_empty());
                dispatched += 1;
            }
            assert!(
                dispatched > 0,
                "{file} has no police request with coordinates"
            );
            eprintln!(
                "{file}: {} requests routed, {dispatched} police requests dispatched",
                rows.len()
            );
        }
    }
}
