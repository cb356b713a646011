//! Whether a new report is the same incident as an open job: the rule
//! routing gives each complaint type ([`DuplicateRule`]) applied to the two
//! reports. Dispatch links a match to the job instead of queueing another.

use chrono::{DateTime, Utc};
use dispatch311_proto::common::v1::DuplicateRule;

use crate::distance::meters_between;

/// What the rule compares of a report (or of a job's first report).
#[derive(Debug, Clone, Copy)]
pub struct Report<'a> {
    pub precinct: &'a str,
    pub agency: &'a str,
    pub complaint_type: &'a str,
    pub descriptor: &'a str,
    pub street_address: &'a str,
    pub location: Option<(f64, f64)>,
    /// When the complainant filed it.
    pub filed_at: DateTime<Utc>,
}

/// How a report matched a job: by the address, or by the distance between
/// the two places (metres).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Match {
    SameAddress,
    Within(f64),
}

impl Match {
    /// Metres between the places, 0 for the same address (a nearer match
    /// wins).
    pub fn metres(self) -> f64 {
        match self {
            Match::SameAddress => 0.0,
            Match::Within(metres) => metres,
        }
    }

    /// How the job's event log says it.
    pub fn describe(self) -> String {
        match self {
            Match::SameAddress => "same address".to_owned(),
            Match::Within(metres) => format!("{} m away", metres.round()),
        }
    }
}

/// An address as two complainants may spell it: case, spacing and the
/// punctuation of "W. 14th St." aside. Empty when there is none.
pub fn normalised_address(address: &str) -> String {
    address
        .split(|c: char| c.is_whitespace() || c == '.' || c == ',')
        .filter(|word| !word.is_empty())
        .map(str::to_uppercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `report` is the same incident as the job first reported as
/// `job`, under `rule`: same precinct, agency and complaint type (and
/// descriptor when the rule says), filed within the window of the job's
/// first report (before or after it), at the same address or within the
/// radius. `None` when it is not.
pub fn same_incident(rule: &DuplicateRule, job: &Report<'_>, report: &Report<'_>) -> Option<Match> {
    if job.precinct != report.precinct
        || job.agency != report.agency
        || !job
            .complaint_type
            .eq_ignore_ascii_case(report.complaint_type)
    {
        return None;
    }
    if rule.match_descriptor && !job.descriptor.eq_ignore_ascii_case(report.descriptor) {
        return None;
    }
    // either way: reports filed moments apart may reach dispatch in the other
    // order, and the later-filed one may already be the job
    let apart = (report.filed_at - job.filed_at).abs();
    if apart > chrono::Duration::minutes(i64::from(rule.window_minutes)) {
        return None;
    }
    let address = normalised_address(report.street_address);
    if !address.is_empty() && address == normalised_address(job.street_address) {
        return Some(Match::SameAddress);
    }
    let metres = meters_between(job.location?, report.location?);
    (metres <= f64::from(rule.radius_m)).then_some(Match::Within(metres))
}

/// The job `report` belongs to among `jobs` (each with its first report):
/// the nearest match, then the oldest job. `None`: a new job.
pub fn best_match<'j, K>(
    rule: &DuplicateRule,
    jobs: impl IntoIterator<Item = (K, Report<'j>)>,
    report: &Report<'_>,
) -> Option<(K, Match)> {
    jobs.into_iter()
        .filter_map(|(key, job)| same_incident(rule, &job, report).map(|m| (key, m, job.filed_at)))
        .min_by(|a, b| a.1.metres().total_cmp(&b.1.metres()).then(a.2.cmp(&b.2)))
        .map(|(key, m, _)| (key, m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> DuplicateRule {
        DuplicateRule {
            radius_m: 30,
            window_minutes: 120,
            match_descriptor: false,
            raise_priority_at_reports: 3,
        }
    }

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_677_600_000 + minute * 60, 0).unwrap()
    }

    fn driveway(address: &'static str, location: (f64, f64), minute: i64) -> Report<'static> {
        Report {
            precinct: "75",
            agency: "NYPD",
            complaint_type: "Blocked Driveway",
            descriptor: "No Access",
            street_address: address,
            location: Some(location),
            filed_at: at(minute),
        }
    }

    #[test]
    fn the_same_address_spelled_another_way_within_the_window_is_one_incident() {
        let first = driveway("123 Linden Blvd.", (40.6600, -73.8900), 0);
        let second = driveway("123  LINDEN BLVD", (40.6610, -73.8900), 20);
        assert_eq!(
            same_incident(&rule(), &first, &second),
            Some(Match::SameAddress)
        );
    }

    #[test]
    fn another_address_matches_only_within_the_radius() {
        let first = driveway("123 Linden Blvd", (40.6600, -73.8900), 0);
        // about 22 m north
        let near = driveway("125 Linden Blvd", (40.6602, -73.8900), 5);
        let m = same_incident(&rule(), &first, &near).unwrap();
        assert!(
            matches!(m, Match::Within(d) if (20.0..25.0).contains(&d)),
            "{m:?}"
        );
        // about 111 m north: another car
        let far = driveway("141 Linden Blvd", (40.6610, -73.8900), 5);
        assert_eq!(same_incident(&rule(), &first, &far), None);
    }

    #[test]
    fn the_window_counts_from_the_first_report_either_way() {
        let first = driveway("123 Linden Blvd", (40.66, -73.89), 0);
        let at = |minute| driveway("123 Linden Blvd", (40.66, -73.89), minute);
        assert!(same_incident(&rule(), &first, &at(120)).is_some());
        assert_eq!(same_incident(&rule(), &first, &at(121)), None);
        // filed a moment before the job's first report, queued after it
        assert!(same_incident(&rule(), &first, &at(-1)).is_some());
        assert_eq!(same_incident(&rule(), &first, &at(-121)), None);
    }

    #[test]
    fn other_types_precincts_agencies_and_when_asked_descriptors_never_match() {
        let first = driveway("123 Linden Blvd", (40.66, -73.89), 0);
        let mut other = driveway("123 Linden Blvd", (40.66, -73.89), 1);
        other.complaint_type = "Illegal Parking";
        assert_eq!(same_incident(&rule(), &first, &other), None);
        let mut other = driveway("123 Linden Blvd", (40.66, -73.89), 1);
        other.precinct = "73";
        assert_eq!(same_incident(&rule(), &first, &other), None);
        let mut other = driveway("123 Linden Blvd", (40.66, -73.89), 1);
        other.agency = "DOT";
        assert_eq!(same_incident(&rule(), &first, &other), None);
        let mut partial = driveway("123 Linden Blvd", (40.66, -73.89), 1);
        partial.descriptor = "Partial Access";
        assert!(same_incident(&rule(), &first, &partial).is_some());
        let strict = DuplicateRule {
            match_descriptor: true,
            ..rule()
        };
        assert_eq!(same_incident(&strict, &first, &partial), None);
    }

    #[test]
    fn without_an_address_or_a_place_nothing_matches() {
        let mut first = driveway("", (40.66, -73.89), 0);
        first.location = None;
        let mut second = driveway("", (40.66, -73.89), 1);
        second.location = None;
        assert_eq!(same_incident(&rule(), &first, &second), None);
    }

    #[test]
    fn the_nearest_then_the_oldest_job_wins() {
        let report = driveway("9 Elm St", (40.6600, -73.8900), 30);
        let jobs = [
            ("far", driveway("11 Elm St", (40.66018, -73.8900), 0)),
            (
                "same-address-newer",
                driveway("9 ELM ST", (40.6601, -73.8900), 10),
            ),
            (
                "same-address-older",
                driveway("9 Elm St.", (40.6601, -73.8900), 5),
            ),
        ];
        assert_eq!(
            best_match(&rule(), jobs, &report),
            Some(("same-address-older", Match::SameAddress))
        );
        assert_eq!(
            best_match(&rule(), Vec::<(u8, Report)>::new(), &report),
            None
        );
    }
}
