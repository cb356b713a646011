//! Hostile input over the wire, through the real binaries: bytes no
//! generated client would send, sizes past the limits, tampered tokens,
//! injection strings. Each gets a clear status, nothing is stored, and every
//! process is still serving afterwards.

use dispatch311_auth::Role;
use dispatch311_proto::intake::v1::ListServiceRequestsRequest;
use dispatch311_tests::{
    cad::{EMPIRE_STATE, complaint},
    suite::{Service, Suite, SuiteOptions},
};
use prost::Message;
use tonic::{
    Code, Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
};

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

    // past the size limit: RESOURCE_EXHAUSTED before anything is read
    let mut huge = filing("hostile-huge");
    huge.extend(length_delimited(6, &vec![b'a'; 40 * 1024 * 1024]));
    let status = raw_call(&suite, "CreateServiceRequest", huge)
        .await?
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");

    // fields this version does not know are skipped, as protobuf promises
    let mut unknown = filing("hostile-unknown");
    unknown.extend(length_delimited(999, b"from a newer client"));
    raw_call(&suite, "CreateServiceRequest", unknown)
        .await?
        .expect("accepted");

    // SQL in the free text is text
    let mut app = suite.intake().await?;
    let mut injected = complaint("Blocked Driveway", "No Access", EMPIRE_STATE);
    injected.request_id = "hostile-sql".into();
    injected.description = "'); DROP TABLE intake.service_requests; --".into();
    app.create_service_request(injected).await?;

    // page sizes and tokens from nowhere
    for (page_size, page_token) in [(-5, ""), (0, "not-a-token"), (10, "ZGlzcGF0Y2gzMTE")] {
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
    // only the three well-formed filings were stored, the SQL as text
    let ids: Vec<&str> = listed.iter().map(|sr| sr.sr_number.as_str()).collect();
    assert_eq!(listed.len(), 3, "{ids:?}");

    // and intake still serves
    app.list_service_requests(ListServiceRequestsRequest::default())
        .await?;
    suite.stop().await
}
