//! A complainant's survey answer: the city's questions, checked into a
//! domain value before anything is stored, and the short names the answer is
//! stored and reported under.

use dispatch311_grpc::status::FieldViolations;
use dispatch311_proto::survey::v1::{
    Agreement, ConditionCorrected, DissatisfactionReason, SubmitSurveyResponseRequest,
};
use tonic::Status;

/// Longest comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 2_000;
/// Longer than any token this service hands out; longer input is not a token.
const MAX_TOKEN_CHARS: usize = 256;

/// A checked answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub agreement: Agreement,
    /// Set exactly when the complainant disagreed.
    pub reason: Option<DissatisfactionReason>,
    /// `Unspecified` when the question was not answered.
    pub condition_corrected: ConditionCorrected,
    /// Trimmed; may be empty.
    pub comment: String,
}

impl Answer {
    /// "The agency did not correct the issue and the request should be reopened."
    pub fn asks_to_reopen(&self) -> bool {
        self.reason == Some(DissatisfactionReason::NotCorrectedReopen)
    }

    pub fn reason_name(&self) -> &'static str {
        self.reason.map_or("", reason_name)
    }

    pub fn condition_name(&self) -> &'static str {
        condition_name(self.condition_corrected)
    }
}

/// The token and the checked answer of a request, or INVALID_ARGUMENT listing
/// every problem. Never echoes the comment or the token.
pub fn validate(request: &SubmitSurveyResponseRequest) -> Result<(String, Answer), Status> {
    let mut v = FieldViolations::new();
    let token = survey_token(&request.survey_token, &mut v);

    let agreement = match Agreement::try_from(request.agreement) {
        Ok(Agreement::Unspecified) => {
            v.add(
                "agreement",
                "required: how much the complainant agrees they are satisfied",
            );
            Agreement::Unspecified
        }
        Ok(agreement) => agreement,
        Err(_) => {
            v.add("agreement", "is not a value of the agreement scale");
            Agreement::Unspecified
        }
    };
    let disagreed = matches!(agreement, Agreement::Disagree | Agreement::StronglyDisagree);
    let reason = match DissatisfactionReason::try_from(request.reason) {
        Ok(DissatisfactionReason::Unspecified) => {
            if disagreed {
                v.add(
                    "reason",
                    "required when the complainant disagrees or strongly disagrees",
                );
            }
            None
        }
        Ok(reason) => {
            if !disagreed && agreement != Agreement::Unspecified {
                v.add(
                    "reason",
                    "only when the complainant disagrees or strongly disagrees",
                );
            }
            Some(reason)
        }
        Err(_) => {
            v.add("reason", "is not one of the dissatisfaction reasons");
            None
        }
    };
    let condition_corrected = match ConditionCorrected::try_from(request.condition_corrected) {
        Ok(condition) => condition,
        Err(_) => {
            v.add("condition_corrected", "is not one of YES, NO, DONT_KNOW");
            ConditionCorrected::Unspecified
        }
    };
    let says_not_corrected = matches!(
        reason,
        Some(DissatisfactionReason::NotCorrected | DissatisfactionReason::NotCorrectedReopen)
    );
    if says_not_corrected && condition_corrected == ConditionCorrected::Yes {
        v.add(
            "condition_corrected",
            "YES contradicts the reason that the issue was not corrected",
        );
    }
    let comment = request.comment.trim();
    let comment_chars = comment.chars().count();
    if comment_chars > MAX_COMMENT_CHARS {
        v.add(
            "comment",
            format!("at most {MAX_COMMENT_CHARS} characters (got {comment_chars})"),
        );
    }
    v.into_result()?;
    Ok((
        token,
        Answer {
            agreement,
            reason: if disagreed { reason } else { None },
            condition_corrected,
            comment: comment.to_string(),
        },
    ))
}

/// The token of a request, trimmed; a violation of `survey_token` when it
/// is missing or far too long to be one.
pub fn survey_token(token: &str, v: &mut FieldViolations) -> String {
    let token = token.trim();
    if token.is_empty() {
        v.add(
            "survey_token",
            "required: the token listed with the closed request",
        );
    } else if token.len() > MAX_TOKEN_CHARS {
        v.add("survey_token", "is not a survey token");
    }
    token.to_string()
}

pub fn agreement_name(agreement: Agreement) -> &'static str {
    strip(agreement.as_str_name(), "AGREEMENT_")
}

pub fn agreement_from_name(name: &str) -> Agreement {
    Agreement::from_str_name(&format!("AGREEMENT_{name}")).unwrap_or_default()
}

/// e.g. `NOT_CORRECTED_REOPEN`.
pub fn reason_name(reason: DissatisfactionReason) -> &'static str {
    if reason == DissatisfactionReason::Unspecified {
        return "";
    }
    strip(reason.as_str_name(), "DISSATISFACTION_REASON_")
}

pub fn reason_from_name(name: &str) -> DissatisfactionReason {
    DissatisfactionReason::from_str_name(&format!("DISSATISFACTION_REASON_{name}"))
        .unwrap_or_default()
}

/// `""` when the question was not answered.
pub fn condition_name(condition: ConditionCorrected) -> &'static str {
    if condition == ConditionCorrected::Unspecified {
        return "";
    }
    strip(condition.as_str_name(), "CONDITION_CORRECTED_")
}

pub fn condition_from_name(name: &str) -> ConditionCorrected {
    ConditionCorrected::from_str_name(&format!("CONDITION_CORRECTED_{name}")).unwrap_or_default()
}

fn strip(full: &'static str, prefix: &str) -> &'static str {
    full.strip_prefix(prefix).unwrap_or(full)
}

#[cfg(test)]
mod tests {
    use tonic::Code;
    use tonic_types::StatusExt as _;

    use super::*;

    fn request(agreement: Agreement, reason: DissatisfactionReason) -> SubmitSurveyResponseRequest {
        SubmitSurveyResponseRequest {
            survey_token: "tok".into(),
            agreement: agreement as i32,
            reason: reason as i32,
            condition_corrected: ConditionCorrected::DontKnow as i32,
            comment: "  thanks  ".into(),
        }
    }

    fn violated_fields(status: Status) -> Vec<String> {
        assert_eq!(status.code(), Code::InvalidArgument);
        status
            .get_details_bad_request()
            .expect("field violations")
            .field_violations
            .into_iter()
            .map(|violation| violation.field)
            .collect()
    }

    #[test]
    fn a_satisfied_answer_needs_no_reason() {
        let (token, answer) = validate(&request(
            Agreement::Agree,
            DissatisfactionReason::Unspecified,
        ))
        .unwrap();
        assert_eq!(token, "tok");
        assert_eq!(answer.reason, None);
        assert_eq!(answer.comment, "thanks");
        assert!(!answer.asks_to_reopen());
    }

    #[test]
    fn a_dissatisfied_answer_needs_a_reason_and_a_satisfied_one_may_not_have_one() {
        let status = validate(&request(
            Agreement::Disagree,
            DissatisfactionReason::Unspecified,
        ))
        .unwrap_err();
        assert_eq!(violated_fields(status), ["reason"]);
        let status = validate(&request(
            Agreement::StronglyAgree,
            DissatisfactionReason::TookTooLong,
        ))
        .unwrap_err();
        assert_eq!(violated_fields(status), ["reason"]);
        let status =
            validate(&request(Agreement::Neither, DissatisfactionReason::Other)).unwrap_err();
        assert_eq!(violated_fields(status), ["reason"]);

        let (_, answer) = validate(&request(
            Agreement::StronglyDisagree,
            DissatisfactionReason::NotCorrectedReopen,
        ))
        .unwrap();
        assert!(answer.asks_to_reopen());
        assert_eq!(answer.reason_name(), "NOT_CORRECTED_REOPEN");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let status = validate(&SubmitSurveyResponseRequest {
            survey_token: "   ".into(),
            agreement: 0,
            reason: 99,
            condition_corrected: 42,
            comment: "x".repeat(MAX_COMMENT_CHARS + 1),
        })
        .unwrap_err();
        assert_eq!(
            violated_fields(status),
            [
                "survey_token",
                "agreement",
                "reason",
                "condition_corrected",
                "comment"
            ]
        );
    }

    #[test]
    fn comments_are_counted_in_characters_not_bytes() {
        let mut at_limit = request(Agreement::Agree, DissatisfactionReason::Unspecified);
        at_limit.comment = "é".repeat(MAX_COMMENT_CHARS);
        assert!(validate(&at_limit).is_ok());
        at_limit.comment.push('é');
        let status = validate(&at_limit).unwrap_err();
        assert!(!status.message().contains('é'), "the comment is not echoed");
        assert_eq!(violated_fields(status), ["comment"]);
    }

    #[test]
    fn saying_it_was_corrected_contradicts_not_corrected() {
        let mut contradiction = request(
            Agreement::Disagree,
            DissatisfactionReason::NotCorrectedReopen,
        );
        contradiction.condition_corrected = ConditionCorrected::Yes as i32;
        assert_eq!(
            violated_fields(validate(&contradiction).unwrap_err()),
            ["condition_corrected"]
        );
    }

    #[test]
    fn names_round_trip() {
        for agreement in [Agreement::StronglyAgree, Agreement::StronglyDisagree] {
            assert_eq!(agreement_from_name(agreement_name(agreement)), agreement);
        }
        for reason in [
            DissatisfactionReason::NotCorrectedReopen,
            DissatisfactionReason::DidNotAddressRequest,
        ] {
            assert_eq!(reason_from_name(reason_name(reason)), reason);
        }
        assert_eq!(reason_name(DissatisfactionReason::Unspecified), "");
        assert_eq!(
            condition_from_name(condition_name(ConditionCorrected::DontKnow)),
            ConditionCorrected::DontKnow
        );
        assert_eq!(
            condition_from_name(condition_name(ConditionCorrected::Unspecified)),
            ConditionCorrected::Unspecified
        );
    }
}
