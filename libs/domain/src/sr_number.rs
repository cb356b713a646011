//! Service request numbers: what a complainant reads out on the phone.
//!
//! Format `SR-<year>-<sequence>`, the sequence zero-padded to seven digits
//! (e.g. `SR-2026-0000042`). The sequence comes from intake's database, so
//! numbers are unique across replicas; the year makes them easy to read.

use std::{fmt, str::FromStr};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SrNumber {
    year: i32,
    sequence: i64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a service request number (expected SR-YYYY-NNNNNNN): {0}")]
pub struct InvalidSrNumber(String);

impl SrNumber {
    pub fn new(year: i32, sequence: i64) -> Self {
        debug_assert!(sequence > 0, "sequences start at 1");
        Self { year, sequence }
    }

    pub fn year(&self) -> i32 {
        self.year
    }

    pub fn sequence(&self) -> i64 {
        self.sequence
    }
}

impl fmt::Display for SrNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SR-{:04}-{:07}", self.year, self.sequence)
    }
}

impl FromStr for SrNumber {
    type Err = InvalidSrNumber;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidSrNumber(s.chars().take(40).collect());
        let rest = s.trim().strip_prefix("SR-").ok_or_else(invalid)?;
        let (year, sequence) = rest.split_once('-').ok_or_else(invalid)?;
        if year.len() != 4 || sequence.len() < 7 || !sequence.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let year = year.parse().map_err(|_| invalid())?;
        let sequence: i64 = sequence.parse().map_err(|_| invalid())?;
        if sequence < 1 {
            return Err(invalid());
        }
        Ok(Self { year, sequence })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_back() {
        let number = SrNumber::new(2026, 42);
        assert_eq!(number.to_string(), "SR-2026-0000042");
        assert_eq!("SR-2026-0000042".parse::<SrNumber>(), Ok(number));
    }

    #[test]
    fn grows_past_seven_digits() {
        let number = SrNumber::new(2026, 12_345_678);
        assert_eq!(number.to_string(), "SR-2026-12345678");
        assert_eq!(number.to_string().parse::<SrNumber>(), Ok(number));
    }

    #[test]
    fn rejects_malformed_numbers() {
        for bad in [
            "",
            "SR-2026-42",
            "sr-2026-0000042",
            "SR-26-0000042",
            "SR-2026-00000x2",
            "SR-2026-0000000",
        ] {
            assert!(bad.parse::<SrNumber>().is_err(), "{bad} should be rejected");
        }
    }
}
