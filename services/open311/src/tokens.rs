//! The bearer tokens the gateway calls the services with: one per
//! integrator (so intake files and shows requests as that integrator's, and
//! "an integrator sees only what it filed" holds), the public role for
//! another integrator's request by its number, and the gateway's own for
//! reading the routing rules. Signed with the gateway's key, short-lived,
//! reused until close to their expiry.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dispatch311_auth::{Role, TokenSigner};

/// How long a token lives.
const LIFETIME: Duration = Duration::from_secs(600);
/// A token this close to its expiry is replaced.
const RENEW_BEFORE: Duration = Duration::from_secs(120);
/// The gateway's own identity (rules, the public view).
pub const GATEWAY_SUBJECT: &str = "open311-gateway";

pub struct Tokens {
    signer: TokenSigner,
    minted: Mutex<HashMap<(Role, String), (String, Instant)>>,
}

impl Tokens {
    pub fn new(signer: TokenSigner) -> Self {
        Self {
            signer,
            minted: Mutex::new(HashMap::new()),
        }
    }

    /// A token for `subject` in `role`, valid for at least two more minutes.
    pub fn token(&self, role: Role, subject: &str) -> anyhow::Result<String> {
        let mut minted = self.minted.lock().unwrap_or_else(|e| e.into_inner());
        let key = (role, subject.to_string());
        if let Some((token, until)) = minted.get(&key)
            && until.saturating_duration_since(Instant::now()) > RENEW_BEFORE
        {
            return Ok(token.clone());
        }
        let token = self.signer.mint(subject, role, LIFETIME)?;
        // integrators come and go with the key file: a bounded map
        if minted.len() > 10_000 {
            minted.clear();
        }
        minted.insert(key, (token.clone(), Instant::now() + LIFETIME));
        Ok(token)
    }
}
