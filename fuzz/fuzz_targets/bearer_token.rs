//! Every call carries a bearer token from outside, and the key set is read
//! from a file an operator may get wrong: any token is verified or refused,
//! any key set loaded or refused, never a panic.
#![no_main]

use std::sync::OnceLock;

use dispatch311_auth::{KeyPair, TokenVerifier};
use libfuzzer_sys::fuzz_target;

fn verifier() -> &'static TokenVerifier {
    static VERIFIER: OnceLock<TokenVerifier> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        let keys = KeyPair::generate("fuzz").expect("a key pair");
        TokenVerifier::from_jwks(&keys.jwks_json, "fuzz-issuer", "fuzz-audience")
            .expect("the key set loads")
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = verifier().verify(&text);
    let _ = verifier().verify_header(Some(&text));
    let _ = TokenVerifier::from_jwks(&text, "fuzz-issuer", "fuzz-audience");
});
