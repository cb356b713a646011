//! Hostile input over the wire, through the real binaries: bytes no
//! generated client would send, sizes past the limits, tampered tokens,
//! injection strings, every field at its limit and one past it. Each gets a
//! clear status, nothing is stored, every process is still serving
//! afterwards and its memory stays bounded. (A flood past an integrator's
//! rate: `intake::access`.)

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dispatch311_auth::Role;
use dispatch311_proto::common::v1::Address;
use dispatch311_proto::intake::v1::{
    Complainant, CreateServiceRequestRequest, ListServiceRequestsRequest, PhotoReference,
};
use dispatch311_tests::{
    cad::{EMPIRE_STATE, complaint},
    suite::{Service, Suite, SuiteOptions},
};
use prost::Message;
use tonic::{
    Code, Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
};
use tonic_types::StatusExt;

/// Passes bytes through unchanged, to send what a generated client cannot.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        use bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        use bytes::Buf;
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

/// Sends `body` to intake's `method` as the integrator; the status it got.
async fn raw_call(
    suite: &Suite,
    method: &str,
    body: Vec<u8>,
) -> anyhow::Result<Result<Vec<u8>, Status>> {
    let channel = suite
        .authenticated(Service::Intake, Role::Integrator, "app-1")
        .await?;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await?;
    let path = http::uri::PathAndQuery::try_from(format!(
        "/dispatch311.intake.v1.IntakeService/{method}"
    ))?;
    Ok(grpc
        .unary(tonic::Request::new(body), path, RawCodec)
        .await
        .map(tonic::Response::into_inner))
}

/// A well-formed filing with its own idempotency key.
fn filing_as(request_id: &str) -> CreateServiceRequestRequest {
    let mut request = complaint("Blocked Driveway", "No Access", EMPIRE_STATE);
    request.request_id = request_id.into();
    request
}

/// Intake's resident memory, from /proc.
fn resident_kib(suite: &Suite) -> anyhow::Result<u64> {
    let pid = suite.pid(Service::Intake).expect("intake runs");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS in /proc/{pid}/status"))
}

/// A protobuf field `number` of wire type 2 (length-delimited) holding `bytes`.
fn length_delimited(number: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    prost::encoding::encode_key(number, prost::encoding::WireType::LengthDelimited, &mut out);
    prost::encoding::encode_varint(bytes.len() as u64, &mut out);
    out.extend_from_slice(bytes);
    out
}

#[tokio::test]
async fn hostile_bytes_get_clear_statuses_and_change_nothing() -> anyhow::Result<()> {
    let suite = Suite::start(SuiteOptions::only(&[Service::Intake])).await?;
    let filing = |request_id: &str| {
        let mut request = complaint("Blocked Driveway", "No Access", EMPIRE_STATE);
        request.request_id = request_id.into();
        request.encode_to_vec()
    };

    // a string field that is not UTF-8: the caller's mistake, said so
    let mut bad_utf8 = filing("hostile-utf8");
    bad_utf8.extend(length_delimited(3, &[0xff, 0xfe, 0x41]));
    let status = raw_call(&suite, "CreateServiceRequest", bad_utf8)
        .await?
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    // nesting 200 deep in a field this version does not know: skipped whole,
    // never recursed into (no stack to exhaust)
    let mut nested = Vec::new();
    for _ in 0..200 {
        nested = length_delimited(998, &nested);
    }
    let mut deep = filing("hostile-deep");
    deep.extend(nested);
    raw_call(&suite, "CreateServiceRequest", deep)
        .await?
        .expect("accepted");

    // past the size limit: RESOURCE_EXHAUSTED before anything is read, and
    // twenty of them leave intake's memory where it was
    let resident_before = resident_kib(&suite)?;
    let mut huge = filing("hostile-huge");
    huge.extend(length_delimited(6, &vec![b'a'; 40 * 1024 * 1024]));
    for _ in 0..20 {
        let status = raw_call(&suite, "CreateServiceRequest", huge.clone())
            .await?
            .unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    }
    let grown = resident_kib(&suite)?.saturating_sub(resident_before);
    assert!(
        grown < 64 * 1024,
        "800 MiB refused grew intake by {grown} KiB"
    );

    // fields this version does not know are skipped, as protobuf promises
    let mut unknown = filing("hostile-unknown");
    unknown.extend(length_delimited(999, b"from a newer client"));
    raw_call(&suite, "CreateServiceRequest", unknown)
        .await?
        .expect("accepted");

    // SQL and JSON in the free text are text, stored as they came (what
    // responders read of it: the words themselves are sealed)
    let mut app = suite.intake().await?;
    let mut stored_as_text = Vec::new();
    for (request_id, description) in [
        ("hostile-sql", "'); DROP TABLE intake.service_requests; --"),
        (
            "hostile-json",
            r#"{"$where": "1 == 1", "__proto__": {"admin": true}}", "status": "CLOSED"}"#,
        ),
    ] {
        let mut injected = complaint("Blocked Driveway", "No Access", EMPIRE_STATE);
        injected.request_id = request_id.into();
        injected.description = description.into();
        let sr = app
            .create_service_request(injected)
            .await?
            .into_inner()
            .service_request
            .expect("the filed request");
        stored_as_text.push((sr.sr_number, description));
    }
    let database = suite.database().await?;
    for (sr_number, description) in &stored_as_text {
        let stored: String = sqlx::query_scalar(
            "SELECT description_for_responders FROM intake.service_requests WHERE sr_number = $1",
        )
        .bind(sr_number)
        .fetch_one(&database)
        .await?;
        assert_eq!(&stored, description);
    }

    // page sizes and tokens from nowhere, or a real token tampered with
    let real_token = app
        .list_service_requests(ListServiceRequestsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await?
        .into_inner()
        .next_page_token;
    assert!(!real_token.is_empty(), "two requests make two pages");
    let mut truncated = real_token.clone();
    truncated.truncate(real_token.len() / 2);
    let forged_sql = URL_SAFE_NO_PAD.encode("v1:0|' OR 1=1 --");
    for (page_size, page_token) in [
        (-5, ""),
        (0, "not-a-token"),
        (10, "ZGlzcGF0Y2gzMTE"),
        (10, truncated.as_str()),
        (10, &format!("{real_token}%00")),
        (10, forged_sql.as_str()),
    ] {
        let status = app
            .list_service_requests(ListServiceRequestsRequest {
                page_size,
                page_token: page_token.into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{page_size} {page_token:?}: {status:?}"
        );
    }
    // a supervisor sees every integrator's filings
    let listed = suite
        .intake_as(Role::Supervisor, "supervisor-1")
        .await?
        .list_service_requests(ListServiceRequestsRequest {
            page_size: i32::MAX,
            ..Default::default()
        })
        .await?
        .into_inner()
        .service_requests;
    // only the four well-formed filings were stored, the SQL and JSON as text
    let ids: Vec<&str> = listed.iter().map(|sr| sr.sr_number.as_str()).collect();
    assert_eq!(listed.len(), 4, "{ids:?}");

    // a well-formed cursor of the caller's own making pages only through
    // the caller's own requests
    let someone_else = suite
        .intake_as(Role::Integrator, "another-app")
        .await?
        .create_service_request(filing_as("hostile-other"))
        .await?
        .into_inner()
        .service_request
        .expect("filed")
        .sr_number;
    // (the year 2100: every filing is older)
    let forged = URL_SAFE_NO_PAD.encode(format!("v1:4102444800000000|{}", uuid::Uuid::max()));
    let paged = app
        .list_service_requests(ListServiceRequestsRequest {
            page_size: 100,
            page_token: forged,
            ..Default::default()
        })
        .await?
        .into_inner()
        .service_requests;
    assert_eq!(
        paged.len(),
        2,
        "the caller's own two filings (SQL and JSON)"
    );
    assert!(
        paged.iter().all(|sr| sr.sr_number != someone_else),
        "a forged cursor crossed to another integrator's filings"
    );

    // and intake still serves
    app.list_service_requests(ListServiceRequestsRequest::default())
        .await?;
    suite.stop().await
}

/// Every length limit exactly met is taken (counted in characters, so
/// multi-byte text gets its full allowance); one past each is refused with a
/// violation naming exactly that field, and nothing of it is stored.
#[tokio::test]
async fn every_field_at_its_limit_is_taken_and_one_past_is_refused() -> anyhow::Result<()> {
    let suite = Suite::start(SuiteOptions::only(&[Service::Intake])).await?;
    let mut app = suite.intake().await?;
    // (request id, street, cross street, borough, description, photos,
    // name, e-mail local part): the limits, then each plus one
    let at = |extra: usize, request_id: &str| {
        let mut request = filing_as(&format!(
            "{request_id}{}",
            "r".repeat(128 - request_id.len() + extra)
        ));
        request.address = Some(Address {
            street_address: "é".repeat(200 + extra),
            cross_street: "ß".repeat(200 + extra),
            borough: "m".repeat(200 + extra),
            postal_code: "10118".into(),
        });
        request.description = "🚗".repeat(4_000 + extra);
        request.photos = (0..10 + extra)
            .map(|n| {
                let prefix = format!("https://photos.example/{n}/");
                PhotoReference {
                    uri: format!("{prefix}{}", "p".repeat(2_048 - prefix.len() + extra)),
                    content_type: "image/jpeg".into(),
                }
            })
            .collect();
        let domain = "@example.org";
        request.complainant = Some(Complainant {
            name: "ñ".repeat(100 + extra),
            phone: String::new(),
            email: format!("{}{domain}", "e".repeat(254 - domain.len() + extra)),
            consent_to_contact: true,
        });
        request
    };

    let taken = app
        .create_service_request(at(0, "limits-"))
        .await?
        .into_inner()
        .service_request
        .expect("filed");
    assert_eq!(taken.photo_count, 10);
    let description: String = sqlx::query_scalar(
        "SELECT description_for_responders FROM intake.service_requests WHERE sr_number = $1",
    )
    .bind(&taken.sr_number)
    .fetch_one(&suite.database().await?)
    .await?;
    assert_eq!(description.chars().count(), 4_000, "stored whole");

    let status = app
        .create_service_request(at(1, "past-"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let mut fields: Vec<String> = status
        .get_details_bad_request()
        .expect("field violations")
        .field_violations
        .into_iter()
        .map(|violation| violation.field)
        .collect();
    fields.sort();
    let mut expected: Vec<String> = [
        "address.borough",
        "address.cross_street",
        "address.street_address",
        "complainant.email",
        "complainant.name",
        "description",
        "photos",
        "request_id",
    ]
    .map(String::from)
    .to_vec();
    // each photo's URI is one past too
    expected.extend((0..11).map(|n| format!("photos[{n}].uri")));
    expected.sort();
    assert_eq!(fields, expected);

    let listed = app
        .list_service_requests(ListServiceRequestsRequest::default())
        .await?
        .into_inner()
        .service_requests;
    assert_eq!(listed.len(), 1, "only the filing within the limits");
    suite.stop().await
}
