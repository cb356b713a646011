//! Reads the city's published 311 service requests (NYC Open Data, "311
//! Service Requests", 41 columns plus 5 computed region ids) so tests, replays
//! and the benchmark file real complaints instead of invented ones.
//!
//! Real exports contain errors. A row whose fields cannot be read (a date that
//! is not a date, half a coordinate pair, a short record) is handed back as a
//! [`RowProblem`] with the reason; it never panics and nothing is guessed.
//! Rows that parse but contradict themselves (a closed date before the created
//! date) are kept as they are and can be recognised with
//! [`CsvRequest::closed_before_created`].

use std::{
    collections::HashMap,
    fmt,
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use chrono::{
    DateTime, Datelike, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Weekday,
};
use dispatch311_domain::CityBounds;
use dispatch311_proto::{
    common::v1::{Address, Channel, GeoPoint, ResolutionCode},
    intake::v1::CreateServiceRequestRequest,
};

/// The half-day sample: 4,999 requests of 2023-02-28, 1,569 of them NYPD.
pub const HALF_DAY_FILE: &str = "nyc311/service-requests-2023-02-28.csv";
/// The smoke fixture: 100 requests of 2023-03-31, 85 of them NYPD.
pub const SMOKE_FILE: &str = "nyc311/service-requests-2023-03-31-smoke.csv";
/// The 78 NYPD precinct boundaries.
pub const PRECINCTS_FILE: &str = "nypd-precincts.geojson";

/// Where the city's data files are: `DISPATCH311_DATA_DIR`, or `../shared/data`
/// next to the workspace (fixed at compile time, so it works from any
/// working directory).
pub fn data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DISPATCH311_DATA_DIR").filter(|dir| !dir.is_empty()) {
        return PathBuf::from(dir);
    }
    // this crate lives in <workspace>/tests; the data sits next to the workspace
    let tests_crate = Path::new(env!("CARGO_MANIFEST_DIR"));
    let beside_workspace = tests_crate
        .parent()
        .and_then(Path::parent)
        .unwrap_or(tests_crate);
    beside_workspace.join("shared").join("data")
}

/// One row of the city's 311 export, with the columns dispatch311 uses.
/// Text fields are trimmed and otherwise exactly as published (including the
/// city's spelling, double spaces and mojibake); an empty field is `""`.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvRequest {
    /// The city's own SR id (`Unique Key`).
    pub unique_key: String,
    /// When the request was filed; New York local time with its UTC offset.
    pub created: DateTime<FixedOffset>,
    pub closed: Option<DateTime<FixedOffset>>,
    /// Agency acronym, e.g. "NYPD", "DSNY".
    pub agency: String,
    pub complaint_type: String,
    pub descriptor: String,
    pub location_type: String,
    pub incident_zip: String,
    pub incident_address: String,
    pub street_name: String,
    pub cross_street_1: String,
    pub cross_street_2: String,
    /// Set instead of an address for requests filed at a street corner.
    pub intersection_street_1: String,
    pub intersection_street_2: String,
    /// "" when the city wrote "Unspecified".
    pub borough: String,
    /// The city's status: "Closed", "Open", "In Progress", "Assigned"…
    pub status: String,
    /// The agency's public closing text, e.g. "The Police Department issued a
    /// summons in response to the complaint."; see [`resolution_code`].
    pub resolution_description: String,
    /// `Open Data Channel Type`: "MOBILE", "ONLINE", "PHONE", "UNKNOWN"…
    pub channel_type: String,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

/// A row that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    /// Line of the file where the record starts (the header is line 1).
    pub line: u64,
    /// The row's `Unique Key` when it could be read, else "".
    pub unique_key: String,
    pub reason: String,
}

impl fmt::Display for RowProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {} (unique key {:?}): {}",
            self.line, self.unique_key, self.reason
        )
    }
}

/// Every row of a file: those that were read and those that were not.
#[derive(Debug, Clone, Default)]
pub struct CsvRows {
    pub requests: Vec<CsvRequest>,
    pub rejected: Vec<RowProblem>,
}

/// The rows of a 311 export that could be read; rows that could not are left
/// out (use [`read_rows`] to see them and why). Fails only when the file
/// cannot be opened, is not CSV, or lacks a column this reader needs.
pub fn read_requests(path: impl AsRef<Path>) -> anyhow::Result<Vec<CsvRequest>> {
    Ok(read_rows(path)?.requests)
}

/// Every row of a 311 export, each either read or rejected with a reason.
pub fn read_rows(path: impl AsRef<Path>) -> anyhow::Result<CsvRows> {
    let path = path.as_ref();
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open 311 export {}", path.display()))?;
    read_rows_from(std::io::BufReader::new(file))
        .with_context(|| format!("cannot read 311 export {}", path.display()))
}

/// [`read_rows`] of an export's bytes from anywhere (a file, a download, a
/// fuzzer).
pub fn read_rows_from(source: impl std::io::Read) -> anyhow::Result<CsvRows> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        // a short or long record is one bad row, not a bad file
        .flexible(true)
        .from_reader(source);
    let header = reader
        .byte_headers()
        .context("cannot read the header")?
        .clone();
    let columns = Columns::find(&header).context("not a 311 service request export")?;

    let mut rows = CsvRows::default();
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(error) => return Err(error).context("cannot read a row"),
        }
        let line = record.position().map_or(0, |p| p.line());
        match parse_row(&columns, &record, header.len()) {
            Ok(request) => rows.requests.push(request),
            Err((unique_key, reason)) => rows.rejected.push(RowProblem {
                line,
                unique_key,
                reason,
            }),
        }
    }
    Ok(rows)
}

/// Column positions, found by name so a re-ordered export still reads.
struct Columns {
    positions: HashMap<&'static str, usize>,
}

const UNIQUE_KEY: &str = "Unique Key";
const CREATED_DATE: &str = "Created Date";
const CLOSED_DATE: &str = "Closed Date";
const AGENCY: &str = "Agency";
const COMPLAINT_TYPE: &str = "Complaint Type";
const DESCRIPTOR: &str = "Descriptor";
const LOCATION_TYPE: &str = "Location Type";
const INCIDENT_ZIP: &str = "Incident Zip";
const INCIDENT_ADDRESS: &str = "Incident Address";
const STREET_NAME: &str = "Street Name";
const CROSS_STREET_1: &str = "Cross Street 1";
const CROSS_STREET_2: &str = "Cross Street 2";
const INTERSECTION_STREET_1: &str = "Intersection Street 1";
const INTERSECTION_STREET_2: &str = "Intersection Street 2";
const BOROUGH: &str = "Borough";
const STATUS: &str = "Status";
const RESOLUTION_DESCRIPTION: &str = "Resolution Description";
const CHANNEL_TYPE: &str = "Open Data Channel Type";
const LATITUDE: &str = "Latitude";
const LONGITUDE: &str = "Longitude";

const USED_COLUMNS: &[&str] = &[
    UNIQUE_KEY,
    CREATED_DATE,
    CLOSED_DATE,
    AGENCY,
    COMPLAINT_TYPE,
    DESCRIPTOR,
    LOCATION_TYPE,
    INCIDENT_ZIP,
    INCIDENT_ADDRESS,
    STREET_NAME,
    CROSS_STREET_1,
    CROSS_STREET_2,
    INTERSECTION_STREET_1,
    INTERSECTION_STREET_2,
    BOROUGH,
    STATUS,
    RESOLUTION_DESCRIPTION,
    CHANNEL_TYPE,
    LATITUDE,
    LONGITUDE,
];

impl Columns {
    fn find(header: &csv::ByteRecord) -> anyhow::Result<Self> {
        let names: Vec<String> = header
            .iter()
            .map(|name| String::from_utf8_lossy(name).trim().to_string())
            .collect();
        let mut positions = HashMap::new();
        let mut missing = Vec::new();
        for &column in USED_COLUMNS {
            match names.iter().position(|name| name == column) {
                Some(position) => {
                    positions.insert(column, position);
                }
                None => missing.push(column),
            }
        }
        anyhow::ensure!(
            missing.is_empty(),
            "missing columns: {}",
            missing.join(", ")
        );
        Ok(Self { positions })
    }

    fn text<'r>(
        &self,
        record: &'r csv::ByteRecord,
        column: &'static str,
    ) -> Result<&'r str, String> {
        let raw = record.get(self.positions[column]).unwrap_or_default();
        std::str::from_utf8(raw)
            .map(str::trim)
            .map_err(|_| format!("{column}: not valid UTF-8"))
    }
}

fn parse_row(
    columns: &Columns,
    record: &csv::ByteRecord,
    expected_fields: usize,
) -> Result<CsvRequest, (String, String)> {
    let unique_key = columns
        .text(record, UNIQUE_KEY)
        .unwrap_or_default()
        .to_string();
    let fail = |reason: String| (unique_key.clone(), reason);
    if record.len() != expected_fields {
        return Err(fail(format!(
            "{} fields, the header has {expected_fields}",
            record.len()
        )));
    }
    if unique_key.is_empty() {
        return Err(fail(format!("{UNIQUE_KEY}: empty")));
    }
    let text = |column| {
        columns
            .text(record, column)
            .map(str::to_string)
            .map_err(&fail)
    };

    let created_text = text(CREATED_DATE)?;
    let created = parse_new_york_time(&created_text)
        .map_err(|why| fail(format!("{CREATED_DATE} {created_text:?}: {why}")))?;
    let closed_text = text(CLOSED_DATE)?;
    let closed = match closed_text.as_str() {
        "" => None,
        some => Some(
            parse_new_york_time(some)
                .map_err(|why| fail(format!("{CLOSED_DATE} {some:?}: {why}")))?,
        ),
    };

    let latitude = parse_coordinate(&text(LATITUDE)?, -90.0..=90.0)
        .map_err(|why| fail(format!("{LATITUDE}: {why}")))?;
    let longitude = parse_coordinate(&text(LONGITUDE)?, -180.0..=180.0)
        .map_err(|why| fail(format!("{LONGITUDE}: {why}")))?;
    if latitude.is_some() != longitude.is_some() {
        return Err(fail(format!(
            "only one of {LATITUDE} and {LONGITUDE} is given"
        )));
    }

    let borough = text(BOROUGH)?;
    Ok(CsvRequest {
        created,
        closed,
        agency: text(AGENCY)?,
        complaint_type: text(COMPLAINT_TYPE)?,
        descriptor: text(DESCRIPTOR)?,
        location_type: text(LOCATION_TYPE)?,
        incident_zip: text(INCIDENT_ZIP)?,
        incident_address: text(INCIDENT_ADDRESS)?,
        street_name: text(STREET_NAME)?,
        cross_street_1: text(CROSS_STREET_1)?,
        cross_street_2: text(CROSS_STREET_2)?,
        intersection_street_1: text(INTERSECTION_STREET_1)?,
        intersection_street_2: text(INTERSECTION_STREET_2)?,
        // the city's placeholder for "no borough" is not a borough
        borough: if borough.eq_ignore_ascii_case("unspecified") {
            String::new()
        } else {
            borough
        },
        status: text(STATUS)?,
        resolution_description: text(RESOLUTION_DESCRIPTION)?,
        channel_type: text(CHANNEL_TYPE)?,
        latitude,
        longitude,
        unique_key: unique_key.clone(),
    })
}

fn parse_coordinate(
    text: &str,
    range: std::ops::RangeInclusive<f64>,
) -> Result<Option<f64>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    let value: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if !value.is_finite() || !range.contains(&value) {
        return Err(format!("{text} is out of range"));
    }
    Ok(Some(value))
}

/// Parses the city's `MM/DD/YYYY hh:mm:ss AM/PM` New York local time.
///
/// The offset follows the US daylight-saving rules in force since 2007 (EDT,
/// -04:00, from the second Sunday of March 02:00 to the first Sunday of
/// November 02:00; EST, -05:00, otherwise). Earlier years had other rules and
/// are refused, as are local times that do not exist (the skipped hour in
/// March) or exist twice (the repeated hour in November): choosing for them
/// would invent data.
pub fn parse_new_york_time(text: &str) -> Result<DateTime<FixedOffset>, String> {
    let local = NaiveDateTime::parse_from_str(text.trim(), "%m/%d/%Y %I:%M:%S %p")
        .map_err(|_| "not a date of the form MM/DD/YYYY hh:mm:ss AM/PM".to_string())?;
    let offset = new_york_offset(local)?;
    match offset.from_local_datetime(&local) {
        LocalResult::Single(at) => Ok(at),
        // a fixed offset maps every local time to exactly one instant
        _ => Err("not a representable time".to_string()),
    }
}

fn new_york_offset(local: NaiveDateTime) -> Result<FixedOffset, String> {
    const FIRST_YEAR_OF_CURRENT_RULES: i32 = 2007;
    let est = FixedOffset::west_opt(5 * 3600).expect("-05:00 is a valid offset");
    let edt = FixedOffset::west_opt(4 * 3600).expect("-04:00 is a valid offset");
    let year = local.year();
    if year < FIRST_YEAR_OF_CURRENT_RULES {
        return Err(format!(
            "before {FIRST_YEAR_OF_CURRENT_RULES}, when New York's daylight-saving rules were different"
        ));
    }
    let dst_starts = nth_sunday(year, 3, 2)
        .and_hms_opt(2, 0, 0)
        .expect("02:00 is a valid time");
    let dst_ends = nth_sunday(year, 11, 1)
        .and_hms_opt(1, 0, 0)
        .expect("01:00 is a valid time");
    let hour_after = |at: NaiveDateTime| at + chrono::Duration::hours(1);
    if local >= dst_starts && local < hour_after(dst_starts) {
        return Err("does not exist in New York (clocks skip this hour)".to_string());
    }
    if local >= dst_ends && local < hour_after(dst_ends) {
        return Err("is ambiguous in New York (clocks repeat this hour)".to_string());
    }
    if local >= hour_after(dst_starts) && local < dst_ends {
        return Ok(edt);
    }
    Ok(est)
}

fn nth_sunday(year: i32, month: u32, n: u8) -> NaiveDate {
    NaiveDate::from_weekday_of_month_opt(year, month, Weekday::Sun, n)
        .expect("every month has a first and a second Sunday")
}

impl CsvRequest {
    /// Whether the city recorded a closed date earlier than the created date
    /// (a known error of the export).
    pub fn closed_before_created(&self) -> bool {
        self.closed.is_some_and(|closed| closed < self.created)
    }

    /// Whether the police department handled the request.
    pub fn is_nypd(&self) -> bool {
        self.agency == "NYPD"
    }

    /// Both coordinates, when the row has them.
    pub fn coordinates(&self) -> Option<(f64, f64)> {
        Some((self.latitude?, self.longitude?))
    }

    /// The intake channel for the city's `Open Data Channel Type`;
    /// `Unspecified` when the city does not know it ("UNKNOWN").
    pub fn channel(&self) -> Channel {
        match self.channel_type.to_ascii_uppercase().as_str() {
            "MOBILE" => Channel::MobileApp,
            "ONLINE" => Channel::Web,
            "PHONE" => Channel::Phone,
            // the city's exports say UNKNOWN for requests another agency's
            // system entered: they reach 311 as a partner agency's filing
            "UNKNOWN" | "OTHER" => Channel::PartnerAgency,
            _ => Channel::Unspecified,
        }
    }

    /// The request a complainant would have filed with intake: the row's own
    /// type, descriptor, place and channel. Nothing is invented: no
    /// description, no complainant, no photos, and no `observed_at` (the
    /// city's dates are older than intake accepts). Intake refuses the result
    /// when [`CsvRequest::why_not_fileable`] says why.
    pub fn to_create_request(&self, request_id: &str) -> CreateServiceRequestRequest {
        let location = self.coordinates().map(|(latitude, longitude)| GeoPoint {
            latitude,
            longitude,
        });
        // a street corner has no house number: its first street stands for the address
        let (street_address, cross_street) = if !self.incident_address.is_empty() {
            (self.incident_address.clone(), self.cross_street_1.clone())
        } else {
            (
                self.intersection_street_1.clone(),
                self.intersection_street_2.clone(),
            )
        };
        let postal_code = if is_five_digit_zip(&self.incident_zip) {
            self.incident_zip.clone()
        } else {
            String::new()
        };
        let address = Address {
            street_address,
            cross_street,
            borough: self.borough.clone(),
            postal_code,
        };
        let address_given = address != Address::default();
        CreateServiceRequestRequest {
            request_id: request_id.to_string(),
            complaint_type: self.complaint_type.clone(),
            descriptor: self.descriptor.clone(),
            location,
            address: address_given.then_some(address),
            description: String::new(),
            photos: Vec::new(),
            channel: self.channel() as i32,
            complainant: None,
            observed_at: None,
            voice_recording_uri: String::new(),
            photo_ids: Vec::new(),
        }
    }

    /// Why intake would refuse [`CsvRequest::to_create_request`], or `None`
    /// when the request can be filed: an unknown channel or coordinates
    /// outside the city. Any complaint type is filed (routing decides), and so
    /// is a request without a place (routing holds it for triage if its type
    /// needs one).
    pub fn why_not_fileable(&self) -> Option<String> {
        if self.channel() == Channel::Unspecified {
            return Some(format!(
                "channel type {:?} has no intake channel",
                self.channel_type
            ));
        }
        match self.coordinates() {
            Some((latitude, longitude))
                if !CityBounds::NEW_YORK_CITY.contains(latitude, longitude) =>
            {
                Some(format!(
                    "location {latitude},{longitude} is outside the city"
                ))
            }
            _ => None,
        }
    }
}

fn is_five_digit_zip(zip: &str) -> bool {
    zip.len() == 5 && zip.bytes().all(|b| b.is_ascii_digit())
}

/// The resolution code for one of the police department's public closing
/// texts (the `Resolution Description` column), e.g. "The Police Department
/// issued a summons in response to the complaint." → `SummonsIssued`.
///
/// `Unspecified` when the text states no outcome: an empty text (not closed
/// yet), a request the department could not process ("…can not be processed
/// at this time because of insufficient contact information…"), or a text
/// this mapping does not know.
pub fn resolution_code(description: &str) -> ResolutionCode {
    // exports replace the apostrophe with mojibake; match on words only
    let text = description.to_lowercase();
    let has = |phrase: &str| text.contains(phrase);
    if text.trim().is_empty() {
        return ResolutionCode::Unspecified;
    }
    if has("summons") && (has("issued") || has("issue a")) {
        return ResolutionCode::SummonsIssued;
    }
    if has("duplicate") {
        return ResolutionCode::Duplicate;
    }
    if has("jurisdiction") && (has("does not fall under") || has("outside") || has("not within")) {
        return ResolutionCode::OutsideJurisdiction;
    }
    if has("referred") || has("forwarded the complaint to") {
        return ResolutionCode::Referred;
    }
    if has("unable to gain entry") || has("could not gain entry") {
        return ResolutionCode::UnableToGainEntry;
    }
    if has("those responsible for the condition were gone")
        || has("were gone upon arrival")
        || has("gone on arrival")
    {
        return ResolutionCode::ConditionGoneOnArrival;
    }
    if has("no evidence of the violation")
        || (has(" and no ") && (has(" was found") || has(" were found")))
    {
        return ResolutionCode::NoEvidence;
    }
    if has("police action was not necessary") {
        return ResolutionCode::PoliceActionNotNecessary;
    }
    // reviewed without a field response and answered with information: the
    // department decided no police action was needed
    if has("reviewed your complaint and provided additional information") {
        return ResolutionCode::PoliceActionNotNecessary;
    }
    if has("took action to fix the condition")
        || has("a report was prepared")
        || has("made an arrest")
    {
        return ResolutionCode::ActionTaken;
    }
    ResolutionCode::Unspecified
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use chrono::Timelike;

    use super::*;

    /// The file under the data directory, or `None` (said loudly) when the
    /// data is not installed on this machine.
    fn data_file(name: &str) -> Option<PathBuf> {
        let path = data_dir().join(name);
        if path.is_file() {
            return Some(path);
        }
        eprintln!(
            "!!! SKIPPED: {} is missing; set DISPATCH311_DATA_DIR to the city's data directory to run this test !!!",
            path.display()
        );
        None
    }

    #[test]
    fn reads_every_row_of_the_smoke_file() {
        let Some(path) = data_file(SMOKE_FILE) else {
            return;
        };
        let rows = read_rows(&path).unwrap();
        assert!(rows.rejected.is_empty(), "{:?}", rows.rejected);
        assert_eq!(rows.requests.len(), 100);
        assert_eq!(rows.requests.iter().filter(|r| r.is_nypd()).count(), 85);

        let first = &rows.requests[0];
        assert_eq!(first.unique_key, "57190759");
        assert_eq!(first.complaint_type, "Noise - Residential");
        assert_eq!(first.descriptor, "Loud Music/Party");
        assert_eq!(first.incident_address, "1351 CLAY AVENUE");
        assert_eq!(first.borough, "BRONX");
        assert_eq!(first.incident_zip, "10456");
        // 31 March is daylight-saving time in New York
        assert_eq!(first.created.to_rfc3339(), "2023-03-31T23:44:52-04:00");
        assert_eq!(
            first.coordinates(),
            Some((40.835822082553115, -73.90867166332256))
        );
        assert_eq!(
            resolution_code(&first.resolution_description),
            ResolutionCode::NoEvidence
        );
        // the export's own error, kept as published
        assert!(first.closed_before_created());
    }

    #[test]
    fn reads_every_row_of_the_half_day_file() {
        let Some(path) = data_file(HALF_DAY_FILE) else {
            return;
        };
        let rows = read_rows(&path).unwrap();
        assert!(
            rows.rejected.is_empty(),
            "{:?}",
            &rows.rejected[..rows.rejected.len().min(5)]
        );
        assert_eq!(rows.requests.len(), 4_999);
        let nypd: Vec<&CsvRequest> = rows.requests.iter().filter(|r| r.is_nypd()).collect();
        assert_eq!(nypd.len(), 1_569);
        assert_eq!(
            nypd.iter()
                .filter(|r| r.complaint_type == "Illegal Parking")
                .count(),
            639
        );
        let february_28 = NaiveDate::from_ymd_opt(2023, 2, 28).unwrap();
        assert!(
            rows.requests
                .iter()
                .all(|r| r.created.date_naive() == february_28)
        );
        // closing dates run into April, past the switch to daylight-saving time
        assert!(
            rows.requests
                .iter()
                .filter_map(|r| r.closed)
                .any(|closed| closed.offset().local_minus_utc() == -4 * 3600)
        );
    }

    #[test]
    fn every_closed_nypd_text_of_the_half_day_file_maps_to_an_outcome() {
        let Some(path) = data_file(HALF_DAY_FILE) else {
            return;
        };
        let requests = read_requests(&path).unwrap();
        let texts: BTreeSet<&str> = requests
            .iter()
            .filter(|r| r.is_nypd() && r.status == "Closed")
            .map(|r| r.resolution_description.as_str())
            .collect();
        assert!(texts.len() >= 10, "only {} distinct texts", texts.len());
        let unmapped: Vec<&str> = texts
            .iter()
            .copied()
            .filter(|text| resolution_code(text) == ResolutionCode::Unspecified)
            // the department closed these without any outcome to code
            .filter(|text| !text.contains("insufficient contact information"))
            .collect();
        assert!(unmapped.is_empty(), "no resolution code for: {unmapped:#?}");
    }

    #[test]
    fn maps_the_police_closing_texts_to_their_codes() {
        let cases = [
            (
                "The Police Department issued a summons in response to the complaint.",
                ResolutionCode::SummonsIssued,
            ),
            (
                "The Police Department responded to the complaint and with the information available observed no evidence of the violation at that time.",
                ResolutionCode::NoEvidence,
            ),
            (
                "The Police Department responded to the complaint and determined that police action was not necessary.",
                ResolutionCode::PoliceActionNotNecessary,
            ),
            (
                "The Police Department responded to the complaint and took action to fix the condition.",
                ResolutionCode::ActionTaken,
            ),
            (
                "The Police Department responded to the complaint but officers were unable to gain entry into the premises.",
                ResolutionCode::UnableToGainEntry,
            ),
            (
                "The Police Department responded and upon arrival those responsible for the condition were gone.",
                ResolutionCode::ConditionGoneOnArrival,
            ),
            (
                "This complaint does not fall under the Police Department's jurisdiction.",
                ResolutionCode::OutsideJurisdiction,
            ),
            // the same text as exported with mojibake for the apostrophe
            (
                "This complaint does not fall under the Police Departmentâs jurisdiction.",
                ResolutionCode::OutsideJurisdiction,
            ),
            (
                "The Police Department visited the location and has referred the complaint to the Department of Homeless Services (DHS) for further action.",
                ResolutionCode::Referred,
            ),
            (
                "The Police Department visited the location and no Encampment was found.",
                ResolutionCode::NoEvidence,
            ),
            (
                "The Police Department responded to the complaint and a report was prepared.",
                ResolutionCode::ActionTaken,
            ),
            (
                "The Police Department determined that this complaint is a duplicate of a previously filed complaint.",
                ResolutionCode::Duplicate,
            ),
            ("", ResolutionCode::Unspecified),
            (
                "Your request can not be processed at this time because of insufficient contact information.",
                ResolutionCode::Unspecified,
            ),
        ];
        for (text, code) in cases {
            assert_eq!(resolution_code(text), code, "{text}");
        }
    }

    #[test]
    fn new_york_times_follow_daylight_saving() {
        let offset =
            |text| parse_new_york_time(text).map(|at| at.offset().local_minus_utc() / 3600);
        assert_eq!(offset("02/28/2023 11:31:00 AM"), Ok(-5));
        assert_eq!(offset("03/12/2023 01:59:59 AM"), Ok(-5));
        assert_eq!(offset("03/12/2023 03:00:00 AM"), Ok(-4));
        assert_eq!(offset("11/05/2023 12:59:59 AM"), Ok(-4));
        assert_eq!(offset("11/05/2023 02:00:00 AM"), Ok(-5));
        assert!(
            offset("03/12/2023 02:30:00 AM")
                .unwrap_err()
                .contains("does not exist")
        );
        assert!(
            offset("11/05/2023 01:30:00 AM")
                .unwrap_err()
                .contains("ambiguous")
        );
        assert!(offset("06/01/2005 10:00:00 AM").is_err());
        assert!(offset("2023-02-28 11:31:00").is_err());

        let midnight = parse_new_york_time("02/28/2023 12:05:00 AM").unwrap();
        assert_eq!((midnight.hour(), midnight.minute()), (0, 5));
        assert_eq!(midnight.to_utc().to_rfc3339(), "2023-02-28T05:05:00+00:00");
    }

    #[test]
    fn builds_the_intake_request_from_the_row_alone() {
        let row = CsvRequest {
            unique_key: "57190759".into(),
            created: parse_new_york_time("02/28/2023 11:31:00 AM").unwrap(),
            closed: None,
            agency: "NYPD".into(),
            complaint_type: "Illegal Parking".into(),
            descriptor: "Blocked Hydrant".into(),
            location_type: "Street/Sidewalk".into(),
            incident_zip: "10001".into(),
            incident_address: "350 5 AVENUE".into(),
            street_name: "5 AVENUE".into(),
            cross_street_1: "WEST 33 STREET".into(),
            cross_street_2: "WEST 34 STREET".into(),
            intersection_street_1: String::new(),
            intersection_street_2: String::new(),
            borough: "MANHATTAN".into(),
            status: "Open".into(),
            resolution_description: String::new(),
            channel_type: "MOBILE".into(),
            latitude: Some(40.7484),
            longitude: Some(-73.9857),
        };
        let request = row.to_create_request("replay-1");
        assert_eq!(request.request_id, "replay-1");
        assert_eq!(request.complaint_type, "Illegal Parking");
        assert_eq!(request.descriptor, "Blocked Hydrant");
        assert_eq!(request.channel, Channel::MobileApp as i32);
        assert_eq!(
            request.location,
            Some(GeoPoint {
                latitude: 40.7484,
                longitude: -73.9857
            })
        );
        let address = request.address.clone().unwrap();
        assert_eq!(address.street_address, "350 5 AVENUE");
        assert_eq!(address.cross_street, "WEST 33 STREET");
        assert_eq!(address.postal_code, "10001");
        assert_eq!(request.description, "");
        assert!(
            request.complainant.is_none()
                && request.observed_at.is_none()
                && request.photos.is_empty()
        );
        assert_eq!(row.why_not_fileable(), None);

        let corner = CsvRequest {
            incident_address: String::new(),
            intersection_street_1: "BROADWAY".into(),
            intersection_street_2: "WEST 34 STREET".into(),
            incident_zip: "N/A".into(),
            latitude: None,
            longitude: None,
            channel_type: "UNKNOWN".into(),
            ..row.clone()
        };
        let request = corner.to_create_request("replay-2");
        assert_eq!(request.location, None);
        let address = request.address.unwrap();
        assert_eq!(
            (
                address.street_address.as_str(),
                address.cross_street.as_str()
            ),
            ("BROADWAY", "WEST 34 STREET")
        );
        assert_eq!(address.postal_code, "");
        assert_eq!(request.channel, Channel::PartnerAgency as i32);
        assert_eq!(corner.why_not_fileable(), None);

        // routing, not intake, decides what a request without a place needs
        let nowhere = CsvRequest {
            incident_address: String::new(),
            latitude: None,
            longitude: None,
            ..row.clone()
        };
        assert_eq!(nowhere.why_not_fileable(), None);
        let unheard_of = CsvRequest {
            channel_type: "CARRIER PIGEON".into(),
            ..row
        };
        assert!(unheard_of.why_not_fileable().unwrap().contains("channel"));
    }

    #[test]
    fn rejects_unreadable_rows_with_a_reason_and_keeps_the_rest() {
        let dir =
            std::env::temp_dir().join(format!("d311-nyc311-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rows.csv");
        let header = USED_COLUMNS.join(",");
        let good = "1,02/28/2023 11:31:00 AM,,NYPD,Illegal Parking,Blocked Hydrant,Street/Sidewalk,10001,350 5 AVENUE,5 AVENUE,,,,,MANHATTAN,Open,,MOBILE,40.7484,-73.9857";
        let bad_date = "2,28/02/2023 11:31:00,,NYPD,Illegal Parking,,,,,,,,,,MANHATTAN,Open,,MOBILE,40.7,-73.9";
        let half_point =
            "3,02/28/2023 11:31:00 AM,,NYPD,Illegal Parking,,,,,,,,,,MANHATTAN,Open,,MOBILE,40.7,";
        let short = "4,02/28/2023 11:31:00 AM,,NYPD";
        std::fs::write(
            &path,
            format!("{header}\n{good}\n{bad_date}\n{half_point}\n{short}\n"),
        )
        .unwrap();

        let rows = read_rows(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(rows.requests.len(), 1);
        assert_eq!(rows.requests[0].unique_key, "1");
        let reasons: Vec<(u64, &str, &str)> = rows
            .rejected
            .iter()
            .map(|p| (p.line, p.unique_key.as_str(), p.reason.as_str()))
            .collect();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(
            reasons[0].0 == 3 && reasons[0].1 == "2" && reasons[0].2.contains("Created Date"),
            "{reasons:?}"
        );
        assert!(
            reasons[1].2.contains("only one of Latitude and Longitude"),
            "{reasons:?}"
        );
        assert!(
            reasons[2].2.contains("fields, the header has"),
            "{reasons:?}"
        );
    }

    #[test]
    fn refuses_a_file_without_the_needed_columns() {
        let dir =
            std::env::temp_dir().join(format!("d311-nyc311-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("other.csv");
        std::fs::write(&path, "Unique Key,Agency\n1,NYPD\n").unwrap();
        let error = read_rows(&path).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            format!("{error:#}").contains("missing columns: Created Date"),
            "{error:#}"
        );
    }
}
