//! `dispatch311-intake rekey`: re-seals under the current contact key every
//! complainant contact and original description sealed under an older one,
//! so the older key can then be removed from `DISPATCH311_CONTACT_KEYS`.
//!
//! Rotation: put the new key first (`k2:…,k1:…`) and restart intake, so new
//! contacts are sealed under it; run `rekey`; then drop `k1`. Each batch is
//! one transaction, so an interrupted run keeps what it did, and running it
//! again re-seals only what is left.

use crate::{app::open_store, config::IntakeConfig, store::SealedTable};

/// What a rekey run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RekeyReport {
    /// Contacts re-sealed.
    pub resealed: usize,
    /// Original descriptions re-sealed.
    pub descriptions: usize,
    pub batches: usize,
    pub key_id: String,
}

/// The options of the `rekey` command: `[--batch-size N]`.
/// Re-seals every contact and description not under the current key,
/// `batch_size` per transaction.
pub async fn run(config: &IntakeConfig, batch_size: i64) -> anyhow::Result<RekeyReport> {
    let store = open_store(config).await?;
    let key_id = config.contact_cipher.current_key_id().to_string();
    let mut report = RekeyReport {
        resealed: 0,
        descriptions: 0,
        batches: 0,
        key_id,
    };
    for table in SealedTable::ALL {
        let mut after = None;
        loop {
            let batch = store.rekey_batch(table, after, batch_size).await?;
            let Some(last) = batch.last else { break };
            after = Some(last);
            match table {
                SealedTable::Contacts => report.resealed += batch.resealed,
                SealedTable::Descriptions => report.descriptions += batch.resealed,
            }
            report.batches += 1;
            tracing::info!(
                contacts = report.resealed,
                descriptions = report.descriptions,
                key_id = %report.key_id,
                "re-sealed a batch"
            );
        }
    }
    store.pool().close().await;
    Ok(report)
}
