//! The routing table and precinct map in force, loaded once at start.

use std::path::Path;

use anyhow::Context as _;
use dispatch311_proto::routing::v1::RouteDecision;

use crate::{decision, precincts::PrecinctMap, rules::RuleTable};

/// The rules the project ships, used when no rules file is configured.
pub const DEFAULT_RULES: &str = include_str!("../config/rules.toml");
/// The project's small demo map of Midtown precincts, used when no map is configured.
pub const DEMO_PRECINCT_MAP: &str = include_str!("../config/demo-precincts.geojson");

pub struct Router {
    pub rules: RuleTable,
    pub precincts: PrecinctMap,
}

impl Router {
    pub fn load(rules_path: Option<&Path>, map_path: Option<&Path>) -> anyhow::Result<Self> {
        let rules = match rules_path {
            Some(path) => RuleTable::load(path)?,
            None => RuleTable::from_toml_str(DEFAULT_RULES).context("built-in routing rules")?,
        };
        let precincts = match map_path {
            Some(path) => PrecinctMap::load(path)?,
            None => PrecinctMap::from_geojson_str(DEMO_PRECINCT_MAP)
                .context("built-in demo precinct map")?,
        };
        Ok(Self { rules, precincts })
    }

    pub fn decide(
        &self,
        complaint_type: &str,
        descriptor: &str,
        location: Option<(f64, f64)>,
    ) -> RouteDecision {
        decision::decide(
            &self.rules,
            &self.precincts,
            complaint_type,
            descriptor,
            location,
        )
    }
}

#[cfg(test)]
mod tests {
    use dispatch311_domain::taxonomy::COMPLAINT_TYPES;
    use dispatch311_proto::routing::v1::RouteOutcome;

    use super::*;

    #[test]
    fn every_type_intake_accepts_has_a_rule() {
        let router = Router::load(None, None).unwrap();
        let unrouted: Vec<&str> = COMPLAINT_TYPES
            .iter()
            .map(|t| t.name)
            .filter(|name| router.rules.match_rule(name, "").is_none())
            .collect();
        assert!(
            unrouted.is_empty(),
            "types intake accepts but routing would send to triage: {unrouted:?}"
        );
    }

    #[test]
    fn police_types_are_dispatched_and_the_rest_referred() {
        let router = Router::load(None, None).unwrap();
        for t in COMPLAINT_TYPES.iter().filter(|t| t.police_matter) {
            let decision = router.decide(t.name, "", Some((40.7484, -73.9857)));
            assert_eq!(
                decision.outcome,
                RouteOutcome::Dispatch as i32,
                "{} should be police work",
                t.name
            );
        }
    }

    #[test]
    fn the_demo_map_places_the_empire_state_building_in_midtown_south() {
        let router = Router::load(None, None).unwrap();
        assert_eq!(router.precincts.precinct_at(40.7484, -73.9857), Some("14"));
    }
}
