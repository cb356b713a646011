//! The routing table and precinct map in force, loaded once at start.

use std::path::Path;

use anyhow::Context as _;
use dispatch311_proto::routing::v1::RouteDecision;

use crate::{
    decision::{self, RouteRequest},
    precincts::PrecinctMap,
    rules::RuleTable,
};

/// The rules the project ships, used when no rules file is configured.
pub const DEFAULT_RULES: &str = include_str!("../config/rules.toml");
/// The city's 78 NYPD precincts (NYC Open Data, simplified; see
/// `config/nypd-precincts.md`), used when no map is configured.
pub const DEFAULT_PRECINCT_MAP: &str = include_str!("../config/nypd-precincts.geojson");

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
            None => PrecinctMap::from_geojson_str(DEFAULT_PRECINCT_MAP)
                .context("built-in precinct map")?,
        };
        Ok(Self { rules, precincts })
    }

    pub fn decide(&self, request: &RouteRequest<'_>) -> RouteDecision {
        decision::decide(&self.rules, &self.precincts, request)
    }
}

#[cfg(test)]
mod tests {
    use dispatch311_proto::routing::v1::RouteOutcome;

    use super::*;

    fn at(complaint_type: &str, location: Option<(f64, f64)>) -> RouteDecision {
        let router = Router::load(None, None).unwrap();
        router.decide(&RouteRequest {
            complaint_type,
            location,
            ..RouteRequest::default()
        })
    }

    #[test]
    fn the_default_router_places_a_point_in_every_borough() {
        let router = Router::load(None, None).unwrap();
        assert_eq!(router.precincts.len(), 78);
        for ((lat, lon), precinct) in [
            ((40.7484, -73.9857), "14"),
            ((40.6826, -73.9754), "78"),
            ((40.8296, -73.9262), "44"),
            ((40.7580, -73.8303), "109"),
            ((40.6437, -74.0736), "120"),
        ] {
            let decision = at("Illegal Parking", Some((lat, lon)));
            assert_eq!(decision.outcome(), RouteOutcome::Dispatch);
            assert_eq!(decision.precinct, precinct, "{lat},{lon}");
        }
        let harbour = at("Illegal Parking", Some((40.6700, -74.0500)));
        assert_eq!(harbour.outcome(), RouteOutcome::Triage);
        assert!(
            harbour
                .explanation
                .iter()
                .any(|line| line.ends_with("is outside every precinct on the map")),
            "{:?}",
            harbour.explanation
        );
    }

    #[test]
    fn every_nypd_dispatch_rule_reaches_a_precinct_with_its_jurisdiction() {
        let router = Router::load(None, None).unwrap();
        let police = router.rules.rules().iter().filter(|rule| {
            rule.agency == "NYPD" && rule.outcome == crate::rules::RuleOutcome::Dispatch
        });
        for rule in police {
            let decision = router.decide(&RouteRequest {
                complaint_type: &rule.complaint_type,
                descriptor: rule.descriptor.as_deref().unwrap_or(""),
                location: Some((40.7484, -73.9857)),
                has_street_address: false,
            });
            assert_eq!(decision.outcome(), RouteOutcome::Dispatch, "{}", rule.id);
            assert_eq!(decision.complaint_type, rule.complaint_type);
            assert_eq!(decision.police_matter, rule.police_matter, "{}", rule.id);
        }
    }
}
