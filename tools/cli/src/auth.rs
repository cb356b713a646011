//! The cli's credentials: a token given in `DISPATCH311_TOKEN`, or tokens it
//! signs itself with the development key `make run` made. Production tokens
//! come from the city's identity provider; this key never leaves a developer's
//! machine.

use std::{path::Path, time::Duration};

use anyhow::Context as _;
use dispatch311_auth::{BearerToken, DEV_KEY_ID, KeyPair, Role, TokenSigner};

use crate::args::CredentialArgs;

/// File names inside the development key directory.
pub const SIGNING_KEY_FILE: &str = "auth-signing-key.pem";
pub const JWKS_FILE: &str = "auth-jwks.json";

/// How long the tokens the cli signs for its own calls live.
const OWN_TOKEN_TTL: Duration = Duration::from_secs(10 * 60);

pub enum Credentials {
    Token(String),
    Signer(TokenSigner),
}

impl Credentials {
    pub fn new(args: &CredentialArgs) -> anyhow::Result<Self> {
        if let Some(token) = args.token.as_ref().filter(|t| !t.trim().is_empty()) {
            return Ok(Self::Token(token.clone()));
        }
        Ok(Self::Signer(args.signer.signer().context(
            "no credentials: set DISPATCH311_TOKEN to a bearer token, or run through `make tour`",
        )?))
    }

    /// Credentials for calls made in `role`.
    pub fn bearer(&self, role: Role) -> anyhow::Result<BearerToken> {
        match self {
            Self::Token(token) => BearerToken::new(token),
            Self::Signer(signer) => {
                BearerToken::new(&signer.mint(default_subject(role), role, OWN_TOKEN_TTL)?)
            }
        }
    }
}

/// Who the development tokens of each role are for.
pub fn default_subject(role: Role) -> &'static str {
    match role {
        Role::Integrator => "dev-311-app",
        Role::Public => "dev-public",
        Role::Dispatcher => "D-100",
        Role::Officer => "badge-4411",
        Role::Supervisor => "S-900",
        Role::SurveySystem => "dev-survey",
        Role::Auditor => "dev-auditor",
        Role::Admin => "dev-admin",
    }
}

/// Makes a development signing key and its JWKS in `dir`, unless both exist.
pub fn dev_keys(dir: &Path, event_log_name: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    dev_event_log_key(dir, event_log_name)?;
    let key_path = dir.join(SIGNING_KEY_FILE);
    let jwks_path = dir.join(JWKS_FILE);
    if key_path.exists() && jwks_path.exists() {
        println!("development token keys kept: {}", dir.display());
        return Ok(());
    }
    let pair = KeyPair::generate(DEV_KEY_ID)?;
    write_private(&key_path, pair.private_key_pem.as_bytes())?;
    std::fs::write(&jwks_path, pair.jwks_json)
        .with_context(|| format!("writing {}", jwks_path.display()))?;
    println!("made development token keys in {}", dir.display());
    Ok(())
}

/// The key dispatch signs its event log's checkpoints with
/// (`event-log-key.pem`) and the verifier key auditors check them with
/// (`event-log.vkey`), made once.
pub const EVENT_LOG_KEY_FILE: &str = "event-log-key.pem";
pub const EVENT_LOG_VKEY_FILE: &str = "event-log.vkey";

fn dev_event_log_key(dir: &Path, name: &str) -> anyhow::Result<()> {
    let key_path = dir.join(EVENT_LOG_KEY_FILE);
    if !key_path.exists() {
        let pair = KeyPair::generate("event-log")?;
        write_private(&key_path, pair.private_key_pem.as_bytes())?;
    }
    let pem = std::fs::read_to_string(&key_path)
        .with_context(|| format!("reading {}", key_path.display()))?;
    let key = dispatch311_domain::event_log::signing_key_from_pem(&pem)
        .with_context(|| format!("{}", key_path.display()))?;
    let vkey = dispatch311_domain::event_log::verifier_key(name.trim(), &key.verifying_key());
    let vkey_path = dir.join(EVENT_LOG_VKEY_FILE);
    std::fs::write(&vkey_path, format!("{vkey}\n"))
        .with_context(|| format!("writing {}", vkey_path.display()))?;
    Ok(())
}

/// Writes a file only its owner may read.
fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::{io::Write as _, os::unix::fs::OpenOptionsExt as _};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(contents)?;
    Ok(())
}
