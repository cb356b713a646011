//! The resolution codes of police 311 work: for each, the public text the city
//! publishes with a closed request, and what closing a job with it needs.
//!
//! One table, [`RESOLUTION_RULES`], so no closing code can end police
//! responsibility unchecked: a code whose public words say the police went
//! there needs a recorded arrival near the place; handing a police matter to
//! someone else needs a supervisor's approved re-route, never a plain close; a
//! duplicate must name the job it duplicates. Dispatch enforces the table at
//! closure; ARCHITECTURE.md shows it.

use dispatch311_proto::common::v1::ResolutionCode;

/// Something closing a job with a resolution code needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosingNeed {
    /// An arrival on scene recorded within the on-scene radius of the place:
    /// the public text says officers were there.
    ArrivalNearScene,
    /// A summons number on the close.
    SummonsNumber,
    /// Another job of the same complaint type at the same place (open or
    /// closed), named on the close; or a supervisor's written reason.
    LinkedDuplicate,
    /// For a police matter: never a plain close. Only a supervisor's approved
    /// re-route (`ApproveReroute`, with a reason) hands it to another agency.
    /// Another agency's work that reached the police may be closed so.
    SupervisorRerouteIfPoliceMatter,
}

/// What one resolution code means and needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolutionRule {
    pub code: ResolutionCode,
    /// The city's public words, shown on the request's public timeline. They
    /// never claim a visit the code does not require an arrival for.
    pub public_text: &'static str,
    pub needs: &'static [ClosingNeed],
}

use ClosingNeed as N;
use ResolutionCode as R;

/// Every resolution code a job can be closed with, and what it needs.
pub const RESOLUTION_RULES: &[ResolutionRule] = &[
    ResolutionRule {
        code: R::ActionTaken,
        public_text: "The Police Department responded to the complaint and took action to fix the condition.",
        needs: &[N::ArrivalNearScene],
    },
    ResolutionRule {
        code: R::SummonsIssued,
        public_text: "The Police Department issued a summons in response to the complaint.",
        needs: &[N::ArrivalNearScene, N::SummonsNumber],
    },
    ResolutionRule {
        code: R::NoEvidence,
        public_text: "The Police Department responded to the complaint and with the information available observed no evidence of the violation at that time.",
        needs: &[N::ArrivalNearScene],
    },
    // "Determined that police action was not necessary" is the closure the
    // published analyses found done in minutes without anyone going: its
    // words say the police responded, so it needs the arrival.
    ResolutionRule {
        code: R::PoliceActionNotNecessary,
        public_text: "The Police Department responded to the complaint and determined that police action was not necessary.",
        needs: &[N::ArrivalNearScene],
    },
    ResolutionRule {
        code: R::UnableToGainEntry,
        public_text: "The Police Department responded to the complaint but officers were unable to gain entry into the premises.",
        needs: &[N::ArrivalNearScene],
    },
    ResolutionRule {
        code: R::ConditionGoneOnArrival,
        public_text: "The Police Department responded and upon arrival those responsible for the condition were gone.",
        needs: &[N::ArrivalNearScene],
    },
    ResolutionRule {
        code: R::Duplicate,
        public_text: "The Police Department found that a report was already filed for this condition (duplicate).",
        needs: &[N::LinkedDuplicate],
    },
    ResolutionRule {
        code: R::Referred,
        public_text: "The Police Department referred the complaint to another agency.",
        needs: &[N::SupervisorRerouteIfPoliceMatter],
    },
    ResolutionRule {
        code: R::OutsideJurisdiction,
        public_text: "This complaint does not fall under the Police Department's jurisdiction.",
        needs: &[N::SupervisorRerouteIfPoliceMatter],
    },
];

/// The rule of `code`; `None` for `Unspecified`, which closes nothing.
pub fn rule(code: ResolutionCode) -> Option<&'static ResolutionRule> {
    RESOLUTION_RULES.iter().find(|rule| rule.code == code)
}

/// Whether closing with `code` needs `need`.
pub fn needs(code: ResolutionCode, need: ClosingNeed) -> bool {
    rule(code).is_some_and(|rule| rule.needs.contains(&need))
}

pub fn public_text(code: ResolutionCode) -> &'static str {
    rule(code).map_or("", |rule| rule.public_text)
}

/// Outcomes that claim officers went to the scene: they need an arrival near
/// the incident before the job may be closed with them.
pub fn claims_visit(code: ResolutionCode) -> bool {
    needs(code, ClosingNeed::ArrivalNearScene)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_one_rule() {
        for value in 1..=20 {
            let Ok(code) = ResolutionCode::try_from(value) else {
                continue;
            };
            let rules = RESOLUTION_RULES.iter().filter(|r| r.code == code).count();
            assert_eq!(rules, 1, "{code:?}");
        }
        assert!(rule(ResolutionCode::Unspecified).is_none());
        assert_eq!(public_text(ResolutionCode::Unspecified), "");
    }

    /// The public words never claim a visit the code lets a job close without.
    #[test]
    fn only_codes_that_need_an_arrival_say_the_police_responded() {
        for rule in RESOLUTION_RULES {
            let says_visit = rule.public_text.contains("responded")
                || rule.public_text.contains("upon arrival")
                || rule.public_text.contains("issued a summons");
            assert_eq!(
                says_visit,
                rule.needs.contains(&ClosingNeed::ArrivalNearScene),
                "{:?}: {}",
                rule.code,
                rule.public_text
            );
        }
    }

    #[test]
    fn handing_over_and_duplicates_have_their_own_needs() {
        assert!(needs(
            ResolutionCode::Referred,
            ClosingNeed::SupervisorRerouteIfPoliceMatter
        ));
        assert!(needs(
            ResolutionCode::OutsideJurisdiction,
            ClosingNeed::SupervisorRerouteIfPoliceMatter
        ));
        assert!(needs(
            ResolutionCode::Duplicate,
            ClosingNeed::LinkedDuplicate
        ));
        assert!(claims_visit(ResolutionCode::PoliceActionNotNecessary));
        assert!(!claims_visit(ResolutionCode::Duplicate));
        assert!(needs(
            ResolutionCode::SummonsIssued,
            ClosingNeed::SummonsNumber
        ));
    }
}
