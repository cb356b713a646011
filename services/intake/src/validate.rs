//! Turns a `CreateServiceRequestRequest` into a `NewServiceRequest`, and the
//! contact-release requests into their queries, or into INVALID_ARGUMENT
//! listing every field that is wrong. Nothing is stored or released unless
//! the whole request is valid.

use chrono::{DateTime, Duration, Utc};
use dispatch311_domain::{
    CityBounds, SrNumber,
    complaint_type::{normalize_complaint_type, normalize_descriptor},
    time::from_timestamp,
};
use dispatch311_grpc::{pagination, status::FieldViolations};
use dispatch311_proto::{
    common::v1::{Address, Channel},
    intake::v1::{
        Complainant, CreateServiceRequestRequest, ListNearbyOpenRequestsRequest, PhotoReference,
        ReleaseComplainantContactRequest, ReleasePurpose,
    },
};

pub const MAX_REQUEST_ID: usize = 128;
pub const MAX_ADDRESS_FIELD: usize = 200;
pub const MAX_DESCRIPTION: usize = 4_000;
pub const MAX_PHOTOS: usize = 10;
pub const MAX_PHOTO_URI: usize = 2_048;
pub const MAX_NAME: usize = 100;
pub const MAX_EMAIL: usize = 254;
/// Clocks of phones and call-center desks drift; a little future is tolerated.
pub const MAX_CLOCK_SKEW: Duration = Duration::minutes(5);
/// Older observations are history, not a condition to dispatch to.
pub const MAX_OBSERVATION_AGE: Duration = Duration::days(30);

/// A request that passed validation, in domain terms.
#[derive(Debug, Clone, PartialEq)]
pub struct NewServiceRequest {
    pub request_id: String,
    /// As the caller wrote it, white space normalised: routing matches it to
    /// a rule (or an alias of one), or holds it for 311 triage.
    pub complaint_type: String,
    pub descriptor: String,
    pub location: Option<(f64, f64)>,
    pub address: Address,
    pub description: String,
    pub photos: Vec<PhotoReference>,
    pub channel: Channel,
    pub complainant: Option<Complainant>,
    pub observed_at: DateTime<Utc>,
    pub voice_recording_uri: Option<String>,
    /// Uploaded photos, in the complainant's order.
    pub photo_ids: Vec<uuid::Uuid>,
}

pub fn validate(
    request: CreateServiceRequestRequest,
    bounds: &CityBounds,
    now: DateTime<Utc>,
) -> Result<NewServiceRequest, tonic::Status> {
    let mut v = FieldViolations::new();

    let request_id = request.request_id.trim().to_string();
    if request_id.is_empty() {
        v.add(
            "request_id",
            "required: a client-chosen idempotency key such as a UUID",
        );
    } else if request_id.len() > MAX_REQUEST_ID
        || !request_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
    {
        v.add(
            "request_id",
            "must be 1-128 characters of letters, digits, '-', '_', '.' or ':'",
        );
    }

    // Any complaint type a real 311 system files is accepted: routing, not
    // intake, knows the rules, and an unknown type goes to 311 triage.
    let complaint_type = normalize_complaint_type(&request.complaint_type)
        .map_err(|e| v.add("complaint_type", e.to_string()))
        .ok();
    let descriptor = normalize_descriptor(&request.descriptor)
        .map_err(|e| v.add("descriptor", e.to_string()))
        .unwrap_or_default();

    let address = request.address.unwrap_or_default();
    check_text(
        &mut v,
        "address.street_address",
        &address.street_address,
        MAX_ADDRESS_FIELD,
    );
    check_text(
        &mut v,
        "address.cross_street",
        &address.cross_street,
        MAX_ADDRESS_FIELD,
    );
    check_text(
        &mut v,
        "address.borough",
        &address.borough,
        MAX_ADDRESS_FIELD,
    );
    let postal_code = address.postal_code.trim();
    let five_digits = postal_code.len() == 5 && postal_code.bytes().all(|b| b.is_ascii_digit());
    if !postal_code.is_empty() && !five_digits {
        v.add("address.postal_code", "must be a five-digit ZIP code");
    }

    // No place at all is fine here: many requests need none (a tax question,
    // a benefits card), and routing holds a type whose rule needs a place for
    // 311 triage, where staff can ask the complainant for it.
    let location = request
        .location
        .and_then(|point| check_location(&mut v, point.latitude, point.longitude, bounds));

    let description = request.description;
    check_text(&mut v, "description", &description, MAX_DESCRIPTION);

    if request.photos.len() + request.photo_ids.len() > MAX_PHOTOS {
        v.add("photos", format!("at most {MAX_PHOTOS} photos"));
    }
    let mut photo_ids = Vec::with_capacity(request.photo_ids.len());
    for (i, id) in request.photo_ids.iter().enumerate() {
        match uuid::Uuid::parse_str(id.trim()) {
            Ok(id) if !photo_ids.contains(&id) => photo_ids.push(id),
            Ok(_) => v.add(format!("photo_ids[{i}]"), "the same photo twice"),
            Err(_) => v.add(
                format!("photo_ids[{i}]"),
                "must be a photo_id from UploadPhoto",
            ),
        }
    }
    for (i, photo) in request.photos.iter().enumerate() {
        check_photo(&mut v, i, photo);
    }
    let voice_recording_uri =
        Some(request.voice_recording_uri.trim().to_string()).filter(|uri| !uri.is_empty());
    if let Some(uri) = &voice_recording_uri
        && !is_media_uri(uri)
    {
        v.add(
            "voice_recording_uri",
            "must be an http(s) or s3 URI of at most 2,048 characters",
        );
    }

    let channel = match Channel::try_from(request.channel) {
        Ok(Channel::Unspecified) => {
            v.add("channel", "required");
            Channel::Unspecified
        }
        Ok(channel) => channel,
        Err(_) => {
            v.add("channel", format!("unknown channel {}", request.channel));
            Channel::Unspecified
        }
    };

    let complainant = request
        .complainant
        .map(|c| normalize_complainant(&mut v, c));

    let observed_at = match request.observed_at {
        None => now,
        Some(ts) => match from_timestamp(&ts) {
            None => {
                v.add("observed_at", "not a valid timestamp");
                now
            }
            Some(at) if at > now + MAX_CLOCK_SKEW => {
                v.add("observed_at", "is in the future");
                now
            }
            Some(at) if at < now - MAX_OBSERVATION_AGE => {
                v.add("observed_at", "is more than 30 days ago");
                now
            }
            Some(at) => at,
        },
    };

    v.into_result()?;
    Ok(NewServiceRequest {
        request_id,
        complaint_type: complaint_type.expect("a missing type is a violation"),
        descriptor,
        location,
        address: Address {
            street_address: address.street_address.trim().to_string(),
            cross_street: address.cross_street.trim().to_string(),
            borough: address.borough.trim().to_uppercase(),
            postal_code: postal_code.to_string(),
        },
        description,
        photos: request.photos,
        channel,
        complainant,
        observed_at,
        voice_recording_uri,
        photo_ids,
    })
}

/// A valid `ReleaseComplainantContact`: whose contact, why, for whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactReleaseRequest {
    /// In its canonical spelling.
    pub sr_number: String,
    pub purpose: ReleasePurpose,
    pub requester: String,
}

/// `requester` is the verified caller (`role:subject`); the request's own
/// `requester` field is ignored.
pub fn validate_release(
    request: ReleaseComplainantContactRequest,
    requester: String,
) -> Result<ContactReleaseRequest, tonic::Status> {
    let mut v = FieldViolations::new();
    let sr_number = sr_number(&mut v, "sr_number", &request.sr_number);
    let purpose = match ReleasePurpose::try_from(request.purpose) {
        Ok(ReleasePurpose::Unspecified) => {
            v.add("purpose", "required: why the contact is released");
            ReleasePurpose::Unspecified
        }
        Ok(purpose) => purpose,
        Err(_) => {
            v.add("purpose", format!("unknown purpose {}", request.purpose));
            ReleasePurpose::Unspecified
        }
    };
    v.into_result()?;
    Ok(ContactReleaseRequest {
        sr_number: sr_number.expect("a bad number is a violation"),
        purpose,
        requester,
    })
}

/// A valid audit listing (`ListContactReleases`, `ListRetentionDeletions`):
/// an optional request, and the keyset position after the previous page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditListQuery {
    pub sr_number: Option<String>,
    /// (recorded at, id) of the last record of the previous page.
    pub after: Option<(DateTime<Utc>, i64)>,
    pub page_size: usize,
}

pub fn validate_audit_list(
    sr_number: &str,
    page_size: i32,
    page_token: &str,
) -> Result<AuditListQuery, tonic::Status> {
    let mut v = FieldViolations::new();
    let sr_number = if sr_number.trim().is_empty() {
        None
    } else {
        self::sr_number(&mut v, "sr_number", sr_number)
    };
    let page_size = pagination::page_size(page_size, "page_size", &mut v);
    let after = pagination::decode_token(page_token, "page_token", &mut v).and_then(|cursor| {
        let parsed = parse_audit_cursor(&cursor);
        if parsed.is_none() {
            v.add("page_token", "not a token from this list");
        }
        parsed
    });
    v.into_result()?;
    Ok(AuditListQuery {
        sr_number,
        after,
        page_size,
    })
}

/// The nearby view's radius when none is asked, and the most it may be.
pub const DEFAULT_NEARBY_RADIUS_M: f64 = 50.0;
pub const MAX_NEARBY_RADIUS_M: f64 = 500.0;
/// Its window when none is asked, and the longest.
pub const DEFAULT_NEARBY_WINDOW: Duration = Duration::hours(2);
pub const MAX_NEARBY_WINDOW: Duration = Duration::days(7);
/// Its page when none is asked, and the largest.
pub const DEFAULT_NEARBY_PAGE: i64 = 20;
pub const MAX_NEARBY_PAGE: i64 = 100;

/// What the nearby view asks.
#[derive(Debug, Clone)]
pub struct NearbyQuery {
    pub complaint_type: String,
    pub latitude: f64,
    pub longitude: f64,
    pub radius_m: f64,
    pub filed_after: DateTime<Utc>,
    pub limit: i64,
}

/// A `ListNearbyOpenRequests` request as the store's query, or
/// INVALID_ARGUMENT naming every field that is wrong.
pub fn validate_nearby(
    request: &ListNearbyOpenRequestsRequest,
    bounds: &CityBounds,
    now: DateTime<Utc>,
) -> Result<NearbyQuery, tonic::Status> {
    let mut v = FieldViolations::new();
    let complaint_type = normalize_complaint_type(&request.complaint_type).unwrap_or_else(|e| {
        v.add(
            "complaint_type",
            format!("required, e.g. \"Blocked Driveway\": {e}"),
        );
        String::new()
    });
    let location = match &request.location {
        None => {
            v.add("location", "required: the point to look around");
            None
        }
        Some(point) => check_location(&mut v, point.latitude, point.longitude, bounds),
    };
    let radius_m = request.radius_m;
    let radius_m = if radius_m == 0.0 {
        DEFAULT_NEARBY_RADIUS_M
    } else if radius_m.is_finite() && radius_m > 0.0 && radius_m <= MAX_NEARBY_RADIUS_M {
        radius_m
    } else {
        v.add(
            "radius_m",
            "metres, more than 0 and at most 500 (0 means 50)",
        );
        DEFAULT_NEARBY_RADIUS_M
    };
    let window = match &request.filed_within {
        None => DEFAULT_NEARBY_WINDOW,
        Some(d) => match Duration::new(d.seconds, u32::try_from(d.nanos).unwrap_or(u32::MAX)) {
            Some(window) if window > Duration::zero() && window <= MAX_NEARBY_WINDOW => window,
            _ => {
                v.add("filed_within", "more than 0 and at most 7 days");
                DEFAULT_NEARBY_WINDOW
            }
        },
    };
    let limit = match i64::from(request.page_size) {
        0 => DEFAULT_NEARBY_PAGE,
        n if (1..=MAX_NEARBY_PAGE).contains(&n) => n,
        _ => {
            v.add("page_size", "at most 100 (0 means 20)");
            DEFAULT_NEARBY_PAGE
        }
    };
    v.into_result()?;
    let (latitude, longitude) = location.expect("checked above");
    Ok(NearbyQuery {
        complaint_type,
        latitude,
        longitude,
        radius_m,
        filed_after: now - window,
        limit,
    })
}

/// The `page_token` that continues an audit listing after the record made
/// at `recorded_at` with id `id`.
pub fn audit_page_token(recorded_at: DateTime<Utc>, id: i64) -> String {
    pagination::encode_token(&format!("{}|{id}", recorded_at.timestamp_micros()))
}

fn parse_audit_cursor(cursor: &str) -> Option<(DateTime<Utc>, i64)> {
    let (micros, id) = cursor.split_once('|')?;
    let at = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
    Some((at, id.parse().ok()?))
}

/// The canonical spelling of an SR number, or a violation of `field`.
fn sr_number(v: &mut FieldViolations, field: &str, value: &str) -> Option<String> {
    match value.parse::<SrNumber>() {
        Ok(number) => Some(number.to_string()),
        Err(e) => {
            v.add(field, e.to_string());
            None
        }
    }
}

fn check_location(
    v: &mut FieldViolations,
    latitude: f64,
    longitude: f64,
    bounds: &CityBounds,
) -> Option<(f64, f64)> {
    let before = v.len();
    if !latitude.is_finite() || !(-90.0..=90.0).contains(&latitude) {
        v.add("location.latitude", "must be between -90 and 90");
    }
    if !longitude.is_finite() || !(-180.0..=180.0).contains(&longitude) {
        v.add("location.longitude", "must be between -180 and 180");
    }
    if v.len() > before {
        return None;
    }
    if latitude == 0.0 && longitude == 0.0 {
        // an unset location from a client that filled the message anyway
        v.add(
            "location",
            "0,0 is not a place in the city; omit location and give an address instead",
        );
        return None;
    }
    if !bounds.contains(latitude, longitude) {
        v.add(
            "location",
            format!("{latitude:.5},{longitude:.5} is outside the city's bounds"),
        );
        return None;
    }
    Some((latitude, longitude))
}

/// Where a photo or a recording is kept: an http(s) or s3 URI, bounded.
fn is_media_uri(uri: &str) -> bool {
    let allowed_scheme = ["https://", "http://", "s3://"]
        .iter()
        .any(|s| uri.starts_with(s));
    !uri.is_empty()
        && uri.len() <= MAX_PHOTO_URI
        && allowed_scheme
        && !uri.chars().any(char::is_whitespace)
}

fn check_photo(v: &mut FieldViolations, i: usize, photo: &PhotoReference) {
    if !is_media_uri(photo.uri.trim()) {
        v.add(
            format!("photos[{i}].uri"),
            "must be an http(s) or s3 URI of at most 2,048 characters",
        );
    }
    if !matches!(photo.content_type.as_str(), "image/jpeg" | "image/png") {
        v.add(
            format!("photos[{i}].content_type"),
            "must be image/jpeg or image/png",
        );
    }
}

fn normalize_complainant(v: &mut FieldViolations, c: Complainant) -> Complainant {
    // messages name the field, never echo its value: contact details stay out of errors and logs
    let name = c.name.trim().to_string();
    check_text(v, "complainant.name", &name, MAX_NAME);
    let phone = c.phone.trim().to_string();
    if !phone.is_empty() {
        let digits = phone.bytes().filter(u8::is_ascii_digit).count();
        let allowed = phone
            .bytes()
            .all(|b| b.is_ascii_digit() || b" +-().".contains(&b));
        if !allowed || !(7..=15).contains(&digits) {
            v.add(
                "complainant.phone",
                "must be 7 to 15 digits, optionally with spaces, '+', '-', '(', ')' or '.'",
            );
        }
    }
    let email = c.email.trim().to_string();
    if !email.is_empty() && !looks_like_email(&email) {
        v.add(
            "complainant.email",
            "must be an e-mail address of at most 254 characters",
        );
    }
    if c.consent_to_contact && phone.is_empty() && email.is_empty() {
        v.add(
            "complainant.consent_to_contact",
            "consent needs a phone number or an e-mail address to contact",
        );
    }
    Complainant {
        name,
        phone,
        email,
        consent_to_contact: c.consent_to_contact,
    }
}

fn looks_like_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    email.len() <= MAX_EMAIL
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && !domain.contains('@')
}

fn check_text(v: &mut FieldViolations, field: &str, value: &str, max_chars: usize) {
    if value.chars().count() > max_chars {
        v.add(field, format!("at most {max_chars} characters"));
    } else if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        v.add(field, "must not contain control characters");
    }
}

#[cfg(test)]
mod tests {
    use dispatch311_proto::common::v1::GeoPoint;

    use super::*;

    fn valid() -> CreateServiceRequestRequest {
        CreateServiceRequestRequest {
            request_id: "req-1".into(),
            complaint_type: "illegal parking".into(),
            descriptor: "Blocked Hydrant".into(),
            location: Some(GeoPoint {
                latitude: 40.7484,
                longitude: -73.9857,
            }),
            channel: Channel::MobileApp as i32,
            ..Default::default()
        }
    }

    fn violations(request: CreateServiceRequestRequest) -> Vec<String> {
        use tonic_types::StatusExt;
        let status = validate(request, &CityBounds::NEW_YORK_CITY, Utc::now()).unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        let bad = status
            .get_details_bad_request()
            .expect("field violations attached");
        bad.field_violations.into_iter().map(|f| f.field).collect()
    }

    #[test]
    fn accepts_a_valid_request_with_its_type_as_written() {
        let new = validate(valid(), &CityBounds::NEW_YORK_CITY, Utc::now()).unwrap();
        assert_eq!(new.complaint_type, "illegal parking");
        assert_eq!(new.location, Some((40.7484, -73.9857)));
    }

    #[test]
    fn accepts_types_no_rule_knows_and_refuses_only_non_names() {
        for name in [
            "Dragons",
            "DOF Property - Owner Issue",
            "  Homeless   Encampment ",
        ] {
            let mut request = valid();
            request.complaint_type = name.into();
            let new = validate(request, &CityBounds::NEW_YORK_CITY, Utc::now()).unwrap();
            assert_eq!(
                new.complaint_type,
                name.split_whitespace().collect::<Vec<_>>().join(" ")
            );
        }
        for name in ["", "   ", "***", "Noise\u{7}"] {
            let mut request = valid();
            request.complaint_type = name.into();
            assert_eq!(violations(request), ["complaint_type"], "{name:?}");
        }
        let mut long = valid();
        long.complaint_type = "x".repeat(1_000_000);
        assert_eq!(violations(long), ["complaint_type"]);
    }

    #[test]
    fn names_every_bad_field_at_once() {
        let request = CreateServiceRequestRequest {
            request_id: String::new(),
            complaint_type: "?!".into(),
            location: Some(GeoPoint {
                latitude: 95.0,
                longitude: -73.9,
            }),
            channel: 0,
            ..Default::default()
        };
        let fields = violations(request);
        for f in [
            "request_id",
            "complaint_type",
            "location.latitude",
            "channel",
        ] {
            assert!(
                fields.contains(&f.to_string()),
                "{f} missing from {fields:?}"
            );
        }
    }

    #[test]
    fn rejects_places_outside_the_city_and_null_island() {
        let mut far = valid();
        far.location = Some(GeoPoint {
            latitude: 39.95,
            longitude: -75.16,
        });
        assert_eq!(violations(far), ["location"]);
        let mut zero = valid();
        zero.location = Some(GeoPoint {
            latitude: 0.0,
            longitude: 0.0,
        });
        assert_eq!(violations(zero), ["location"]);
    }

    #[test]
    fn a_request_may_have_an_address_only_or_no_place_at_all() {
        // routing decides whether the type needs a place (311 triage if so)
        let mut request = valid();
        request.location = None;
        let new = validate(request.clone(), &CityBounds::NEW_YORK_CITY, Utc::now()).unwrap();
        assert_eq!(new.location, None);
        request.address = Some(Address {
            street_address: "350 5th Avenue".into(),
            ..Default::default()
        });
        assert!(validate(request, &CityBounds::NEW_YORK_CITY, Utc::now()).is_ok());
    }

    #[test]
    fn rejects_observations_in_the_future_or_long_past() {
        let now = Utc::now();
        let mut future = valid();
        future.observed_at = Some(dispatch311_domain::time::to_timestamp(
            now + Duration::hours(1),
        ));
        assert_eq!(violations(future), ["observed_at"]);
        let mut old = valid();
        old.observed_at = Some(dispatch311_domain::time::to_timestamp(
            now - Duration::days(31),
        ));
        assert_eq!(violations(old), ["observed_at"]);
    }

    #[test]
    fn checks_contact_details_without_echoing_them() {
        use tonic_types::StatusExt;
        let mut request = valid();
        request.complainant = Some(Complainant {
            name: "Pat".into(),
            phone: "call me 555".into(),
            email: "not-an-email".into(),
            consent_to_contact: true,
        });
        let status = validate(request, &CityBounds::NEW_YORK_CITY, Utc::now()).unwrap_err();
        let text = format!("{status:?} {:?}", status.get_details_bad_request());
        assert!(text.contains("complainant.phone") && text.contains("complainant.email"));
        assert!(!text.contains("call me 555") && !text.contains("not-an-email"));
    }

    #[test]
    fn a_voice_recording_is_an_http_or_s3_uri_and_optional() {
        let mut request = valid();
        request.voice_recording_uri = " s3://city-311-calls/2026/0042.ogg ".into();
        let filed = validate(request, &CityBounds::NEW_YORK_CITY, Utc::now()).unwrap();
        assert_eq!(
            filed.voice_recording_uri.as_deref(),
            Some("s3://city-311-calls/2026/0042.ogg")
        );
        let none = validate(valid(), &CityBounds::NEW_YORK_CITY, Utc::now()).unwrap();
        assert_eq!(none.voice_recording_uri, None);
        for bad in ["file:///tmp/call.ogg", "s3://calls/a b.ogg"] {
            let mut request = valid();
            request.voice_recording_uri = bad.into();
            assert_eq!(violations(request), ["voice_recording_uri"], "{bad}");
        }
    }

    #[test]
    fn bounds_photo_count_and_types() {
        let mut request = valid();
        request.photos = vec![PhotoReference {
            uri: "ftp://x".into(),
            content_type: "image/gif".into(),
        }];
        assert_eq!(
            violations(request),
            ["photos[0].uri", "photos[0].content_type"]
        );
    }

    fn release(sr_number: &str, purpose: i32) -> ReleaseComplainantContactRequest {
        ReleaseComplainantContactRequest {
            sr_number: sr_number.into(),
            purpose,
        }
    }

    fn release_violations(request: ReleaseComplainantContactRequest) -> Vec<String> {
        use tonic_types::StatusExt;
        let status = validate_release(request, "survey_system:city".into()).unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        let bad = status
            .get_details_bad_request()
            .expect("field violations attached");
        bad.field_violations.into_iter().map(|f| f.field).collect()
    }

    const SURVEY: i32 = ReleasePurpose::SatisfactionSurvey as i32;

    #[test]
    fn a_release_names_a_request_and_a_purpose_and_records_the_verified_caller() {
        let valid = validate_release(
            release(" SR-2026-0000042 ", SURVEY),
            "survey_system:city".into(),
        )
        .unwrap();
        assert_eq!(
            valid,
            ContactReleaseRequest {
                sr_number: "SR-2026-0000042".into(),
                purpose: ReleasePurpose::SatisfactionSurvey,
                requester: "survey_system:city".into(),
            }
        );
    }

    #[test]
    fn a_release_without_number_or_purpose_names_each_field() {
        assert_eq!(release_violations(release("", 0)), ["sr_number", "purpose"]);
        assert_eq!(
            release_violations(release("2026-42", 99)),
            ["sr_number", "purpose"]
        );
    }

    #[test]
    fn audit_lists_page_through_their_own_tokens_only() {
        let first = validate_audit_list("", 0, "").unwrap();
        assert_eq!(first.sr_number, None);
        assert_eq!(first.after, None);
        assert_eq!(first.page_size, pagination::DEFAULT_PAGE_SIZE);

        let released_at = DateTime::from_timestamp_micros(1_790_000_000_123_456).unwrap();
        let next =
            validate_audit_list("SR-2026-0000042", 5, &audit_page_token(released_at, 17)).unwrap();
        assert_eq!(next.sr_number.as_deref(), Some("SR-2026-0000042"));
        assert_eq!(next.after, Some((released_at, 17)));
        assert_eq!(next.page_size, 5);

        use tonic_types::StatusExt;
        let status =
            validate_audit_list("not-a-number", -1, &pagination::encode_token("yesterday"))
                .unwrap_err();
        let fields: Vec<String> = status
            .get_details_bad_request()
            .unwrap()
            .field_violations
            .into_iter()
            .map(|f| f.field)
            .collect();
        assert_eq!(fields, ["sr_number", "page_size", "page_token"]);
    }
}
