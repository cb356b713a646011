//! Page tokens come back from clients, who may alter them: decoding refuses
//! what the service did not issue with a field violation, never a panic,
//! and what it issued decodes to the same cursor. Intake's audit listing
//! parses the cursor inside further.
#![no_main]

use dispatch311_grpc::pagination::{decode_token, encode_token};
use dispatch311_grpc::status::FieldViolations;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|token: &str| {
    let mut violations = FieldViolations::new();
    let _ = decode_token(token, "page_token", &mut violations);
    let mut clean = FieldViolations::new();
    assert_eq!(
        decode_token(&encode_token(token), "page_token", &mut clean).as_deref(),
        Some(token)
    );
    let _ = dispatch311_intake::validate::validate_audit_list("SR-1", 10, token);
});
