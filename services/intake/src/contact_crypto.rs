//! Sealing of complainant contact details at rest: AES-256-GCM with keys from
//! configuration, each sealed value tagged with the id of the key that sealed
//! it, so keys can be rotated (`dispatch311-intake rekey`) without losing the
//! values sealed under the old one.
//!
//! A sealed value is `nonce (12 bytes) || ciphertext || tag (16 bytes)`, with
//! a fresh random nonce per value. The caller passes associated data that
//! names the row (intake uses the request's id): a sealed value copied into
//! another row no longer opens.

use std::{fmt, sync::Arc};

use aes_gcm::{
    Aes256Gcm, KeyInit,
    aead::{Aead, Generate, Payload},
};

type Nonce = aes_gcm::aead::Nonce<Aes256Gcm>;
use base64::Engine as _;

/// The variable that holds the keys: `id:base64,id:base64,…`, current key first.
pub const KEYS_VAR: &str = "DISPATCH311_CONTACT_KEYS";

/// Bytes of a random AES-GCM nonce, in front of every sealed value.
pub const NONCE_LEN: usize = 12;
/// Bytes of the authentication tag at the end of every sealed value.
pub const TAG_LEN: usize = 16;
/// Bytes of an AES-256 key.
pub const KEY_LEN: usize = 32;
/// Longest key id; ids are stored in every row.
pub const MAX_KEY_ID: usize = 32;

/// Why a sealed value could not be made or opened. Messages name key ids,
/// never key material or contents.
#[derive(Debug, thiserror::Error)]
pub enum ContactCryptoError {
    #[error("no contact key with id {0} is configured in {KEYS_VAR}")]
    UnknownKey(String),
    #[error(
        "the value sealed under key {0} does not authenticate: altered, moved from another row, or sealed with another key of that id"
    )]
    Unauthentic(String),
    #[error("the value sealed under key {key_id} is {len} bytes, shorter than a nonce and a tag")]
    Truncated { key_id: String, len: usize },
    #[error("the system random number generator failed")]
    Random,
    #[error("the value is too long to seal")]
    TooLong,
    #[error("the opened value is not what was sealed")]
    Malformed,
}

/// What is wrong with the configured keys. Messages name the entry and its
/// id, never the key itself.
#[derive(Debug, thiserror::Error)]
pub enum KeyConfigError {
    #[error("{KEYS_VAR} holds no key: give at least one as id:base64")]
    Empty,
    #[error("{KEYS_VAR} entry {0} is not id:base64")]
    NotIdAndKey(usize),
    #[error("{KEYS_VAR} entry {0}: a key id is 1 to {MAX_KEY_ID} letters, digits, '-' or '_'")]
    BadKeyId(usize),
    #[error(
        "{KEYS_VAR} key {0} is not {KEY_LEN} bytes in base64 (make one with `head -c 32 /dev/urandom | base64`)"
    )]
    BadKey(String),
    #[error("{KEYS_VAR} names key {0} twice")]
    DuplicateKeyId(String),
}

/// A value sealed under the current key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    /// `nonce || ciphertext || tag`.
    pub blob: Vec<u8>,
}

/// The contact keys by id. The first is the current key, which seals every
/// new value; all of them open values. Cheap to clone.
#[derive(Clone)]
pub struct ContactCipher {
    /// In configuration order: the current key first.
    keys: Arc<[(String, Aes256Gcm)]>,
}

impl fmt::Debug for ContactCipher {
    // key ids only: the keys never reach a log line
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContactCipher")
            .field("key_ids", &self.key_ids().collect::<Vec<_>>())
            .finish()
    }
}

impl ContactCipher {
    /// Parses `id:base64,id:base64,…` (the current key first); blanks around
    /// entries are ignored.
    pub fn parse(spec: &str) -> Result<Self, KeyConfigError> {
        let mut keys: Vec<(String, Aes256Gcm)> = Vec::new();
        let entries = spec.split(',').map(str::trim).filter(|e| !e.is_empty());
        for (index, entry) in entries.enumerate() {
            let position = index + 1;
            let Some((id, key)) = entry.split_once(':') else {
                return Err(KeyConfigError::NotIdAndKey(position));
            };
            let id = id.trim();
            if !valid_key_id(id) {
                return Err(KeyConfigError::BadKeyId(position));
            }
            if keys.iter().any(|(known, _)| known == id) {
                return Err(KeyConfigError::DuplicateKeyId(id.to_string()));
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(key.trim())
                .map_err(|_| KeyConfigError::BadKey(id.to_string()))?;
            if bytes.len() != KEY_LEN {
                return Err(KeyConfigError::BadKey(id.to_string()));
            }
            let cipher = Aes256Gcm::new_from_slice(&bytes)
                .map_err(|_| KeyConfigError::BadKey(id.to_string()))?;
            keys.push((id.to_string(), cipher));
        }
        if keys.is_empty() {
            return Err(KeyConfigError::Empty);
        }
        Ok(Self { keys: keys.into() })
    }

    /// The id of the key new values are sealed under.
    pub fn current_key_id(&self) -> &str {
        &self.keys[0].0
    }

    /// Every configured key id, the current one first.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|(id, _)| id.as_str())
    }

    pub fn has_key(&self, key_id: &str) -> bool {
        self.keys.iter().any(|(id, _)| id == key_id)
    }

    /// Seals `plaintext` under the current key with a fresh random nonce;
    /// `aad` (authenticated, not stored) must be given again to open it.
    pub fn encrypt(&self, plaintext: &[u8], aad: &[u8]) -> Result<Sealed, ContactCryptoError> {
        let (key_id, cipher) = &self.keys[0];
        let nonce = Nonce::try_generate().map_err(|_| ContactCryptoError::Random)?;
        let ciphertext = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| ContactCryptoError::TooLong)?;
        let mut blob = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&ciphertext);
        Ok(Sealed {
            key_id: key_id.clone(),
            blob,
        })
    }

    /// Opens a value sealed under `key_id` with the same `aad`.
    pub fn decrypt(
        &self,
        key_id: &str,
        blob: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, ContactCryptoError> {
        let Some((_, cipher)) = self.keys.iter().find(|(id, _)| id == key_id) else {
            return Err(ContactCryptoError::UnknownKey(key_id.to_string()));
        };
        if blob.len() < NONCE_LEN + TAG_LEN {
            return Err(ContactCryptoError::Truncated {
                key_id: key_id.to_string(),
                len: blob.len(),
            });
        }
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(nonce).expect("the nonce is NONCE_LEN bytes");
        cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map_err(|_| ContactCryptoError::Unauthentic(key_id.to_string()))
    }
}

fn valid_key_id(id: &str) -> bool {
    (1..=MAX_KEY_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> String {
        base64::engine::general_purpose::STANDARD.encode([byte; KEY_LEN])
    }

    fn cipher(spec: &str) -> ContactCipher {
        ContactCipher::parse(spec).expect("valid keys")
    }

    const AAD: &[u8] = b"0192f1c2-7a3b-7000-8000-000000000001";
    const CONTACT: &[u8] =
        br#"{"name":"Ada Canary","phone":"+1 212 555 0199","email":"ada@example.org"}"#;

    #[test]
    fn a_sealed_value_opens_with_its_key_and_associated_data() {
        let cipher = cipher(&format!("k1:{}", key(1)));
        let sealed = cipher.encrypt(CONTACT, AAD).unwrap();
        assert_eq!(sealed.key_id, "k1");
        assert_eq!(sealed.blob.len(), NONCE_LEN + CONTACT.len() + TAG_LEN);
        assert_eq!(cipher.decrypt("k1", &sealed.blob, AAD).unwrap(), CONTACT);
    }

    #[test]
    fn the_plaintext_never_appears_in_the_sealed_value() {
        let cipher = cipher(&format!("k1:{}", key(1)));
        let sealed = cipher.encrypt(CONTACT, AAD).unwrap();
        for needle in [&b"Ada Canary"[..], b"555 0199", b"ada@example.org", b"name"] {
            assert!(
                !sealed.blob.windows(needle.len()).any(|w| w == needle),
                "{} is readable in the sealed value",
                String::from_utf8_lossy(needle)
            );
        }
        // a fresh nonce each time: sealing the same contact twice gives two different values
        let again = cipher.encrypt(CONTACT, AAD).unwrap();
        assert_ne!(sealed.blob, again.blob);
        assert_ne!(sealed.blob[..NONCE_LEN], again.blob[..NONCE_LEN]);
    }

    #[test]
    fn a_value_moved_to_another_row_does_not_open() {
        let cipher = cipher(&format!("k1:{}", key(1)));
        let sealed = cipher.encrypt(CONTACT, AAD).unwrap();
        let other_row = b"0192f1c2-7a3b-7000-8000-000000000002";
        let err = cipher.decrypt("k1", &sealed.blob, other_row).unwrap_err();
        assert!(
            matches!(err, ContactCryptoError::Unauthentic(ref id) if id == "k1"),
            "{err}"
        );
    }

    #[test]
    fn any_altered_byte_is_refused() {
        let cipher = cipher(&format!("k1:{}", key(1)));
        let sealed = cipher.encrypt(CONTACT, AAD).unwrap();
        // nonce, ciphertext and tag are all covered
        for position in [0, NONCE_LEN, NONCE_LEN + 5, sealed.blob.len() - 1] {
            let mut altered = sealed.blob.clone();
            altered[position] ^= 0x01;
            let err = cipher.decrypt("k1", &altered, AAD).unwrap_err();
            assert!(
                matches!(err, ContactCryptoError::Unauthentic(_)),
                "byte {position}: {err}"
            );
        }
        let err = cipher
            .decrypt("k1", &sealed.blob[..NONCE_LEN + TAG_LEN - 1], AAD)
            .unwrap_err();
        assert!(
            matches!(err, ContactCryptoError::Truncated { len: 27, .. }),
            "{err}"
        );
    }

    #[test]
    fn old_keys_still_open_and_new_values_use_the_first_key() {
        let old = cipher(&format!("k1:{}", key(1)));
        let sealed_under_k1 = old.encrypt(CONTACT, AAD).unwrap();

        let rotated = cipher(&format!("k2:{}, k1:{}", key(2), key(1)));
        assert_eq!(rotated.current_key_id(), "k2");
        assert_eq!(rotated.key_ids().collect::<Vec<_>>(), ["k2", "k1"]);
        assert_eq!(
            rotated.decrypt("k1", &sealed_under_k1.blob, AAD).unwrap(),
            CONTACT
        );
        let sealed_under_k2 = rotated.encrypt(CONTACT, AAD).unwrap();
        assert_eq!(sealed_under_k2.key_id, "k2");

        // once k1 is retired, what it sealed names the missing key
        let only_k2 = cipher(&format!("k2:{}", key(2)));
        let err = only_k2
            .decrypt("k1", &sealed_under_k1.blob, AAD)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no contact key with id k1 is configured in DISPATCH311_CONTACT_KEYS"
        );
        // and a value claimed to be under k2 but sealed under k1 does not open
        let err = only_k2
            .decrypt("k2", &sealed_under_k1.blob, AAD)
            .unwrap_err();
        assert!(matches!(err, ContactCryptoError::Unauthentic(_)), "{err}");
    }

    #[test]
    fn bad_key_configuration_is_explained_without_the_key() {
        let short = base64::engine::general_purpose::STANDARD.encode([7u8; 16]);
        let cases = [
            (
                "",
                "DISPATCH311_CONTACT_KEYS holds no key: give at least one as id:base64",
            ),
            (
                " , ",
                "DISPATCH311_CONTACT_KEYS holds no key: give at least one as id:base64",
            ),
            (
                "justakey",
                "DISPATCH311_CONTACT_KEYS entry 1 is not id:base64",
            ),
            (
                &format!("k1:{},k 2:{}", key(1), key(2)),
                "DISPATCH311_CONTACT_KEYS entry 2: a key id is 1 to 32 letters, digits, '-' or '_'",
            ),
            (
                &format!("k1:{short}"),
                "DISPATCH311_CONTACT_KEYS key k1 is not 32 bytes in base64 (make one with `head -c 32 /dev/urandom | base64`)",
            ),
            (
                "k1:not base64!",
                "DISPATCH311_CONTACT_KEYS key k1 is not 32 bytes in base64 (make one with `head -c 32 /dev/urandom | base64`)",
            ),
            (
                &format!("k1:{},k1:{}", key(1), key(2)),
                "DISPATCH311_CONTACT_KEYS names key k1 twice",
            ),
        ];
        for (spec, expected) in cases {
            let err = ContactCipher::parse(spec).unwrap_err();
            assert_eq!(err.to_string(), expected, "{spec:?}");
        }
        let cipher = cipher(&format!("k1:{}", key(1)));
        assert_eq!(
            format!("{cipher:?}"),
            r#"ContactCipher { key_ids: ["k1"] }"#
        );
    }
}
