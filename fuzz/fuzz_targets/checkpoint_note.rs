//! Auditors read signed checkpoints from an object store the database's
//! owner may also write to, and verifier keys from wherever they were
//! handed: any note opens as a checkpoint signed by the key or is refused,
//! any key text parses or is refused.
#![no_main]

use std::sync::OnceLock;

use dispatch311_domain::event_log::{Checkpoint, parse_verifier_key};
use ed25519_dalek::{SigningKey, VerifyingKey};
use libfuzzer_sys::fuzz_target;

fn key() -> &'static VerifyingKey {
    static KEY: OnceLock<VerifyingKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::from_bytes(&[9; 32]).verifying_key())
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = parse_verifier_key(&text);
    let _ = Checkpoint::open(&text, "fuzz/event-log", key());
});
