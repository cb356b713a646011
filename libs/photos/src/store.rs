//! The photo store: sanitized photos by id. A local directory by default
//! (`DISPATCH311_PHOTO_DIR`); intake writes, dispatch reads. Writes go to a
//! temporary file renamed into place, so a reader never sees half a photo.

use std::path::{Path, PathBuf};

use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum PhotoStoreError {
    #[error("photo {0} is not in the store")]
    NotFound(Uuid),
    #[error("photo store at {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where sanitized photos are kept.
#[derive(Debug, Clone)]
pub struct PhotoStore {
    root: PathBuf,
}

/// The directory used when `DISPATCH311_PHOTO_DIR` is unset.
pub const DEFAULT_PHOTO_DIR: &str = "/var/lib/dispatch311/photos";

impl PhotoStore {
    /// The store in `DISPATCH311_PHOTO_DIR` (default [`DEFAULT_PHOTO_DIR`]),
    /// created if missing.
    pub fn from_env() -> anyhow::Result<Self> {
        let root = std::env::var("DISPATCH311_PHOTO_DIR")
            .ok()
            .filter(|dir| !dir.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_PHOTO_DIR.to_string());
        Self::open(Path::new(&root))
    }

    pub fn open(root: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root).map_err(|source| {
            anyhow::anyhow!(
                "cannot create the photo directory {} (DISPATCH311_PHOTO_DIR): {source}",
                root.display()
            )
        })?;
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    fn path_of(&self, id: Uuid) -> PathBuf {
        // ids are UUIDs: no path can be smuggled in
        self.root.join(id.simple().to_string())
    }

    pub async fn put(&self, id: Uuid, bytes: &[u8]) -> Result<(), PhotoStoreError> {
        let path = self.path_of(id);
        let partial = path.with_extension("partial");
        let io = |source| PhotoStoreError::Io {
            path: path.clone(),
            source,
        };
        tokio::fs::write(&partial, bytes).await.map_err(io)?;
        tokio::fs::rename(&partial, &path).await.map_err(io)
    }

    /// Deletes a photo; one already gone is not an error.
    pub async fn delete(&self, id: Uuid) -> Result<(), PhotoStoreError> {
        let path = self.path_of(id);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(PhotoStoreError::Io { path, source }),
        }
    }

    pub async fn get(&self, id: Uuid) -> Result<Vec<u8>, PhotoStoreError> {
        let path = self.path_of(id);
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(PhotoStoreError::NotFound(id))
            }
            Err(source) => Err(PhotoStoreError::Io { path, source }),
        }
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
}
