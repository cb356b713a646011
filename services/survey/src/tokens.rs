//! Survey tokens: the capability the survey system holds for one closure.
//! A token is 256 random bits, URL-safe; only its SHA-256 is stored, so the
//! table cannot be used to answer surveys or release contact details.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest as _, Sha256};

/// Random bytes in a token (256 bits).
const TOKEN_BYTES: usize = 32;

/// A token as handed out, and the hash that is stored for it.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub hash: Vec<u8>,
}

/// A fresh token from the operating system's random source.
pub fn issue() -> Result<IssuedToken, getrandom::Error> {
    let mut bytes = [0_u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes)?;
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash(&token);
    Ok(IssuedToken { token, hash })
}

/// The stored form of a token: SHA-256 of its text.
pub fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn tokens_are_url_safe_long_and_never_repeat() {
        let mut seen = HashSet::new();
        for _ in 0..1_000 {
            let issued = issue().unwrap();
            assert_eq!(issued.token.len(), 43, "256 bits in unpadded base64");
            assert!(
                issued
                    .token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{}",
                issued.token
            );
            assert!(seen.insert(issued.token));
        }
    }

    #[test]
    fn the_stored_hash_is_the_sha256_of_the_token_and_not_the_token() {
        let issued = issue().unwrap();
        assert_eq!(issued.hash.len(), 32);
        assert_eq!(issued.hash, hash(&issued.token));
        assert_ne!(issued.hash, issued.token.as_bytes());
        // the published test vector of SHA-256("abc")
        assert_eq!(
            hash("abc")[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "sha-256 of \"abc\""
        );
    }
}
