//! Complaint type and descriptor names as integrators send them.
//!
//! Intake accepts any complaint type a real 311 system files — old names,
//! other agencies' types, types no rule knows yet — and routing decides what
//! happens to it (a rule, an alias of a rule, or 311 triage). So a name is
//! refused only when it cannot be a name at all: empty, too long, control
//! characters, or no letter or digit in it. Intake and routing check names
//! with these same functions, so both refuse exactly the same input.

/// Longest complaint type or descriptor, in characters. The city's longest
/// real complaint type is under 60 characters.
pub const MAX_NAME_CHARS: usize = 100;

/// Why a complaint type or descriptor is not a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("required")]
    Empty,
    #[error("at most {MAX_NAME_CHARS} characters")]
    TooLong,
    #[error("must not contain control characters")]
    ControlCharacter,
    #[error("must contain a letter or a digit")]
    NoLetterOrDigit,
}

/// A complaint type as it is stored and routed: spaces at either end taken
/// off and every run of white space made one space; case kept as sent.
pub fn normalize_complaint_type(raw: &str) -> Result<String, NameError> {
    let name = normalize_name(raw)?;
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    Ok(name)
}

/// A descriptor: as [`normalize_complaint_type`], but may be empty.
pub fn normalize_descriptor(raw: &str) -> Result<String, NameError> {
    if raw.trim().is_empty() {
        return Ok(String::new());
    }
    normalize_name(raw)
}

fn normalize_name(raw: &str) -> Result<String, NameError> {
    // Counted before normalising: a megabyte of spaces is not a short name.
    if raw.chars().count() > MAX_NAME_CHARS * 4 {
        return Err(NameError::TooLong);
    }
    if raw
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(NameError::ControlCharacter);
    }
    let name = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(NameError::TooLong);
    }
    if !name.is_empty() && !name.chars().any(char::is_alphanumeric) {
        return Err(NameError::NoLetterOrDigit);
    }
    Ok(name)
}

/// The key two spellings of one name share: lower case, one space between
/// words. "HEAT/HOT WATER" and "Heat/Hot  Water" match; "Animal-Abuse" and
/// "Animal Abuse" do not (that takes an alias in the routing rules).
pub fn match_key(name: &str) -> String {
    name.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_and_unknown_types_are_names() {
        for name in [
            "Illegal Parking",
            "HEAT/HOT WATER",
            "DOF Property - Owner Issue",
            "SCRIE",
            "Noise - House of Worship",
            "Emergency Response Team (ERT)",
            "Bike/Roller/Skate Chronic",
            "A type nobody has filed before",
            "Ruído",
            "311",
        ] {
            assert_eq!(normalize_complaint_type(name).as_deref(), Ok(name));
        }
    }

    #[test]
    fn white_space_is_normalised_and_case_kept() {
        assert_eq!(
            normalize_complaint_type("  illegal \t  parking\n").as_deref(),
            Ok("illegal parking")
        );
        assert_eq!(normalize_descriptor("   ").as_deref(), Ok(""));
        assert_eq!(
            normalize_descriptor(" Blocked  Hydrant ").as_deref(),
            Ok("Blocked Hydrant")
        );
    }

    #[test]
    fn empty_long_control_and_garbage_names_are_refused() {
        assert_eq!(normalize_complaint_type(""), Err(NameError::Empty));
        assert_eq!(normalize_complaint_type(" \t "), Err(NameError::Empty));
        assert_eq!(
            normalize_complaint_type(&"x".repeat(MAX_NAME_CHARS + 1)),
            Err(NameError::TooLong)
        );
        assert_eq!(
            normalize_complaint_type(&" ".repeat(1_000_000)),
            Err(NameError::TooLong)
        );
        assert!(normalize_complaint_type(&"x".repeat(MAX_NAME_CHARS)).is_ok());
        assert_eq!(
            normalize_complaint_type("Noise\u{0}"),
            Err(NameError::ControlCharacter)
        );
        assert_eq!(
            normalize_complaint_type("\u{1b}[31m"),
            Err(NameError::ControlCharacter)
        );
        assert_eq!(
            normalize_complaint_type("-- / --"),
            Err(NameError::NoLetterOrDigit)
        );
        assert_eq!(normalize_descriptor("!!!"), Err(NameError::NoLetterOrDigit));
    }

    #[test]
    fn match_keys_ignore_case_and_spacing_only() {
        assert_eq!(match_key(" HEAT/HOT  Water"), match_key("heat/hot water"));
        assert_ne!(match_key("Animal-Abuse"), match_key("Animal Abuse"));
    }
}
