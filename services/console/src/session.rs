//! Sessions without server-side state: who signed in, their bearer token and
//! their precinct, sealed (AES-256-GCM) into an HttpOnly cookie. Any replica
//! opens it; the browser's scripts never read it; a cookie edited, forged,
//! sealed under another key or past its time opens to nothing. The token
//! never appears in a URL, a page or a log.

use std::fmt;

use aes_gcm::{
    Aes256Gcm, KeyInit,
    aead::{Aead, Generate, Payload},
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dispatch311_auth::Role;
use serde::{Deserialize, Serialize};

type Nonce = aes_gcm::aead::Nonce<Aes256Gcm>;
const NONCE_LEN: usize = 12;
/// Bound to the cookie's purpose: a value sealed for anything else does not open.
const AAD: &[u8] = b"dispatch311 console session v1";

/// The key sessions are sealed with (`DISPATCH311_CONSOLE_SESSION_KEY`).
#[derive(Clone)]
pub struct SessionKey(Aes256Gcm);

impl SessionKey {
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(Aes256Gcm::new_from_slice(&bytes).expect("32 bytes make an AES-256 key"))
    }

    /// `value` as JSON, sealed for `purpose` (AES-256-GCM, the purpose as
    /// associated data), URL-safe base64: a cookie's value.
    pub(crate) fn seal<T: Serialize>(&self, value: &T, purpose: &[u8]) -> String {
        let plaintext = serde_json::to_vec(value).expect("a cookie's value serializes");
        let nonce = Nonce::try_generate().expect("the system's random source works");
        let ciphertext = self
            .0
            .encrypt(
                &nonce,
                Payload {
                    msg: &plaintext,
                    aad: purpose,
                },
            )
            .expect("a cookie is far below AES-GCM's length limit");
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        URL_SAFE_NO_PAD.encode(sealed)
    }

    /// What `seal` sealed for `purpose` with this key; nothing for anything else.
    pub(crate) fn open<T: for<'de> Deserialize<'de>>(
        &self,
        cookie: &str,
        purpose: &[u8],
    ) -> Option<T> {
        let sealed = URL_SAFE_NO_PAD.decode(cookie).ok()?;
        if sealed.len() <= NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(nonce).ok()?;
        let plaintext = self
            .0
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: purpose,
                },
            )
            .ok()?;
        serde_json::from_slice(&plaintext).ok()
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

/// A signed-in person.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Session {
    /// The bearer token every call to the services carries.
    pub token: String,
    pub role: Role,
    /// Badge number or staff id: the token's subject.
    pub subject: String,
    /// The precinct the board and the officer's unit belong to.
    pub precinct: String,
    /// Seconds since the epoch; the token expires then too.
    pub expires_at: i64,
    /// Every form carries it back (no other site can read it).
    pub csrf: String,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("role", &self.role)
            .field("subject", &self.subject)
            .field("precinct", &self.precinct)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl Session {
    pub fn new(
        token: String,
        role: Role,
        subject: String,
        precinct: String,
        expires_at: i64,
    ) -> Self {
        Self {
            token,
            role,
            subject,
            precinct,
            expires_at,
            csrf: random_token(),
        }
    }

    /// The cookie's value.
    pub fn seal(&self, key: &SessionKey) -> String {
        key.seal(self, AAD)
    }

    /// The session in `cookie`, if it was sealed with `key` and has not
    /// expired at `now` (seconds since the epoch).
    pub fn open(cookie: &str, key: &SessionKey, now: i64) -> Option<Self> {
        let session: Self = key.open(cookie, AAD)?;
        (session.expires_at > now).then_some(session)
    }

    /// Whether a form's CSRF field is this session's.
    pub fn csrf_matches(&self, sent: &str) -> bool {
        same_secret(&self.csrf, sent)
    }
}

/// Whether a secret sent back (a form token, an OAuth state) is the one
/// expected, compared in constant time (no timing tells how much matched).
pub(crate) fn same_secret(expected: &str, sent: &str) -> bool {
    let (a, b) = (expected.as_bytes(), sent.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// 128 random bits, URL-safe.
fn random_token() -> String {
    random_url_safe(16)
}

/// `len` random bytes, URL-safe base64 without padding.
pub(crate) fn random_url_safe(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).expect("the system's random source works");
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SessionKey {
        SessionKey::new([byte; 32])
    }

    fn session() -> Session {
        Session::new(
            "header.claims.signature".into(),
            Role::Supervisor,
            "S-900".into(),
            "14".into(),
            2_000,
        )
    }

    #[test]
    fn a_sealed_session_opens_with_its_key_until_it_expires() {
        let session = session();
        let sealed = session.seal(&key(1));
        assert_eq!(Session::open(&sealed, &key(1), 1_999), Some(session));
        assert_eq!(Session::open(&sealed, &key(1), 2_000), None, "expired");
        assert_eq!(Session::open(&sealed, &key(2), 1_000), None, "another key");
    }

    #[test]
    fn the_token_is_not_readable_in_the_cookie() {
        let sealed = session().seal(&key(1));
        let bytes = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("claims"));
        assert!(!sealed.contains("S-900"));
    }

    #[test]
    fn any_edit_of_the_cookie_opens_to_nothing() {
        let sealed = session().seal(&key(1));
        let mut bytes = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        for i in 0..bytes.len() {
            bytes[i] ^= 1;
            let edited = URL_SAFE_NO_PAD.encode(&bytes);
            assert_eq!(Session::open(&edited, &key(1), 0), None, "byte {i}");
            bytes[i] ^= 1;
        }
        assert_eq!(Session::open("", &key(1), 0), None);
        assert_eq!(Session::open("not base64 !", &key(1), 0), None);
    }

    #[test]
    fn only_the_sessions_own_csrf_token_matches() {
        let session = session();
        assert!(session.csrf_matches(&session.csrf.clone()));
        assert!(!session.csrf_matches(""));
        assert!(!session.csrf_matches(&random_token()));
    }
}
