//! A local folder as an object store, for the embedded mode and development. Keys map to paths
//! under the root; writes go to a temporary file renamed into place. "Presigned" URLs are
//! `file://` URLs: they do not expire and only work on this machine.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;

use crate::{ObjectKey, ObjectMeta, ObjectStore, StorageError};

/// Objects as files under `root`.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl LocalStore {
    /// Creates `root` if needed.
    pub fn new(root: impl Into<PathBuf>) -> Result<LocalStore, StorageError> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(io(&root))?;
        let root = root.canonicalize().map_err(io(&root))?;
        Ok(LocalStore { root })
    }

    fn path(&self, key: &ObjectKey) -> PathBuf {
        self.root.join(key.as_str())
    }

    fn scratch(&self, path: &Path) -> PathBuf {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        path.with_file_name(format!(".{name}.{}.partial", uuid::Uuid::new_v4().simple()))
    }

    async fn write_atomically(&self, path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(io(parent))?;
        }
        let scratch = self.scratch(path);
        tokio::fs::write(&scratch, bytes)
            .await
            .map_err(io(&scratch))?;
        tokio::fs::rename(&scratch, path).await.map_err(io(path))
    }
}

#[async_trait::async_trait]
impl ObjectStore for LocalStore {
    async fn put(&self, key: &ObjectKey, bytes: Bytes, _ct: &str) -> Result<(), StorageError> {
        self.write_atomically(&self.path(key), &bytes).await
    }

    async fn put_file(&self, key: &ObjectKey, path: &Path, _ct: &str) -> Result<(), StorageError> {
        let target = self.path(key);
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(io(parent))?;
        }
        let scratch = self.scratch(&target);
        tokio::fs::copy(path, &scratch).await.map_err(io(path))?;
        tokio::fs::rename(&scratch, &target)
            .await
            .map_err(io(&target))
    }

    async fn get(&self, key: &ObjectKey) -> Result<Bytes, StorageError> {
        let path = self.path(key);
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Bytes::from(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StorageError::NotFound(key.to_string()))
            }
            Err(e) => Err(io(&path)(e)),
        }
    }

    async fn get_to_file(&self, key: &ObjectKey, path: &Path) -> Result<u64, StorageError> {
        let source = self.path(key);
        if !tokio::fs::try_exists(&source).await.map_err(io(&source))? {
            return Err(StorageError::NotFound(key.to_string()));
        }
        let scratch = self.scratch(path);
        let n = tokio::fs::copy(&source, &scratch)
            .await
            .map_err(io(&source))?;
        tokio::fs::rename(&scratch, path).await.map_err(io(path))?;
        Ok(n)
    }

    async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectMeta>, StorageError> {
        let path = self.path(key);
        match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => Ok(Some(ObjectMeta {
                key: key.to_string(),
                size: m.len(),
            })),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Local writes go to a temporary file renamed into place: there are no multipart uploads.
    async fn abort_stale_uploads(&self, _older_than: Duration) -> Result<u64, StorageError> {
        Ok(0)
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), StorageError> {
        let path = self.path(key);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&path)(e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        let mut out = Vec::new();
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            let mut entries = match tokio::fs::read_dir(&dir).await {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(&dir)(e)),
            };
            while let Some(entry) = entries.next_entry().await.map_err(io(&dir))? {
                let path = entry.path();
                let meta = entry.metadata().await.map_err(io(&path))?;
                if meta.is_dir() {
                    stack.push(path);
                    continue;
                }
                let Ok(relative) = path.strip_prefix(&self.root) else {
                    continue;
                };
                let key = relative.to_string_lossy().replace('\\', "/");
                let hidden = relative
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'));
                if key.starts_with(prefix) && !hidden {
                    out.push(ObjectMeta {
                        key,
                        size: meta.len(),
                    });
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn presign_get(
        &self,
        key: &ObjectKey,
        _expires: Duration,
    ) -> Result<url::Url, StorageError> {
        url::Url::from_file_path(self.path(key))
            .map_err(|_| StorageError::Backend("path is not absolute".into()))
    }

    async fn presign_put(
        &self,
        key: &ObjectKey,
        expires: Duration,
        _content_type: &str,
    ) -> Result<url::Url, StorageError> {
        self.presign_get(key, expires).await
    }
}
