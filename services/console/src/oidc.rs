//! Sign-in through the city's identity provider: OpenID Connect's
//! authorization-code flow with PKCE (S256) and a `state`, against the
//! configured issuer (its endpoints from `/.well-known/openid-configuration`).
//!
//! The person picks their precinct, the browser goes to the provider and
//! comes back with a code; the console exchanges it (with the PKCE verifier
//! only it knows) for the provider's access token, and takes that token only
//! if it verifies exactly as the services verify every call (their key set,
//! issuer and audience, a `role` claim of a console role): the token becomes
//! the session's bearer token, so the services see the person the provider
//! signed in. The flow's secrets travel in a short-lived sealed cookie, never
//! in a URL the console logs.

use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dispatch311_auth::{Role, TokenVerifier};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use tokio::sync::OnceCell;

use crate::session::{SessionKey, random_url_safe};

/// How long a person has to finish signing in at the provider.
pub const FLOW_LIFETIME_SECS: i64 = 600;
/// Bound to its purpose: a session cookie does not open as a flow, nor the reverse.
const FLOW_PURPOSE: &[u8] = b"dispatch311 console sign-in flow v1";

/// The settings of the identity provider.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    /// e.g. `https://login.city.example/realms/nypd` (no trailing slash needed).
    pub issuer: String,
    pub client_id: String,
    /// For a confidential client; a public client relies on PKCE alone.
    pub client_secret: Option<String>,
    /// Where the provider sends the browser back: this console's
    /// `/sign-in/callback`, as the provider has it registered.
    pub redirect_url: String,
    pub scopes: String,
}

/// What the provider's discovery document says, as far as this flow needs.
#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
}

/// A started sign-in: sealed into a cookie until the provider sends the
/// browser back.
#[derive(Serialize, Deserialize)]
pub struct Flow {
    pub state: String,
    verifier: String,
    pub precinct: String,
    expires_at: i64,
}

impl Flow {
    pub fn seal(&self, key: &SessionKey) -> String {
        key.seal(self, FLOW_PURPOSE)
    }

    pub fn open(cookie: &str, key: &SessionKey, now: i64) -> Option<Self> {
        let flow: Self = key.open(cookie, FLOW_PURPOSE)?;
        (flow.expires_at > now).then_some(flow)
    }
}

/// Who the provider signed in, as their verified token says.
pub struct SignedIn {
    pub token: String,
    pub subject: String,
    pub role: Role,
    /// The token's expiry (seconds since the epoch).
    pub expires_at: i64,
}

/// Why a sign-in did not complete, in words for the sign-in page.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("The identity provider cannot be reached right now; try again in a minute.")]
    Unreachable(#[source] anyhow::Error),
    #[error("The identity provider refused the sign-in: {0}")]
    Refused(String),
    #[error(
        "Your account's token is not accepted by dispatch311 ({0}); ask the help desk to check your account's role."
    )]
    TokenNotAccepted(String),
    #[error(
        "The console is for dispatchers, supervisors and officers; your account's role is {0}."
    )]
    NotAConsoleRole(String),
}

pub struct Oidc {
    settings: OidcSettings,
    http: reqwest::Client,
    discovery: OnceCell<Discovery>,
    /// The services' own check of a bearer token.
    verifier: TokenVerifier,
}

impl Oidc {
    pub fn new(settings: OidcSettings, verifier: TokenVerifier) -> anyhow::Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            // the provider's answers are read, never followed elsewhere
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("building the identity provider's HTTP client")?;
        Ok(Self {
            settings,
            http,
            discovery: OnceCell::new(),
            verifier,
        })
    }

    /// Fetched once; a failure is tried again at the next sign-in.
    async fn discovery(&self) -> Result<&Discovery, SignInError> {
        self.discovery
            .get_or_try_init(|| async {
                let issuer = self.settings.issuer.trim_end_matches('/');
                let url = format!("{issuer}/.well-known/openid-configuration");
                let discovery: Discovery = self
                    .http
                    .get(&url)
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .with_context(|| format!("GET {url}"))?
                    .bytes()
                    .await
                    .map_err(anyhow::Error::from)
                    .and_then(|body| {
                        serde_json::from_slice(&body).context("the discovery document")
                    })?;
                // the document must be the configured issuer's own (OIDC Discovery 4.3)
                anyhow::ensure!(
                    discovery.issuer.trim_end_matches('/') == issuer,
                    "the discovery document names issuer {:?}, not {issuer:?}",
                    discovery.issuer
                );
                Ok(discovery)
            })
            .await
            .map_err(SignInError::Unreachable)
    }

    /// Starts a sign-in: the flow to seal into a cookie, and where to send
    /// the browser (the provider's authorization endpoint).
    pub async fn start(&self, precinct: &str) -> Result<(Flow, String), SignInError> {
        let discovery = self.discovery().await?;
        let flow = Flow {
            state: random_url_safe(24),
            // 32 random bytes: a 43-character verifier (RFC 7636 4.1)
            verifier: random_url_safe(32),
            precinct: precinct.to_string(),
            expires_at: chrono::Utc::now().timestamp() + FLOW_LIFETIME_SECS,
        };
        let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(flow.verifier.as_bytes()));
        let mut url = reqwest::Url::parse(&discovery.authorization_endpoint)
            .map_err(|error| SignInError::Unreachable(error.into()))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("redirect_uri", &self.settings.redirect_url)
            .append_pair("scope", &self.settings.scopes)
            .append_pair("state", &flow.state)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        Ok((flow, url.into()))
    }

    /// Finishes a sign-in: the code exchanged for the provider's access
    /// token (with the flow's PKCE verifier), which must verify as the
    /// services verify it and carry a console role.
    pub async fn finish(&self, flow: &Flow, code: &str) -> Result<SignedIn, SignInError> {
        let discovery = self.discovery().await?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.settings.redirect_url.as_str()),
            ("client_id", self.settings.client_id.as_str()),
            ("code_verifier", flow.verifier.as_str()),
        ];
        if let Some(secret) = &self.settings.client_secret {
            form.push(("client_secret", secret));
        }
        let answer = self
            .http
            .post(&discovery.token_endpoint)
            .form(&form)
            .send()
            .await
            .map_err(|error| SignInError::Unreachable(error.into()))?;
        let status = answer.status();
        let body = answer
            .bytes()
            .await
            .map_err(|error| SignInError::Unreachable(error.into()))?;
        let tokens: TokenAnswer = serde_json::from_slice(&body).map_err(|_| {
            SignInError::Unreachable(anyhow::anyhow!(
                "the token endpoint answered {status} with something that is not a token answer"
            ))
        })?;
        let token = match (status.is_success(), tokens.access_token) {
            (true, Some(token)) => token,
            _ => {
                return Err(SignInError::Refused(
                    tokens
                        .error_description
                        .or(tokens.error)
                        .unwrap_or_else(|| format!("HTTP {status}")),
                ));
            }
        };
        let verified = self
            .verifier
            .verify(&token)
            .map_err(|error| SignInError::TokenNotAccepted(error.to_string()))?;
        if !matches!(
            verified.role,
            Role::Supervisor | Role::Dispatcher | Role::Officer
        ) {
            return Err(SignInError::NotAConsoleRole(verified.role.to_string()));
        }
        Ok(SignedIn {
            expires_at: expiry(&token).unwrap_or_else(|| chrono::Utc::now().timestamp()),
            token,
            subject: verified.sub,
            role: verified.role,
        })
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The `exp` of a token already verified (its signature checked).
fn expiry(token: &str) -> Option<i64> {
    #[derive(Deserialize)]
    struct Exp {
        exp: i64,
    }
    let payload = token.split('.').nth(1)?;
    let claims: Exp = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    Some(claims.exp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flow_opens_with_its_key_until_it_expires_and_never_as_something_else() {
        let key = SessionKey::new([7; 32]);
        let flow = Flow {
            state: "s".into(),
            verifier: "v".into(),
            precinct: "14".into(),
            expires_at: 1_000,
        };
        let sealed = flow.seal(&key);
        assert_eq!(Flow::open(&sealed, &key, 999).unwrap().precinct, "14");
        assert!(Flow::open(&sealed, &key, 1_000).is_none(), "expired");
        assert!(Flow::open(&sealed, &SessionKey::new([8; 32]), 0).is_none());
        assert!(
            crate::session::Session::open(&sealed, &key, 0).is_none(),
            "a flow is not a session"
        );
    }
}
