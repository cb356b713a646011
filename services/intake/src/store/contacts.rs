//! Complainant contacts: sealed before they are written, opened after they
//! are read, released (audited) to the survey path, and sealed again under a
//! new key.

use super::*;
use tracing::Instrument;

/// What asking for a complainant's contact found.
#[derive(Debug)]
pub enum Release {
    /// No request has this number.
    UnknownRequest,
    /// The request is anonymous, or its contact is gone.
    NoContact,
    /// The complainant did not consent to be contacted: nothing released.
    NoConsent,
    /// The contact, released and recorded.
    Released(Complainant),
}

/// The tables whose values are sealed with the contact keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedTable {
    /// `complainant_contacts`: name, phone, e-mail.
    Contacts,
    /// `sealed_descriptions`: the complainant's own words, unredacted.
    Descriptions,
}

impl SealedTable {
    pub const ALL: [SealedTable; 2] = [SealedTable::Contacts, SealedTable::Descriptions];

    pub(super) fn table(self) -> &'static str {
        match self {
            SealedTable::Contacts => "complainant_contacts",
            SealedTable::Descriptions => "sealed_descriptions",
        }
    }

    /// The associated data a value of request `sr_id` is sealed with: a
    /// value copied to another request, or from one table to the other,
    /// does not open.
    pub fn aad(self, sr_id: Uuid) -> Vec<u8> {
        let mut aad = sr_id.as_bytes().to_vec();
        if self == SealedTable::Descriptions {
            aad.extend_from_slice(b"|description");
        }
        aad
    }
}

/// What a `rekey_batch` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RekeyBatch {
    /// Contacts now sealed under the current key.
    pub resealed: usize,
    /// The last contact looked at: the next batch starts after it; `None`
    /// when no contact was left to look at.
    pub last: Option<Uuid>,
}

/// What is sealed of a complainant: everything that identifies them. Consent
/// stays in plain text, because it identifies no one and queries need it.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct SealedContact {
    name: String,
    phone: String,
    email: String,
}

/// Seals a contact for the row of request `sr_id`: the request id is the
/// associated data, so the sealed value opens in that row only.
pub(super) fn seal_contact(
    cipher: &ContactCipher,
    sr_id: Uuid,
    contact: &Complainant,
) -> StoreResult<crate::contact_crypto::Sealed> {
    let plain = serde_json::to_vec(&SealedContact {
        name: contact.name.clone(),
        phone: contact.phone.clone(),
        email: contact.email.clone(),
    })
    .expect("three strings serialize");
    cipher
        .encrypt(&plain, sr_id.as_bytes())
        .map_err(StoreError::Seal)
}

/// Opens the contact sealed in the row of request `sr_id`; consent is not
/// part of it and comes back false.
pub(super) fn open_contact(
    cipher: &ContactCipher,
    sr_id: Uuid,
    key_id: String,
    sealed: Vec<u8>,
) -> StoreResult<Complainant> {
    let plain = match cipher.decrypt(&key_id, &sealed, sr_id.as_bytes()) {
        Ok(plain) => plain,
        Err(source) => {
            return Err(StoreError::Open {
                sr_id,
                key_id,
                source,
            });
        }
    };
    // it authenticated, so it is what `seal_contact` wrote; a failure here
    // is a bug, reported like any value that does not open
    let contact: SealedContact = serde_json::from_slice(&plain).map_err(|_| StoreError::Open {
        sr_id,
        key_id,
        source: ContactCryptoError::Malformed,
    })?;
    Ok(Complainant {
        name: contact.name,
        phone: contact.phone,
        email: contact.email,
        consent_to_contact: false,
    })
}

/// How a release purpose is stored, e.g. `SATISFACTION_SURVEY`.
pub fn purpose_name(purpose: ReleasePurpose) -> &'static str {
    purpose.as_str_name().trim_start_matches("RELEASE_PURPOSE_")
}

pub(super) fn purpose_from_name(name: &str) -> ReleasePurpose {
    ReleasePurpose::from_str_name(&format!("RELEASE_PURPOSE_{name}")).unwrap_or_default()
}

impl Store {
    /// Releases the complainant's contact of a request for one purpose to one
    /// requester, and records the release. The contact is read, opened and
    /// its release recorded in one transaction, and handed out only once that
    /// commits: no contact is released without its record, and nothing is
    /// recorded for a request without a contact, without consent, or whose
    /// contact cannot be opened.
    /// With `filed_by`, only a request that integrator filed. The survey
    /// needs the complainant's consent; their own access does not.
    pub async fn release_contact(
        &self,
        request: &ContactReleaseRequest,
        filed_by: Option<&str>,
    ) -> StoreResult<Release> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "SELECT s.sr_id, s.sr_number, c.sr_id IS NOT NULL AS has_contact, \
                coalesce(c.consent_to_contact, false) AS consented, c.key_id, c.sealed \
             FROM service_requests s LEFT JOIN complainant_contacts c ON c.sr_id = s.sr_id \
             WHERE s.sr_number = $1 AND ($2::text IS NULL OR s.filed_by = $2)",
        )
        .bind(&request.sr_number)
        .bind(filed_by)
        .fetch_optional(&mut *tx)
        .instrument(dispatch311_db::statement_span("SELECT", "service_requests"))
        .await?;
        let Some(row) = row else {
            return Ok(Release::UnknownRequest);
        };
        if !row.get::<bool, _>("has_contact") {
            return Ok(Release::NoContact);
        }
        let consented = row.get::<bool, _>("consented");
        if !consented && request.purpose != ReleasePurpose::ComplainantAccess {
            return Ok(Release::NoConsent);
        }
        let sr_id: Uuid = row.get("sr_id");
        let mut complainant =
            open_contact(&self.contacts, sr_id, row.get("key_id"), row.get("sealed"))?;
        complainant.consent_to_contact = consented;
        sqlx::query(
            "INSERT INTO contact_releases (sr_id, sr_number, purpose, requester, released_at) \
             VALUES ($1, $2, $3, $4, now())",
        )
        .bind(sr_id)
        .bind(row.get::<String, _>("sr_number"))
        .bind(purpose_name(request.purpose))
        .bind(&request.requester)
        .execute(&mut *tx)
        .instrument(dispatch311_db::statement_span("INSERT", "contact_releases"))
        .await?;
        tx.commit().await?;
        Ok(Release::Released(complainant))
    }

    /// The key ids contacts are sealed under, each once.
    pub async fn contact_key_ids(&self) -> StoreResult<Vec<String>> {
        let mut ids = Vec::new();
        for table in SealedTable::ALL {
            // a walk down the key_id index, one step per distinct id: a
            // handful of index probes however many rows there are
            let table = table.table();
            let found: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "WITH RECURSIVE ids AS ( \
                    (SELECT key_id FROM {table} ORDER BY key_id LIMIT 1) \
                    UNION ALL \
                    SELECT (SELECT c.key_id FROM {table} c WHERE c.key_id > ids.key_id \
                            ORDER BY c.key_id LIMIT 1) \
                    FROM ids WHERE ids.key_id IS NOT NULL) \
                 SELECT key_id FROM ids WHERE key_id IS NOT NULL"
            )))
            .fetch_all(&self.pool)
            .await?;
            ids.extend(found);
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    pub async fn rekey_batch(
        &self,
        table: SealedTable,
        after: Option<Uuid>,
        limit: i64,
    ) -> StoreResult<RekeyBatch> {
        let current = self.contacts.current_key_id();
        let name = table.table();
        let mut tx = self.pool.begin().await?;
        // the row locks keep a concurrent rekey from sealing the same value twice
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT sr_id, key_id, sealed FROM {name} \
             WHERE key_id <> $1 AND ($2::uuid IS NULL OR sr_id > $2) \
             ORDER BY sr_id LIMIT $3 FOR UPDATE"
        )))
        .bind(current)
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let mut ids = Vec::with_capacity(rows.len());
        let mut blobs = Vec::with_capacity(rows.len());
        for row in &rows {
            let sr_id: Uuid = row.get("sr_id");
            let key_id: String = row.get("key_id");
            let sealed: Vec<u8> = row.get("sealed");
            let aad = table.aad(sr_id);
            let plain = self
                .contacts
                .decrypt(&key_id, &sealed, &aad)
                .map_err(|source| StoreError::Open {
                    sr_id,
                    key_id,
                    source,
                })?;
            let resealed = self
                .contacts
                .encrypt(&plain, &aad)
                .map_err(StoreError::Seal)?;
            ids.push(sr_id);
            blobs.push(resealed.blob);
        }
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {name} c SET key_id = $1, sealed = u.sealed \
             FROM UNNEST($2::uuid[], $3::bytea[]) AS u(sr_id, sealed) WHERE c.sr_id = u.sr_id"
        )))
        .bind(current)
        .bind(&ids)
        .bind(&blobs)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(RekeyBatch {
            resealed: ids.len(),
            last: ids.last().copied(),
        })
    }
}
