//! API keys: each maps to an integrator identity. The gateway keeps only
//! the SHA-256 of each key (keys are long random strings, so a plain hash
//! is enough to make a stolen file useless), and re-reads the file when it
//! changes, so keys are added and revoked without a restart.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use anyhow::Context as _;
use sha2::Digest as _;

/// Who a key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Integrator {
    /// The identity intake files requests under (the token's subject).
    pub id: String,
    /// The integrator's users agreed to be contacted for the satisfaction
    /// survey when they give a phone or an e-mail.
    pub survey_consent: bool,
}

/// The file's keys by hash, and the file's modification time when read.
type Loaded = (Option<SystemTime>, HashMap<String, Integrator>);

/// The keys, by hash.
#[derive(Clone)]
pub struct ApiKeys {
    path: PathBuf,
    inner: Arc<RwLock<Loaded>>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The line of the key file for `key`: what an operator appends to give an
/// integrator a key.
pub fn key_line(key: &str, integrator: &str, survey_consent: bool) -> String {
    let consent = if survey_consent {
        " survey-consent"
    } else {
        ""
    };
    format!("{} {integrator}{consent}", hash(key))
}

fn hash(key: &str) -> String {
    sha2::Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl ApiKeys {
    /// Reads the file; refuses one with a malformed line (naming the line).
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let keys = Self {
            path: path.to_path_buf(),
            inner: Arc::new(RwLock::new((None, HashMap::new()))),
        };
        keys.reload()?;
        Ok(keys)
    }

    fn reload(&self) -> anyhow::Result<()> {
        let modified = std::fs::metadata(&self.path)
            .and_then(|meta| meta.modified())
            .ok();
        let text = std::fs::read_to_string(&self.path).with_context(|| {
            format!(
                "reading DISPATCH311_OPEN311_API_KEYS {}",
                self.path.display()
            )
        })?;
        let parsed = parse(&text)
            .with_context(|| format!("in DISPATCH311_OPEN311_API_KEYS {}", self.path.display()))?;
        *self.inner.write().unwrap_or_else(|e| e.into_inner()) = (modified, parsed);
        Ok(())
    }

    /// The integrator behind `key`, if it is a key of the file (as it is now).
    pub fn find(&self, key: &str) -> Option<Integrator> {
        let modified = std::fs::metadata(&self.path)
            .and_then(|meta| meta.modified())
            .ok();
        let stale = self.inner.read().unwrap_or_else(|e| e.into_inner()).0 != modified;
        if stale && let Err(error) = self.reload() {
            // the keys read last stay in force until the file is right again
            tracing::error!(error = %format!("{error:#}"), "cannot re-read the API keys");
        }
        let key = key.trim();
        if key.is_empty() {
            return None;
        }
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .get(&hash(key))
            .cloned()
    }
}

fn parse(text: &str) -> anyhow::Result<HashMap<String, Integrator>> {
    let mut keys = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (digest, id, consent) = match fields.as_slice() {
            [digest, id] => (*digest, *id, false),
            [digest, id, "survey-consent"] => (*digest, *id, true),
            _ => anyhow::bail!(
                "line {}: expected `<sha256 hex> <integrator id> [survey-consent]`",
                n + 1
            ),
        };
        anyhow::ensure!(
            digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()),
            "line {}: the first field is the key's SHA-256 in hex (64 digits)",
            n + 1
        );
        anyhow::ensure!(
            (1..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
            "line {}: an integrator id is 1 to 64 letters, digits, '-', '_' or '.'",
            n + 1
        );
        keys.insert(
            digest.to_ascii_lowercase(),
            Integrator {
                id: id.to_string(),
                survey_consent: consent,
            },
        );
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_found_by_its_hash_and_revoked_by_editing_the_file() {
        let dir = std::env::temp_dir().join(format!("open311-keys-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("keys");
        std::fs::write(
            &file,
            format!("# keys\n{}\n", key_line("s3cret-key", "city-app", true)),
        )
        .unwrap();
        let keys = ApiKeys::load(&file).unwrap();
        assert_eq!(
            keys.find("s3cret-key"),
            Some(Integrator {
                id: "city-app".into(),
                survey_consent: true
            })
        );
        assert_eq!(keys.find("other"), None);
        assert_eq!(keys.find(""), None);
        assert!(
            !std::fs::read_to_string(&file)
                .unwrap()
                .contains("s3cret-key")
        );
        // revoked: a later modification time
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&file, "").unwrap();
        let later = SystemTime::now() + std::time::Duration::from_secs(1);
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert_eq!(keys.find("s3cret-key"), None);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_malformed_line_is_refused_with_its_number() {
        let error = parse("abc city-app\n").unwrap_err().to_string();
        assert!(error.contains("line 1"), "{error}");
    }
}
