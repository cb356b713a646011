//! Photos come from complainants' phones, i.e. from anyone: the sniffer and
//! metadata stripper must answer every input with an image or a refusal,
//! and what it lets through must pass through it again unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(clean) = dispatch311_photos::sanitize(data) {
        let again = dispatch311_photos::sanitize(&clean.bytes)
            .expect("a sanitized photo is accepted again");
        assert_eq!(again.bytes, clean.bytes, "sanitizing is idempotent");
    }
});
