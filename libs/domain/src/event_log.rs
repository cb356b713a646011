//! Tamper evidence for dispatch's event log that holds against whoever owns
//! the database.
//!
//! Each job's events are hash-chained ([`event_hash`], the same formula as the
//! database's `job_event_hash`, recomputed here so a verifier never trusts a
//! function the database owner can replace). All events of all jobs also form
//! one append-only log in the order the service numbered them, a Merkle tree
//! in the style of Certificate Transparency (RFC 9162: [`leaf_hash`],
//! [`root`], [`Frontier`]). Dispatch signs checkpoints of that tree — its size
//! and root — with an Ed25519 key kept outside PostgreSQL, as C2SP signed
//! notes ([`Checkpoint`]), and exports them where the database's owner cannot
//! rewrite them. A rewritten event changes its hash; a chain recomputed to
//! match changes the tree's root; a deleted tail or a log rolled back to an
//! earlier state no longer reaches the size and root of the last signed
//! checkpoint. Verifying needs only the public key and the checkpoints.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use sha2::{Digest, Sha256};

/// One event's content, as the hash covers it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventContent<'a> {
    pub previous_hash: &'a str,
    pub job_id: uuid::Uuid,
    pub sequence: i64,
    /// e.g. `ON_SCENE`.
    pub event_type: &'a str,
    /// Microseconds since the epoch.
    pub occurred_at_micros: i64,
    pub actor: &'a str,
    /// e.g. `OFFICER`.
    pub actor_role: &'a str,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub unit_id: Option<uuid::Uuid>,
    pub reason: &'a str,
}

/// The hex SHA-256 of an event: its predecessor's hash and its content joined
/// by the unit separator (0x1F), exactly as migration 0002's
/// `job_event_hash` computes it in the database.
pub fn event_hash(event: &EventContent<'_>) -> String {
    let fields = [
        event.previous_hash.to_owned(),
        event.job_id.to_string(),
        event.sequence.to_string(),
        event.event_type.to_owned(),
        event.occurred_at_micros.to_string(),
        event.actor.to_owned(),
        event.actor_role.to_owned(),
        event.latitude.map(postgres_float_text).unwrap_or_default(),
        event.longitude.map(postgres_float_text).unwrap_or_default(),
        event.unit_id.map(|u| u.to_string()).unwrap_or_default(),
        event.reason.to_owned(),
    ];
    hex(&Sha256::digest(fields.join("\u{1f}").as_bytes()))
}

/// A double as PostgreSQL (12 and later) prints it: the shortest text that
/// reads back to the same value, in exponent form below 1e-4 or from 1e15.
fn postgres_float_text(value: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let magnitude = value.abs();
    if value == 0.0 || (1e-4..1e15).contains(&magnitude) {
        return format!("{value}");
    }
    // Rust writes 1.5e-5 as "1.5e-5"; PostgreSQL writes "1.5e-05"
    let text = format!("{value:e}");
    let (mantissa, exponent) = text.split_once('e').expect("exponent form");
    let exponent: i32 = exponent.parse().expect("an exponent");
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exponent.abs())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A 32-byte hash.
pub type Hash = [u8; 32];

/// The leaf of the whole log for one event: RFC 9162's SHA-256(0x00 || data),
/// the data being the event's hex hash.
pub fn leaf_hash(event_hash_hex: &str) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    hasher.update(event_hash_hex.as_bytes());
    hasher.finalize().into()
}

/// RFC 9162's interior node: SHA-256(0x01 || left || right).
fn node(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([1u8]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The Merkle tree hash of `leaves` (RFC 9162 MTH); the empty tree is the
/// hash of nothing.
pub fn root(leaves: &[Hash]) -> Hash {
    let mut frontier = Frontier::default();
    for leaf in leaves {
        frontier.push(*leaf);
    }
    frontier.root()
}

/// The right edge of a Merkle tree being appended to: the roots of its
/// perfect subtrees, largest first. Holds O(log n) hashes, so a checkpointer
/// can extend the tree with new events without reading the old ones again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// (height, root) of each perfect subtree, largest first.
    subtrees: Vec<(u32, Hash)>,
}

impl Frontier {
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn push(&mut self, leaf: Hash) {
        let mut entry = (0, leaf);
        while let Some(&(height, left)) = self.subtrees.last() {
            if height != entry.0 {
                break;
            }
            self.subtrees.pop();
            entry = (height + 1, node(&left, &entry.1));
        }
        self.subtrees.push(entry);
        self.size += 1;
    }

    /// Appends a whole perfect subtree of `2^height` leaves by its root, as if
    /// its leaves were pushed one by one. Only where the tree's size is a
    /// multiple of `2^height` (a verifier adds the log's blocks this way).
    pub fn push_subtree(&mut self, height: u32, root: Hash) {
        debug_assert!(self.size.is_multiple_of(1 << height), "subtree not aligned");
        let mut entry = (height, root);
        while let Some(&(top, left)) = self.subtrees.last() {
            if top != entry.0 {
                break;
            }
            self.subtrees.pop();
            entry = (top + 1, node(&left, &entry.1));
        }
        self.subtrees.push(entry);
        self.size += 1 << height;
    }

    /// The tree's root: its perfect subtrees combined right to left.
    pub fn root(&self) -> Hash {
        let mut subtrees = self.subtrees.iter().rev();
        let Some((_, last)) = subtrees.next() else {
            return Sha256::digest([]).into();
        };
        subtrees.fold(*last, |right, (_, left)| node(left, &right))
    }
}

/// The key id of a C2SP signed-note Ed25519 key: the first 4 bytes of
/// SHA-256(name || 0x0A || 0x01 || public key).
fn key_id(name: &str, key: &VerifyingKey) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([b'\n', 0x01]);
    hasher.update(key.as_bytes());
    let digest = hasher.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// A public key as auditors get it: a C2SP note verifier key,
/// `<name>+<key id hex>+<base64(0x01 || public key)>`.
pub fn verifier_key(name: &str, key: &VerifyingKey) -> String {
    let mut encoded = vec![0x01];
    encoded.extend_from_slice(key.as_bytes());
    format!(
        "{name}+{}+{}",
        hex(&key_id(name, key)),
        STANDARD.encode(encoded)
    )
}

/// Reads a verifier key written by [`verifier_key`].
pub fn parse_verifier_key(text: &str) -> Result<(String, VerifyingKey), CheckpointError> {
    let bad = || CheckpointError::BadKey(text.trim().chars().take(80).collect());
    let mut parts = text.trim().splitn(3, '+');
    let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let bytes = STANDARD.decode(key).map_err(|_| bad())?;
    let [0x01, rest @ ..] = bytes.as_slice() else {
        return Err(bad());
    };
    let key = VerifyingKey::try_from(rest).map_err(|_| bad())?;
    if hex(&key_id(name, &key)) != id {
        return Err(bad());
    }
    Ok((name.to_owned(), key))
}

/// The Ed25519 signing key in a PKCS#8 PEM text.
pub fn signing_key_from_pem(pem: &str) -> Result<SigningKey, CheckpointError> {
    use ed25519_dalek::pkcs8::DecodePrivateKey as _;
    SigningKey::from_pkcs8_pem(pem)
        .map_err(|e| CheckpointError::BadKey(format!("not an Ed25519 PKCS#8 PEM key: {e}")))
}

/// A signed checkpoint of the whole event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's name (the note's origin line), e.g. `dispatch311.nyc/event-log`.
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("not a signed checkpoint: {0}")]
    Malformed(String),
    #[error("the checkpoint is not signed by the key {0}")]
    NotSigned(String),
    #[error("not a verifier key: {0}")]
    BadKey(String),
}

impl Checkpoint {
    /// The note's body: origin, size and base64 root, a line each.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        )
    }

    /// The C2SP signed note: the body, a blank line, and one signature line
    /// `— <key name> <base64(key id || signature)>`.
    pub fn sign(&self, key_name: &str, key: &SigningKey) -> String {
        let body = self.body();
        let signature = key.sign(body.as_bytes());
        let mut blob = key_id(key_name, &key.verifying_key()).to_vec();
        blob.extend_from_slice(&signature.to_bytes());
        format!("{body}\n\u{2014} {key_name} {}\n", STANDARD.encode(blob))
    }

    /// Reads a signed note and checks that `key` (named `key_name`) signed it.
    pub fn open(note: &str, key_name: &str, key: &VerifyingKey) -> Result<Self, CheckpointError> {
        let malformed = |why: &str| CheckpointError::Malformed(why.to_owned());
        let (body, signatures) = note
            .split_once("\n\n")
            .ok_or_else(|| malformed("no blank line before the signatures"))?;
        let body = format!("{body}\n");
        let want_id = key_id(key_name, key);
        let signed = signatures.lines().any(|line| {
            let Some(rest) = line.strip_prefix("\u{2014} ") else {
                return false;
            };
            let Some((name, blob)) = rest.split_once(' ') else {
                return false;
            };
            let Ok(blob) = STANDARD.decode(blob) else {
                return false;
            };
            name == key_name
                && blob.len() == 68
                && blob[..4] == want_id
                && Signature::from_slice(&blob[4..])
                    .is_ok_and(|signature| key.verify(body.as_bytes(), &signature).is_ok())
        });
        if !signed {
            return Err(CheckpointError::NotSigned(key_name.to_owned()));
        }
        let mut lines = body.lines();
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(malformed("the body needs origin, size and root"));
        };
        let size = size
            .parse()
            .map_err(|_| malformed("the size is not a number"))?;
        let root: Hash = STANDARD
            .decode(root)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| malformed("the root is not a base64 SHA-256"))?;
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}

/// The object name a checkpoint of `size` is exported under: zero-padded so
/// names sort by size.
pub fn checkpoint_object_name(size: u64) -> String {
    format!("event-log/checkpoints/{size:020}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&format!("{i:064x}"))).collect()
    }

    /// RFC 9162's MTH by its definition: split at the largest power of two
    /// below n.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => Sha256::digest([]).into(),
            1 => leaves[0],
            n => {
                let k = n.next_power_of_two() / 2;
                node(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    #[test]
    fn the_frontier_root_is_the_rfc_9162_tree_hash_at_every_size() {
        let all = leaves(70);
        let mut frontier = Frontier::default();
        for n in 0..=70 {
            assert_eq!(frontier.root(), mth(&all[..n]), "size {n}");
            assert_eq!(frontier.size(), n as u64);
            if n < 70 {
                frontier.push(all[n]);
            }
        }
        assert_eq!(root(&all), mth(&all));
    }

    #[test]
    fn blocks_pushed_whole_give_the_same_root_as_their_leaves() {
        let all = leaves(4 * 8 + 5);
        let mut by_block = Frontier::default();
        for block in all.chunks(8).filter(|c| c.len() == 8) {
            by_block.push_subtree(3, root(block));
        }
        for leaf in &all[32..] {
            by_block.push(*leaf);
        }
        assert_eq!(by_block.size(), 37);
        assert_eq!(by_block.root(), mth(&all));
    }

    #[test]
    fn the_hash_matches_the_database_formula() {
        // computed by PostgreSQL: SELECT job_event_hash('', '00000000-0000-0000-0000-000000000001',
        //   1, 'QUEUED', '2026-01-01T00:00:00Z', 'dispatch', 'SYSTEM', NULL, NULL, NULL, 'queued')
        let content = EventContent {
            previous_hash: "",
            job_id: uuid::Uuid::from_u128(1),
            sequence: 1,
            event_type: "QUEUED",
            occurred_at_micros: 1_767_225_600_000_000,
            actor: "dispatch",
            actor_role: "SYSTEM",
            latitude: None,
            longitude: None,
            unit_id: None,
            reason: "queued",
        };
        let fields = "\u{1f}00000000-0000-0000-0000-000000000001\u{1f}1\u{1f}QUEUED\u{1f}1767225600000000\u{1f}dispatch\u{1f}SYSTEM\u{1f}\u{1f}\u{1f}\u{1f}queued";
        assert_eq!(
            event_hash(&content),
            hex(&Sha256::digest(fields.as_bytes()))
        );
        assert_eq!(postgres_float_text(40.748_44), "40.74844");
        assert_eq!(postgres_float_text(-73.985_66), "-73.98566");
        assert_eq!(postgres_float_text(40.0), "40");
        assert_eq!(postgres_float_text(0.000_015), "1.5e-05");
        assert_eq!(postgres_float_text(1e20), "1e+20");
    }

    #[test]
    fn a_signed_checkpoint_opens_with_its_key_only() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let checkpoint = Checkpoint {
            origin: "dispatch311.test/event-log".into(),
            size: 42,
            root: root(&leaves(42)),
        };
        let note = checkpoint.sign("dispatch311.test", &key);
        let published = verifier_key("dispatch311.test", &key.verifying_key());
        let (name, public) = parse_verifier_key(&published).unwrap();
        assert_eq!(Checkpoint::open(&note, &name, &public).unwrap(), checkpoint);

        let other = SigningKey::from_bytes(&[8; 32]).verifying_key();
        assert!(matches!(
            Checkpoint::open(&note, &name, &other),
            Err(CheckpointError::NotSigned(_))
        ));
        let forged = note.replace("\n42\n", "\n41\n");
        assert!(Checkpoint::open(&forged, &name, &public).is_err());
        assert!(parse_verifier_key("nonsense").is_err());
        assert_eq!(
            checkpoint_object_name(42),
            "event-log/checkpoints/00000000000000000042"
        );
    }
}
