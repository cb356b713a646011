//! The public texts of the resolution codes, as the city publishes them with
//! each closed police request.

use dispatch311_proto::common::v1::ResolutionCode;

pub fn public_text(code: ResolutionCode) -> &'static str {
    use ResolutionCode as R;
    match code {
        R::ActionTaken => {
            "The Police Department responded to the complaint and took action to fix the condition."
        }
        R::SummonsIssued => "The Police Department issued a summons in response to the complaint.",
        R::NoEvidence => {
            "The Police Department responded to the complaint and with the information available observed no evidence of the violation at that time."
        }
        R::PoliceActionNotNecessary => {
            "The Police Department responded to the complaint and determined that police action was not necessary."
        }
        R::UnableToGainEntry => {
            "The Police Department responded to the complaint but officers were unable to gain entry into the premises."
        }
        R::ConditionGoneOnArrival => {
            "The Police Department responded and upon arrival those responsible for the condition were gone."
        }
        R::Duplicate => {
            "The Police Department responded to the complaint and a report was already filed for this condition (duplicate)."
        }
        R::Referred => "The Police Department referred the complaint to another agency.",
        R::OutsideJurisdiction => {
            "This complaint does not fall under the Police Department's jurisdiction."
        }
        R::Unspecified => "",
    }
}

/// Outcomes that claim officers went to the scene: they need an arrival near
/// the incident before the job may be closed with them.
pub fn claims_visit(code: ResolutionCode) -> bool {
    use ResolutionCode as R;
    matches!(
        code,
        R::ActionTaken
            | R::SummonsIssued
            | R::NoEvidence
            | R::ConditionGoneOnArrival
            | R::UnableToGainEntry
    )
}
