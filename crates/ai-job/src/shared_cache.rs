//! The provider-result cache every worker shares: [`StoredResults`] keeps cache entries in the
//! service's object store under `cache/results/{capability}/{hh}/{request hash}/{file}` (the
//! request hash is the SHA-256 the chain keys results by), so a job repeated on another worker
//! makes no paid call. Each worker's disk cache stays in front of it
//! ([`studio_providers::cache`]). Stills a vendor must fetch itself (Luma) are published under
//! `cache/results/stills/{sha256}.{ext}` and handed over as presigned URLs.

use std::sync::Arc;

use async_trait::async_trait;
use studio_providers::cache::SharedResults;
use studio_storage::{ObjectKey, ObjectStore, StorageError};

/// Where shared entries live in the object store.
pub const PREFIX: &str = "cache/results";

/// Cache entries in an object store.
#[derive(Debug, Clone)]
pub struct StoredResults {
    store: Arc<dyn ObjectStore>,
}

impl StoredResults {
    /// Entries in `store`, under [`PREFIX`].
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store }
    }

    fn key(name: &str) -> Result<ObjectKey, String> {
        ObjectKey::parse(format!("{PREFIX}/{name}")).map_err(|e| e.to_string())
    }
}

#[async_trait]
impl SharedResults for StoredResults {
    async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, String> {
        match self.store.get(&Self::key(name)?).await {
            Ok(bytes) => Ok(Some(bytes.to_vec())),
            Err(StorageError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn public_url(
        &self,
        name: &str,
        valid_for: std::time::Duration,
    ) -> Result<String, String> {
        self.store
            .presign_get(&Self::key(name)?, valid_for)
            .await
            .map(|u| u.to_string())
            .map_err(|e| e.to_string())
    }

    async fn delete(&self, name: &str) -> Result<(), String> {
        self.store
            .delete(&Self::key(name)?)
            .await
            .map_err(|e| e.to_string())
    }

    async fn put(&self, name: &str, bytes: Vec<u8>) -> Result<(), String> {
        let key = Self::key(name)?;
        let content_type = studio_media::outputs::content_type(name);
        self.store
            .put(&key, bytes.into(), content_type)
            .await
            .map_err(|e| e.to_string())
    }
}
