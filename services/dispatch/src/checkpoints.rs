//! Signed checkpoints of the whole event log, exported where the database's
//! owner cannot rewrite them (see `dispatch311_domain::event_log`).
//!
//! Every `interval` the checkpointer numbers the events committed since the
//! last round (`event_log`: the leaves of one Merkle tree), recomputes each
//! new event's hash from its content (never trusting the stored hash nor the
//! database's hash function), extends the tree, signs a checkpoint of its size
//! and root with the key held outside PostgreSQL, and writes it to the object
//! store (`event-log/checkpoints/<size>`). Before signing anything it checks
//! that the log in the database still reaches the last exported checkpoint: a
//! rewritten or rolled-back log is reported and never signed over.
//!
//! Several replicas may run it: an advisory lock lets one at a time number
//! and sign, and each extends its own copy of the tree's right edge.

use std::{collections::HashMap, time::Duration};

use chrono::Utc;
use dispatch311_domain::event_log::{
    self as signed_log, Checkpoint, Frontier, Hash, checkpoint_object_name, leaf_hash,
};
use dispatch311_photos::PhotoStore;
use ed25519_dalek::{SigningKey, VerifyingKey};
use futures::TryStreamExt as _;
use sqlx::PgPool;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{config::EventLogConfig, store::event_log};

/// Where the exported checkpoints are, in the object store.
pub const CHECKPOINT_FOLDER: &str = "event-log/checkpoints";

/// Leaves per block of `event_log_blocks` (2^BLOCK_HEIGHT).
pub const BLOCK_HEIGHT: u32 = 8;
const BLOCK_LEAVES: i64 = 1 << BLOCK_HEIGHT;

/// How far back (in event ids) a round looks for events committed after
/// later ones: transactions commit out of id order only while they overlap.
const LATE_COMMIT_WINDOW: i64 = 100_000;

/// Why the log in the database cannot be vouched for.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Store(#[from] dispatch311_photos::PhotoStoreError),
    #[error("exported checkpoint {name}: {source}")]
    BadCheckpoint {
        name: String,
        source: signed_log::CheckpointError,
    },
    #[error("{0}")]
    Tampered(String),
}

/// The last checkpoint exported to the object store that one of `keys`
/// signed, if any.
pub async fn latest_exported(
    store: &PhotoStore,
    name: &str,
    keys: &[VerifyingKey],
) -> Result<Option<Checkpoint>, LogError> {
    let names = store.list_records(CHECKPOINT_FOLDER).await?;
    let Some(latest) = names.last() else {
        return Ok(None);
    };
    let bytes = store.get_record(latest).await?.unwrap_or_default();
    let note = String::from_utf8_lossy(&bytes);
    let mut last_error = None;
    for key in keys {
        match Checkpoint::open(&note, name, key) {
            Ok(checkpoint) => return Ok(Some(checkpoint)),
            Err(e) => last_error = Some(e),
        }
    }
    Err(LogError::BadCheckpoint {
        name: latest.clone(),
        source: last_error.unwrap_or(signed_log::CheckpointError::NotSigned(name.to_owned())),
    })
}

/// Reads the log's first `size` entries and returns the tree over them, or
/// what is wrong: an event whose content no longer gives its hash (and
/// where), or a log shorter than `size`.
pub async fn tree_of_first(pool: &PgPool, size: i64) -> Result<Frontier, LogError> {
    let mut frontier = Frontier::default();
    let mut entries = event_log::entries(pool, 0, Some(size));
    while let Some(entry) = entries.try_next().await? {
        if entry.log_index != frontier.size() as i64 {
            return Err(LogError::Tampered(format!(
                "the log skips from entry {} to {}: entries were deleted",
                frontier.size().saturating_sub(1),
                entry.log_index
            )));
        }
        frontier.push(leaf_hash(&entry.recomputed_hash));
    }
    Ok(frontier)
}

/// Checks the log in the database against a signed checkpoint: its first
/// `checkpoint.size` events must exist and hash to the signed root.
pub async fn check_against(pool: &PgPool, checkpoint: &Checkpoint) -> Result<(), LogError> {
    let size = i64::try_from(checkpoint.size).unwrap_or(i64::MAX);
    let tree = tree_of_first(pool, size).await?;
    if tree.size() < checkpoint.size {
        return Err(LogError::Tampered(format!(
            "the log holds {} events but a signed checkpoint vouched for {}: events were deleted \
             or the log was rolled back",
            tree.size(),
            checkpoint.size
        )));
    }
    if tree.root() != checkpoint.root {
        return Err(LogError::Tampered(format!(
            "the log's first {} events no longer hash to the signed checkpoint: an event was \
             rewritten (its chain recomputed to match) or the log was replaced",
            checkpoint.size
        )));
    }
    Ok(())
}

/// Numbers, signs and exports.
pub struct Checkpointer {
    pool: PgPool,
    store: PhotoStore,
    name: String,
    key: SigningKey,
    keys: Vec<VerifyingKey>,
    interval: Duration,
    /// The right edge of the tree this replica has built, and the size of
    /// the last checkpoint it knows was exported (`None` until the first
    /// round checked the log against the export).
    tree: Mutex<Option<(Frontier, u64)>>,
}

/// What a round did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Round {
    /// Nothing new since the last checkpoint.
    Unchanged,
    /// A checkpoint of this size was signed and exported.
    Signed(u64),
}

impl Checkpointer {
    pub fn new(pool: PgPool, store: PhotoStore, config: &EventLogConfig) -> Self {
        let mut keys = vec![config.signing_key.verifying_key()];
        keys.extend(config.earlier_keys.iter().copied());
        Self {
            pool,
            store,
            name: config.name.clone(),
            key: config.signing_key.clone(),
            keys,
            interval: config.interval,
            tree: Mutex::new(None),
        }
    }

    /// Rounds every interval until `stop`. A round that fails is logged and
    /// tried again; a log that no longer matches its checkpoints is never
    /// signed over.
    pub async fn run(self: std::sync::Arc<Self>, stop: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(
            log = %self.name,
            verifier_key = %signed_log::verifier_key(&self.name, &self.key.verifying_key()),
            "event log checkpoints signed every {:?}",
            self.interval
        );
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                _ = ticks.tick() => {}
            }
            match self.round().await {
                Ok(Round::Signed(size)) => tracing::debug!(size, "event log checkpoint signed"),
                Ok(Round::Unchanged) => {}
                Err(LogError::Tampered(detail)) => {
                    tracing::error!(%detail, "event log does not match its signed checkpoints: not signing")
                }
                Err(e) => tracing::warn!(error = %e, "event log checkpoint round failed"),
            }
        }
    }

    /// One round: number new events, extend the tree, sign and export.
    pub async fn round(&self) -> Result<Round, LogError> {
        let mut tree = self.tree.lock().await;
        event_log::number_new_events(&self.pool, LATE_COMMIT_WINDOW).await?;

        let (frontier, signed) = match tree.as_mut() {
            Some(state) => state,
            None => {
                // first round of this process: the log must still reach what
                // was exported before, or nothing is signed over it
                let exported = latest_exported(&self.store, &self.name, &self.keys).await?;
                if let Some(checkpoint) = &exported {
                    check_against(&self.pool, checkpoint).await?;
                }
                tree.insert((Frontier::default(), exported.map_or(0, |c| c.size)))
            }
        };
        let mut extended = frontier.clone();
        // the block being filled, rebuilt from its first leaf when a round
        // starts inside it
        let block_start = extended.size() as i64 / BLOCK_LEAVES * BLOCK_LEAVES;
        let mut block = Frontier::default();
        let mut finished_blocks: Vec<(i64, Hash)> = Vec::new();
        if block_start < extended.size() as i64 {
            let leaves =
                event_log::stored_hashes(&self.pool, block_start, extended.size() as i64).await?;
            for (_, hash) in leaves {
                block.push(leaf_hash(&hash));
            }
        }
        let mut entries = event_log::entries(&self.pool, frontier.size() as i64, None);
        while let Some(entry) = entries.try_next().await? {
            if entry.log_index != extended.size() as i64 {
                return Err(LogError::Tampered(format!(
                    "the log skips entry {}: entries were deleted",
                    extended.size()
                )));
            }
            if entry.recomputed_hash != entry.stored_hash {
                return Err(LogError::Tampered(format!(
                    "event {} of job {} does not match its hash: changed before it was checkpointed",
                    entry.sequence, entry.job_id
                )));
            }
            extended.push(leaf_hash(&entry.recomputed_hash));
            block.push(leaf_hash(&entry.recomputed_hash));
            if block.size() == BLOCK_LEAVES as u64 {
                finished_blocks.push((extended.size() as i64 / BLOCK_LEAVES - 1, block.root()));
                block = Frontier::default();
            }
        }
        drop(entries);
        event_log::save_block_roots(&self.pool, &finished_blocks).await?;
        *frontier = extended;
        if frontier.size() <= *signed {
            return Ok(Round::Unchanged);
        }
        let checkpoint = Checkpoint {
            origin: self.name.clone(),
            size: frontier.size(),
            root: frontier.root(),
        };
        // Ed25519 signs deterministically: two replicas signing the same
        // size write the same note
        let note = checkpoint.sign(&self.name, &self.key);
        self.store
            .put_record(&checkpoint_object_name(checkpoint.size), note.as_bytes())
            .await?;
        event_log::record_checkpoint(
            &self.pool,
            checkpoint.size as i64,
            &signed_log::hex(&checkpoint.root),
            &note,
            Utc::now(),
        )
        .await?;
        *signed = checkpoint.size;
        Ok(Round::Signed(checkpoint.size))
    }

    /// One job's events against the last exported checkpoint: that the log
    /// still reaches the checkpoint's size, and that the job's events, their
    /// hashes recomputed from their content, are in the tree whose root was
    /// signed (an inclusion check: the job's own blocks are rebuilt from their
    /// leaves, every other block enters by its stored root). Reads the job's
    /// blocks and one root per 256 events, not the whole log; the auditor's
    /// `verify-log` checks every event. Returns the checkpoint's size (0 when
    /// none was exported yet) and what is wrong, if anything.
    pub async fn verify_job(&self, job_id: Uuid) -> Result<(u64, Option<String>), LogError> {
        let checkpoint = match latest_exported(&self.store, &self.name, &self.keys).await {
            Ok(Some(checkpoint)) => checkpoint,
            Ok(None) => return Ok((0, None)),
            // a note in the export that none of our keys signed was put there by someone else
            Err(e @ LogError::BadCheckpoint { .. }) => return Ok((0, Some(e.to_string()))),
            Err(e) => return Err(e),
        };
        let size = i64::try_from(checkpoint.size).unwrap_or(i64::MAX);
        let problem = |detail: String| Ok((checkpoint.size, Some(detail)));
        // the log reaches the checkpoint (a gap inside shows in the blocks
        // rebuilt below, or in the verification of the job it belongs to)
        let held = event_log::size_within(&self.pool, size).await?;
        if held < size {
            return problem(format!(
                "the log holds {held} of the {size} events a signed checkpoint vouched for: events were \
                 deleted or the log was rolled back"
            ));
        }
        // this job's events count by their content, recomputed here
        let own: HashMap<i64, String> = event_log::job_entries(&self.pool, job_id, size)
            .await?
            .into_iter()
            .map(|entry| (entry.log_index, entry.recomputed_hash))
            .collect();
        let full_blocks = size / BLOCK_LEAVES;
        let stored = event_log::block_roots(&self.pool, full_blocks).await?;
        if stored.len() as i64 != full_blocks {
            // block roots not (yet) written: check the whole log instead
            return match check_against(&self.pool, &checkpoint).await {
                Ok(()) => Ok((checkpoint.size, None)),
                Err(LogError::Tampered(detail)) => problem(detail),
                Err(e) => Err(e),
            };
        }
        let mut rebuilt: std::collections::BTreeSet<i64> =
            own.keys().map(|index| index / BLOCK_LEAVES).collect();
        if size % BLOCK_LEAVES != 0 {
            rebuilt.insert(full_blocks);
        }
        let mut tree = Frontier::default();
        for block_index in 0..=full_blocks {
            let start = block_index * BLOCK_LEAVES;
            if start >= size {
                break;
            }
            let end = (start + BLOCK_LEAVES).min(size);
            if !rebuilt.contains(&block_index) {
                let root: Hash = stored[block_index as usize]
                    .1
                    .as_slice()
                    .try_into()
                    .map_err(|_| {
                        LogError::Tampered(format!("block {block_index} has no valid root"))
                    })?;
                tree.push_subtree(BLOCK_HEIGHT, root);
                continue;
            }
            // every other event by its stored hash (its own job's
            // verification checks that against its content)
            let leaves = event_log::stored_hashes(&self.pool, start, end).await?;
            if leaves.len() as i64 != end - start {
                return problem(format!(
                    "entries {start} to {} of the log, which a signed checkpoint vouched for, are not \
                     all there: events were deleted",
                    end - 1
                ));
            }
            let leaves = leaves
                .iter()
                .map(|(index, stored)| leaf_hash(own.get(index).unwrap_or(stored)));
            if end - start == BLOCK_LEAVES {
                let mut block = Frontier::default();
                leaves.for_each(|leaf| block.push(leaf));
                tree.push_subtree(BLOCK_HEIGHT, block.root());
            } else {
                leaves.for_each(|leaf| tree.push(leaf));
            }
        }
        if tree.root() != checkpoint.root {
            return problem(format!(
                "the log's first {size} events no longer hash to the signed checkpoint: an event was \
                 rewritten (its chain recomputed to match) or the log was replaced"
            ));
        }
        Ok((checkpoint.size, None))
    }
}
