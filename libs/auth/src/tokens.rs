//! Bearer tokens: signed JWTs (EdDSA / Ed25519) with issuer, audience,
//! expiry, subject and role. Services verify them with the public keys of a
//! JWKS file; the identity provider (in development, `dispatch311-cli`) and
//! a service calling another with its own identity sign them.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::Context as _;
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::pkcs8::{EncodePrivateKey as _, spki::der::pem::LineEnding};
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind, jwk::JwkSet,
};
use serde::{Deserialize, Serialize};

use crate::Role;

/// How far clocks may disagree when checking `exp`, `nbf` and `iat`: a token
/// expired, not yet valid, or issued more than this ahead of the server's
/// clock is refused. Issuers and services keep their clocks by NTP, well
/// within this.
pub const CLOCK_LEEWAY_SECS: u64 = 30;

/// The claims dispatch311 signs and reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// Who: an integrator id, a badge number, a service name.
    pub sub: String,
    pub role: Role,
    /// Seconds since the epoch.
    pub iat: u64,
    pub exp: u64,
}

/// What a verified token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Verified {
    pub sub: String,
    pub role: Role,
}

/// Why a token was refused. The messages are safe to return to the caller.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("no bearer token: send `authorization: Bearer <token>`")]
    Missing,
    #[error("the authorization header is not `Bearer <token>`")]
    NotBearer,
    #[error("the token is not a well-formed signed JWT")]
    Malformed,
    #[error("the token is signed with an unknown key")]
    UnknownKey,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued in the future (check the issuer's clock)")]
    IssuedInTheFuture,
    #[error("the token is for another audience")]
    WrongAudience,
    #[error("the token is from another issuer")]
    WrongIssuer,
    #[error("the token lacks a required claim (sub, role, exp, iss, aud) or names an unknown role")]
    BadClaims,
}

/// The claims read when verifying: who, since and until when.
#[derive(Deserialize)]
struct VerifiedClaims {
    sub: String,
    role: Role,
    exp: u64,
    #[serde(default)]
    iat: Option<u64>,
}

/// How many verified tokens are remembered. A client reuses its token for
/// many calls; past this many distinct ones the expired are dropped, and if
/// none is, all are (the next call of each simply verifies again).
const VERIFIED_CACHE_SIZE: usize = 4_096;

/// Checks tokens against the configured keys, issuer and audience.
#[derive(Clone)]
pub struct TokenVerifier {
    /// By key id; replaced whole when the issuer's key set changes
    /// ([`Self::replace_keys`]).
    keys: Arc<RwLock<HashMap<String, DecodingKey>>>,
    validation: Validation,
    /// Tokens whose signature and claims verified, by their exact text, with
    /// their expiry: the same text verifies the same way until it expires,
    /// so the signature check and JSON parsing run once per token, not per call.
    verified: Arc<Mutex<HashMap<String, (Verified, u64)>>>,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("key_ids", &self.key_ids())
            .field("issuer", &self.validation.iss)
            .field("audience", &self.validation.aud)
            .finish()
    }
}

impl TokenVerifier {
    /// From a JWKS document (`{"keys": [...]}`): every Ed25519 key with a
    /// `kid`. Keys of other types are refused rather than ignored, so a
    /// misconfigured key set fails at start, not at the first call.
    pub fn from_jwks(jwks_json: &str, issuer: &str, audience: &str) -> anyhow::Result<Self> {
        let keys = parse_jwks(jwks_json)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = CLOCK_LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Ok(Self {
            keys: Arc::new(RwLock::new(keys)),
            validation,
            verified: Arc::default(),
        })
    }

    /// Takes the keys of a new JWKS document (the issuer rotated its keys),
    /// checked as at start; on error the keys in use stay. Tokens remembered
    /// as verified are forgotten, so one signed by a key that is gone is
    /// refused from the next call on. Returns the new key ids.
    pub fn replace_keys(&self, jwks_json: &str) -> anyhow::Result<Vec<String>> {
        let keys = parse_jwks(jwks_json)?;
        *self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = keys;
        self.lock_verified().clear();
        Ok(self.key_ids())
    }

    /// The ids of the keys tokens are verified with, sorted.
    pub fn key_ids(&self) -> Vec<String> {
        let keys = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut ids: Vec<String> = keys.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Verifies the value of an `authorization` header.
    pub fn verify_header(&self, header: Option<&str>) -> Result<Verified, TokenError> {
        let header = header.ok_or(TokenError::Missing)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or(TokenError::NotBearer)?;
        self.verify(token.trim())
    }

    /// Verifies a compact JWT: signature by a known key, EdDSA only, issuer,
    /// audience, expiry, and the `sub` and `role` claims. A token verified
    /// before is accepted from memory until its expiry (with the same clock
    /// leeway as the full check).
    pub fn verify(&self, token: &str) -> Result<Verified, TokenError> {
        let now = unix_now();
        if let Some((verified, exp)) = self.lock_verified().get(token)
            && now <= exp + CLOCK_LEEWAY_SECS
        {
            return Ok(verified.clone());
        }
        let (verified, exp) = self.verify_signed(token)?;
        let mut cache = self.lock_verified();
        if cache.len() >= VERIFIED_CACHE_SIZE {
            cache.retain(|_, (_, exp)| now <= *exp + CLOCK_LEEWAY_SECS);
            if cache.len() >= VERIFIED_CACHE_SIZE {
                cache.clear();
            }
        }
        cache.insert(token.to_string(), (verified.clone(), exp));
        Ok(verified)
    }

    fn lock_verified(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Verified, u64)>> {
        // a panic while holding it leaves a map that is still consistent
        self.verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The full check: signature, algorithm, claims.
    fn verify_signed(&self, token: &str) -> Result<(Verified, u64), TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Malformed);
        }
        let keys = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| keys.get(kid))
            .ok_or(TokenError::UnknownKey)?;
        let data =
            jsonwebtoken::decode::<VerifiedClaims>(token, key, &self.validation).map_err(|e| {
                match e.kind() {
                    ErrorKind::ExpiredSignature => TokenError::Expired,
                    ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                    ErrorKind::InvalidAudience => TokenError::WrongAudience,
                    ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
                    ErrorKind::InvalidSignature => TokenError::BadSignature,
                    ErrorKind::MissingRequiredClaim(_) | ErrorKind::Json(_) => {
                        TokenError::BadClaims
                    }
                    _ => TokenError::Malformed,
                }
            })?;
        let VerifiedClaims {
            sub,
            role,
            exp,
            iat,
        } = data.claims;
        if sub.trim().is_empty() {
            return Err(TokenError::BadClaims);
        }
        // a token "issued" tomorrow was minted by a clock (or a person) that
        // cannot be trusted with what it says about expiry either
        if iat.is_some_and(|iat| iat > unix_now() + CLOCK_LEEWAY_SECS) {
            return Err(TokenError::IssuedInTheFuture);
        }
        Ok((Verified { sub, role }, exp))
    }
}

/// The Ed25519 keys of a JWKS document, by key id.
fn parse_jwks(jwks_json: &str) -> anyhow::Result<HashMap<String, DecodingKey>> {
    let set: JwkSet = serde_json::from_str(jwks_json).context("parsing the JWKS document")?;
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let kid = jwk
            .common
            .key_id
            .clone()
            .context("every key of the JWKS needs a `kid`")?;
        anyhow::ensure!(
            matches!(
                jwk.algorithm,
                jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(_)
            ),
            "key {kid:?} is not an Ed25519 (OKP) key; dispatch311 verifies EdDSA tokens only"
        );
        let key = DecodingKey::from_jwk(jwk).with_context(|| format!("reading key {kid:?}"))?;
        keys.insert(kid, key);
    }
    anyhow::ensure!(!keys.is_empty(), "the JWKS holds no keys");
    Ok(keys)
}

/// Signs tokens with one Ed25519 private key.
#[derive(Clone)]
pub struct TokenSigner {
    key_id: String,
    key: EncodingKey,
    issuer: String,
    audience: String,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("key_id", &self.key_id)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// From a PKCS#8 PEM private key and the key id its public half has in the JWKS.
    pub fn from_pem(
        key_id: &str,
        private_key_pem: &[u8],
        issuer: &str,
        audience: &str,
    ) -> anyhow::Result<Self> {
        let key = EncodingKey::from_ed_pem(private_key_pem)
            .context("reading the Ed25519 private key (PKCS#8 PEM)")?;
        Ok(Self {
            key_id: key_id.to_string(),
            key,
            issuer: issuer.to_string(),
            audience: audience.to_string(),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// A token for `subject` in `role`, valid for `ttl` from now.
    pub fn mint(&self, subject: &str, role: Role, ttl: Duration) -> anyhow::Result<String> {
        let now = unix_now();
        self.sign(&Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: subject.to_string(),
            role,
            iat: now,
            exp: now + ttl.as_secs(),
        })
    }

    /// Signs arbitrary claims (tests use it for expired and foreign tokens).
    pub fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.key_id.clone());
        jsonwebtoken::encode(&header, claims, &self.key).context("signing a token")
    }
}

/// Seconds since the epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// A fresh Ed25519 key pair: the private key as PKCS#8 PEM for the signer,
/// and a JWKS document with the public key for the services.
pub struct KeyPair {
    pub key_id: String,
    pub private_key_pem: String,
    pub jwks_json: String,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl KeyPair {
    pub fn generate(key_id: &str) -> anyhow::Result<Self> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| anyhow::anyhow!("reading the system random number generator: {e}"))?;
        let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
        let private_key_pem = signing
            .to_pkcs8_pem(LineEnding::LF)
            .context("encoding the private key")?
            .to_string();
        let public = URL_SAFE_NO_PAD.encode(signing.verifying_key().to_bytes());
        let jwks_json = serde_json::json!({
            "keys": [{
                "kty": "OKP",
                "crv": "Ed25519",
                "alg": "EdDSA",
                "use": "sig",
                "kid": key_id,
                "x": public,
            }]
        })
        .to_string();
        Ok(Self {
            key_id: key_id.to_string(),
            private_key_pem,
            jwks_json,
        })
    }

    pub fn signer(&self, issuer: &str, audience: &str) -> anyhow::Result<TokenSigner> {
        TokenSigner::from_pem(
            &self.key_id,
            self.private_key_pem.as_bytes(),
            issuer,
            audience,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUER: &str = "https://id.example.city";
    const AUDIENCE: &str = "dispatch311";

    fn setup() -> (TokenSigner, TokenVerifier) {
        let pair = KeyPair::generate("k1").unwrap();
        let verifier = TokenVerifier::from_jwks(&pair.jwks_json, ISSUER, AUDIENCE).unwrap();
        (pair.signer(ISSUER, AUDIENCE).unwrap(), verifier)
    }

    fn claims(signer: &TokenSigner) -> Claims {
        let now = unix_now();
        Claims {
            iss: signer.issuer().into(),
            aud: signer.audience().into(),
            sub: "badge-4411".into(),
            role: Role::Officer,
            iat: now,
            exp: now + 300,
        }
    }

    #[test]
    fn a_minted_token_verifies_with_its_subject_and_role() {
        let (signer, verifier) = setup();
        let token = signer
            .mint("311-app", Role::Integrator, Duration::from_secs(60))
            .unwrap();
        let verified = verifier
            .verify_header(Some(&format!("Bearer {token}")))
            .unwrap();
        assert_eq!(verified.sub, "311-app");
        assert_eq!(verified.role, Role::Integrator);
    }

    #[test]
    fn a_remembered_token_is_accepted_until_it_expires_and_an_altered_one_never() {
        let (signer, verifier) = setup();
        let token = signer.sign(&claims(&signer)).unwrap();
        let first = verifier.verify(&token).unwrap();
        assert_eq!(
            verifier.verify(&token).unwrap(),
            first,
            "the same answer again"
        );

        // one character of the signature changed: a different text, checked in full
        let mut altered = token.clone().into_bytes();
        let last = altered.len() - 2;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        assert!(verifier.verify(&altered).is_err());

        // a remembered token past its expiry is not taken from memory
        let expired = signer
            .sign(&Claims {
                iat: unix_now() - 7200,
                exp: unix_now() - 3600,
                ..claims(&signer)
            })
            .unwrap();
        verifier
            .lock_verified()
            .insert(expired.clone(), (first.clone(), unix_now() - 3600));
        assert_eq!(verifier.verify(&expired).unwrap_err(), TokenError::Expired);
    }

    #[test]
    fn a_token_issued_or_valid_only_in_the_future_is_refused() {
        let (signer, verifier) = setup();
        let tomorrow = unix_now() + 86_400;
        let issued_tomorrow = signer
            .sign(&Claims {
                iat: tomorrow,
                exp: tomorrow + 3600,
                ..claims(&signer)
            })
            .unwrap();
        assert_eq!(
            verifier.verify(&issued_tomorrow).unwrap_err(),
            TokenError::IssuedInTheFuture
        );
        // within the clock-skew allowance it is taken
        let slightly_ahead = signer
            .sign(&Claims {
                iat: unix_now() + CLOCK_LEEWAY_SECS / 2,
                ..claims(&signer)
            })
            .unwrap();
        verifier.verify(&slightly_ahead).unwrap();

        // nbf is checked too (the claims type has none: write it by hand)
        #[derive(Serialize)]
        struct WithNbf {
            #[serde(flatten)]
            claims: Claims,
            nbf: u64,
        }
        let header = Header {
            kid: Some(signer.key_id.clone()),
            ..Header::new(Algorithm::EdDSA)
        };
        let not_before_tomorrow = jsonwebtoken::encode(
            &header,
            &WithNbf {
                claims: claims(&signer),
                nbf: tomorrow,
            },
            &signer.key,
        )
        .unwrap();
        assert_eq!(
            verifier.verify(&not_before_tomorrow).unwrap_err(),
            TokenError::NotYetValid
        );
    }

    #[test]
    fn after_a_key_rotation_only_the_new_keys_sign_and_a_bad_key_set_changes_nothing() {
        let (old_signer, verifier) = setup();
        let old_token = old_signer.sign(&claims(&old_signer)).unwrap();
        verifier.verify(&old_token).unwrap();

        let rotated = KeyPair::generate("k2").unwrap();
        let new_signer = rotated.signer(ISSUER, AUDIENCE).unwrap();
        assert_eq!(verifier.replace_keys(&rotated.jwks_json).unwrap(), ["k2"]);
        assert_eq!(
            verifier.verify(&old_token).unwrap_err(),
            TokenError::UnknownKey,
            "a token remembered as verified is checked again after a rotation"
        );
        verifier
            .verify(&new_signer.sign(&claims(&new_signer)).unwrap())
            .unwrap();

        assert!(verifier.replace_keys("{\"keys\": []}").is_err());
        assert!(verifier.replace_keys("not json").is_err());
        assert_eq!(verifier.key_ids(), ["k2"], "the keys in use stay");
    }

    #[test]
    fn expired_foreign_and_forged_tokens_are_refused_with_the_reason() {
        let (signer, verifier) = setup();
        let expired = Claims {
            iat: unix_now() - 7200,
            exp: unix_now() - 3600,
            ..claims(&signer)
        };
        assert_eq!(
            verifier
                .verify(&signer.sign(&expired).unwrap())
                .unwrap_err(),
            TokenError::Expired
        );
        let other_audience = Claims {
            aud: "another-system".into(),
            ..claims(&signer)
        };
        assert_eq!(
            verifier
                .verify(&signer.sign(&other_audience).unwrap())
                .unwrap_err(),
            TokenError::WrongAudience
        );
        let other_issuer = Claims {
            iss: "https://elsewhere.example".into(),
            ..claims(&signer)
        };
        assert_eq!(
            verifier
                .verify(&signer.sign(&other_issuer).unwrap())
                .unwrap_err(),
            TokenError::WrongIssuer
        );

        // same key id, different key: the signature does not verify
        let impostor = KeyPair::generate("k1")
            .unwrap()
            .signer(ISSUER, AUDIENCE)
            .unwrap();
        let forged = impostor.sign(&claims(&signer)).unwrap();
        assert_eq!(
            verifier.verify(&forged).unwrap_err(),
            TokenError::BadSignature
        );
        let unknown_key = KeyPair::generate("k9")
            .unwrap()
            .signer(ISSUER, AUDIENCE)
            .unwrap();
        assert_eq!(
            verifier
                .verify(&unknown_key.sign(&claims(&signer)).unwrap())
                .unwrap_err(),
            TokenError::UnknownKey
        );

        // a token with its payload changed keeps the old signature
        let token = signer.sign(&claims(&signer)).unwrap();
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        let mut payload: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
        payload["role"] = "supervisor".into();
        parts[1] = URL_SAFE_NO_PAD.encode(payload.to_string());
        assert_eq!(
            verifier.verify(&parts.join(".")).unwrap_err(),
            TokenError::BadSignature
        );
    }

    #[test]
    fn headers_without_a_bearer_token_are_refused() {
        let (_, verifier) = setup();
        assert_eq!(verifier.verify_header(None), Err(TokenError::Missing));
        assert_eq!(
            verifier.verify_header(Some("Basic dXNlcjpwdw==")),
            Err(TokenError::NotBearer)
        );
        assert_eq!(
            verifier.verify_header(Some("Bearer not.a.jwt")),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn an_unsigned_token_is_refused() {
        let (signer, verifier) = setup();
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT","kid":"k1"}"#);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_string(&claims(&signer)).unwrap());
        assert!(verifier.verify(&format!("{header}.{payload}.")).is_err());
    }

    #[test]
    fn a_key_set_with_other_key_types_is_refused_at_start() {
        let hmac = r#"{"keys":[{"kty":"oct","kid":"h1","k":"c2VjcmV0"}]}"#;
        assert!(TokenVerifier::from_jwks(hmac, ISSUER, AUDIENCE).is_err());
        assert!(TokenVerifier::from_jwks(r#"{"keys":[]}"#, ISSUER, AUDIENCE).is_err());
    }
}
