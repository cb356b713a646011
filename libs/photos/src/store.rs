//! The photo store: sanitized photos by id, behind one object-store
//! interface. A local directory by default (`DISPATCH311_PHOTO_DIR`);
//! S3-compatible storage (AWS S3, MinIO, Ceph, R2…) when
//! `DISPATCH311_PHOTO_STORE` is an `s3://bucket[/prefix]` url, with the
//! credentials, region and endpoint in the standard `AWS_*` variables.
//! Intake writes, dispatch reads, the retention sweep deletes. A photo is
//! written whole (a directory write lands under a temporary name and is
//! renamed; an S3 PUT is atomic), so a reader never sees half of one.

use std::{path::Path, sync::Arc};

use object_store::{
    ObjectStore, ObjectStoreExt as _, PutPayload, aws::AmazonS3Builder, local::LocalFileSystem,
    path::Path as ObjectPath, prefix::PrefixStore,
};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum PhotoStoreError {
    #[error("photo {0} is not in the store")]
    NotFound(Uuid),
    #[error("{0:?} is not a record name")]
    BadRecordName(String),
    #[error("photo store {location}: {source}")]
    Store {
        location: String,
        #[source]
        source: object_store::Error,
    },
}

/// Where sanitized photos are kept.
#[derive(Debug, Clone)]
pub struct PhotoStore {
    objects: Arc<dyn ObjectStore>,
    /// Where, for errors and the start-up log: a directory or an `s3://` url.
    location: String,
}

/// The directory used when neither `DISPATCH311_PHOTO_STORE` nor
/// `DISPATCH311_PHOTO_DIR` is set.
pub const DEFAULT_PHOTO_DIR: &str = "/var/lib/dispatch311/photos";
pub const STORE_VAR: &str = "DISPATCH311_PHOTO_STORE";
pub const DIR_VAR: &str = "DISPATCH311_PHOTO_DIR";

/// Where photos are kept, from flags or the environment.
#[derive(Debug, Clone, clap::Args)]
pub struct PhotoStoreArgs {
    /// An S3 bucket for the photos, `s3://bucket[/prefix]`, configured by the
    /// usual AWS_* variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    /// AWS_REGION, AWS_ENDPOINT and AWS_ALLOW_HTTP for S3-compatible servers).
    #[arg(long = "photo-store", env = STORE_VAR, value_name = STORE_VAR, conflicts_with = "photo_dir")]
    pub photo_store: Option<String>,
    /// Or a local directory for the photos (default /var/lib/dispatch311/photos).
    #[arg(long = "photo-dir", env = DIR_VAR, value_name = DIR_VAR)]
    pub photo_dir: Option<std::path::PathBuf>,
}

impl PhotoStoreArgs {
    /// The S3 store named, or else the directory (created if missing).
    pub fn open(&self) -> anyhow::Result<PhotoStore> {
        let store = self
            .photo_store
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        match store {
            Some(url) => PhotoStore::s3(url),
            None => PhotoStore::open(
                self.photo_dir
                    .as_deref()
                    .filter(|dir| !dir.as_os_str().is_empty())
                    .unwrap_or_else(|| Path::new(DEFAULT_PHOTO_DIR)),
            ),
        }
    }
}

impl PhotoStore {
    /// The store in the local directory `root`, created if missing.
    pub fn open(root: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root).map_err(|source| {
            anyhow::anyhow!(
                "cannot create the photo directory {} ({DIR_VAR}): {source}",
                root.display()
            )
        })?;
        let objects = LocalFileSystem::new_with_prefix(root)?;
        Ok(Self {
            objects: Arc::new(objects),
            location: root.display().to_string(),
        })
    }

    /// The store at `url` (`s3://bucket` or `s3://bucket/prefix`), configured
    /// by the `AWS_*` variables: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_REGION`, and for S3-compatible servers `AWS_ENDPOINT` (plus
    /// `AWS_ALLOW_HTTP=true` for a plain-HTTP one).
    pub fn s3(url: &str) -> anyhow::Result<Self> {
        let Some(rest) = url.strip_prefix("s3://") else {
            anyhow::bail!("{STORE_VAR} must be an s3://bucket[/prefix] url, not {url:?}");
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        anyhow::ensure!(!bucket.is_empty(), "{STORE_VAR} names no bucket: {url:?}");
        // reqwest's rustls takes the process-wide provider; an error only means one is set
        let _ = rustls::crypto::ring::default_provider().install_default();
        let s3 = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .map_err(|e| anyhow::anyhow!("{STORE_VAR}={url}: {e}"))?;
        let prefix = prefix.trim_matches('/');
        let objects: Arc<dyn ObjectStore> = if prefix.is_empty() {
            Arc::new(s3)
        } else {
            Arc::new(PrefixStore::new(s3, prefix))
        };
        Ok(Self {
            objects,
            location: url.to_string(),
        })
    }

    /// A directory or an `s3://` url.
    pub fn location(&self) -> &str {
        &self.location
    }

    fn path_of(id: Uuid) -> ObjectPath {
        // ids are UUIDs: no path can be smuggled in
        ObjectPath::from(id.simple().to_string())
    }

    fn error(&self, source: object_store::Error) -> PhotoStoreError {
        PhotoStoreError::Store {
            location: self.location.clone(),
            source,
        }
    }

    pub async fn put(&self, id: Uuid, bytes: &[u8]) -> Result<(), PhotoStoreError> {
        self.objects
            .put(&Self::path_of(id), PutPayload::from(bytes.to_vec()))
            .await
            .map(|_| ())
            .map_err(|e| self.error(e))
    }

    /// Deletes a photo; one already gone is not an error.
    pub async fn delete(&self, id: Uuid) -> Result<(), PhotoStoreError> {
        match self.objects.delete(&Self::path_of(id)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error(e)),
        }
    }

    pub async fn get(&self, id: Uuid) -> Result<Vec<u8>, PhotoStoreError> {
        let found = match self.objects.get(&Self::path_of(id)).await {
            Ok(found) => found,
            Err(object_store::Error::NotFound { .. }) => return Err(PhotoStoreError::NotFound(id)),
            Err(e) => return Err(self.error(e)),
        };
        let bytes = found.bytes().await.map_err(|e| self.error(e))?;
        Ok(bytes.to_vec())
    }
}

/// Other records kept in the same store beside the photos (the event log's
/// signed checkpoints), by a name of lower-case letters, digits, `-`, `_`,
/// `.` and `/`. A record is written whole, like a photo; with object lock or
/// a retention policy on the bucket, nobody can rewrite it afterwards.
impl PhotoStore {
    fn record_path(name: &str) -> Result<ObjectPath, PhotoStoreError> {
        let valid = !name.is_empty()
            && !name.starts_with('/')
            && !name.contains("..")
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_./".contains(&b));
        if !valid {
            return Err(PhotoStoreError::BadRecordName(name.to_owned()));
        }
        Ok(ObjectPath::from(name))
    }

    pub async fn put_record(&self, name: &str, bytes: &[u8]) -> Result<(), PhotoStoreError> {
        self.objects
            .put(&Self::record_path(name)?, PutPayload::from(bytes.to_vec()))
            .await
            .map(|_| ())
            .map_err(|e| self.error(e))
    }

    /// The record, or `None` when there is none by that name.
    pub async fn get_record(&self, name: &str) -> Result<Option<Vec<u8>>, PhotoStoreError> {
        match self.objects.get(&Self::record_path(name)?).await {
            Ok(found) => Ok(Some(
                found.bytes().await.map_err(|e| self.error(e))?.to_vec(),
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error(e)),
        }
    }

    /// The names of the records under `prefix` (a folder, e.g.
    /// `event-log/checkpoints`), sorted.
    pub async fn list_records(&self, prefix: &str) -> Result<Vec<String>, PhotoStoreError> {
        use futures::TryStreamExt as _;
        let prefix = Self::record_path(prefix)?;
        let mut names: Vec<String> = self
            .objects
            .list(Some(&prefix))
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await
            .map_err(|e| self.error(e))?;
        names.sort();
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stored_photo_reads_back_until_deleted_and_an_unknown_one_is_not_found() {
        let dir = std::env::temp_dir().join(format!("photos-{}", Uuid::new_v4().simple()));
        let store = PhotoStore::open(&dir).unwrap();
        let id = Uuid::new_v4();
        store.put(id, b"pixels").await.unwrap();
        assert_eq!(store.get(id).await.unwrap(), b"pixels");
        assert!(
            dir.join(id.simple().to_string()).exists(),
            "one file per photo, named by its id"
        );
        store.delete(id).await.unwrap();
        assert!(matches!(
            store.get(id).await,
            Err(PhotoStoreError::NotFound(_))
        ));
        store.delete(id).await.unwrap();
        assert!(matches!(
            store.get(Uuid::new_v4()).await,
            Err(PhotoStoreError::NotFound(_))
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_s3_store_needs_an_s3_url_with_a_bucket() {
        let error = PhotoStore::s3("https://bucket.example/photos").unwrap_err();
        assert!(error.to_string().contains("s3://"), "{error}");
        let error = PhotoStore::s3("s3:///photos").unwrap_err();
        assert!(error.to_string().contains("no bucket"), "{error}");
    }
}
