//! Object storage for Studio: an [`ObjectStore`] trait with an S3 backend ([`s3::S3Store`]:
//! aws-sdk-s3 against any endpoint, multipart uploads for large files, presigned GET/PUT URLs) and
//! a local-folder backend ([`local::LocalStore`]) for the embedded mode and development.
//!
//! Keys are checked [`ObjectKey`]s laid out by [`keys`]: per project and job
//! (`projects/{project}/jobs/{job}/…`) and content-addressed entries for the provider cache
//! (`cache/{capability}/{hh}/{sha256}`).

pub mod keys;
pub mod local;
pub mod s3;

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use sha2::{Digest, Sha256};

pub use keys::ObjectKey;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object {0} not found")]
    NotFound(String),
    #[error("invalid object key {key:?}: {message}")]
    InvalidKey { key: String, message: String },
    #[error("invalid storage settings: {0}")]
    Settings(String),
    #[error("storage i/o on {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// The backend failed (network, credentials, server error); usually worth a retry.
    #[error("storage backend: {0}")]
    Backend(String),
}

/// What a stored object is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: String,
    /// Bytes.
    pub size: u64,
}

/// An object store. Writes are atomic: a reader sees the whole new object or the old one.
#[async_trait::async_trait]
pub trait ObjectStore: Send + Sync + std::fmt::Debug + 'static {
    /// Stores `bytes` under `key`, replacing any object there.
    async fn put(
        &self,
        key: &ObjectKey,
        bytes: Bytes,
        content_type: &str,
    ) -> Result<(), StorageError>;

    /// Stores the file at `path` (multipart on S3 above the configured threshold).
    async fn put_file(
        &self,
        key: &ObjectKey,
        path: &Path,
        content_type: &str,
    ) -> Result<(), StorageError>;

    /// The object's bytes. `NotFound` when absent.
    async fn get(&self, key: &ObjectKey) -> Result<Bytes, StorageError>;

    /// Streams the object into `path` (written under a temporary name, then renamed); returns
    /// its size in bytes. `NotFound` when absent.
    async fn get_to_file(&self, key: &ObjectKey, path: &Path) -> Result<u64, StorageError>;

    /// The object's metadata, `None` when absent.
    async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectMeta>, StorageError>;

    /// Removes the object; removing an absent object succeeds.
    async fn delete(&self, key: &ObjectKey) -> Result<(), StorageError>;

    /// Objects whose key starts with `prefix`, in key order.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError>;

    /// A URL that downloads the object without credentials until `expires` from now (S3 allows
    /// 1 s to 7 days).
    async fn presign_get(
        &self,
        key: &ObjectKey,
        expires: Duration,
    ) -> Result<url::Url, StorageError>;

    /// Aborts the multipart uploads started more than `older_than` ago and never completed (a
    /// writer killed mid-upload leaves its parts stored and billed); returns how many. A store
    /// without multipart uploads answers 0.
    async fn abort_stale_uploads(&self, older_than: Duration) -> Result<u64, StorageError>;

    /// A URL that uploads the object with `PUT` and `Content-Type: content_type` until `expires`.
    async fn presign_put(
        &self,
        key: &ObjectKey,
        expires: Duration,
        content_type: &str,
    ) -> Result<url::Url, StorageError>;
}

/// Stores `bytes` content-addressed under `cache/{capability}/{hh}/{sha256}` unless an object is
/// there already, and returns the key. Equal bytes are stored once.
pub async fn put_content_addressed(
    store: &dyn ObjectStore,
    capability: &str,
    bytes: Bytes,
    content_type: &str,
) -> Result<ObjectKey, StorageError> {
    let hash = hex::encode(Sha256::digest(&bytes));
    let key = keys::cache_entry(capability, &hash)?;
    if store.head(&key).await?.is_none() {
        store.put(&key, bytes, content_type).await?;
    }
    Ok(key)
}

/// Which object store a service uses, as the `storage` table of its settings:
/// `backend = "s3"` with [`s3::S3Settings`]' keys, or `backend = "local"` with `root`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(tag = "backend", rename_all = "lowercase")]
pub enum StorageSettings {
    Local {
        /// Folder holding the objects.
        root: std::path::PathBuf,
    },
    S3(s3::S3Settings),
}

impl Default for StorageSettings {
    /// The local folder `$TMPDIR/studio-objects` (development; deployments name a bucket).
    fn default() -> Self {
        StorageSettings::Local {
            root: std::env::temp_dir().join("studio-objects"),
        }
    }
}

impl StorageSettings {
    /// Opens the store. `Settings` for an unusable bucket or folder.
    pub fn open(&self) -> Result<std::sync::Arc<dyn ObjectStore>, StorageError> {
        Ok(match self {
            StorageSettings::Local { root } => std::sync::Arc::new(local::LocalStore::new(root)?),
            StorageSettings::S3(settings) => {
                std::sync::Arc::new(s3::S3Store::new(settings.clone())?)
            }
        })
    }
}
