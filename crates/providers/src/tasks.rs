//! Vendor tasks under way, remembered by request: a provider whose vendor works asynchronously
//! (a clip takes minutes) records the vendor's task id *before* it waits, so a process that
//! dies while waiting — a killed worker, a lost lease, a redeployment — resumes polling the same
//! task instead of paying for a new one.
//!
//! The key is the provider's own digest of what it asked for (provider, model and request,
//! never a per-run detail such as an upload URL), so the same request finds the same task in
//! any later process that shares the log. [`FileTaskLog`] keeps one small JSON file per task
//! beside the result cache (`<cache>/tasks/<key>.json`), written atomically; in the platform,
//! [`SharedTaskLog`] also keeps it in the store every worker shares (`tasks/<key>.json`), so the
//! worker that takes over a dead worker's step finds the task too.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::cache::SharedResults;

/// What is remembered of a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// The provider (`replicate`, `runway`, `luma`).
    pub provider: String,
    /// The vendor's id of the task.
    pub id: String,
}

/// Where tasks under way are remembered.
#[async_trait]
pub trait TaskLog: Send + Sync + std::fmt::Debug {
    /// The task recorded under `key`, if any.
    async fn recall(&self, key: &str) -> Option<Task>;
    /// Records `task` under `key`, replacing what was there.
    ///
    /// Errors: the log cannot be written (the caller must not start waiting on a task it
    /// could not record, or a crash would pay for it twice).
    async fn record(&self, key: &str, task: &Task) -> std::io::Result<()>;
    /// Forgets `key` once its task ended (its result is in the cache, or it failed for good).
    async fn forget(&self, key: &str);
}

/// Tasks in files under one folder.
#[derive(Debug)]
pub struct FileTaskLog {
    dir: PathBuf,
}

impl FileTaskLog {
    /// A log in `dir` (created on first record).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn path(&self, key: &str) -> PathBuf {
        // Keys are hex digests; anything else is reduced to its digest so it cannot escape.
        let name = if key.chars().all(|c| c.is_ascii_hexdigit()) && !key.is_empty() {
            key.to_owned()
        } else {
            crate::sha256_hex(key.as_bytes())
        };
        self.dir.join(format!("{name}.json"))
    }
}

#[async_trait]
impl TaskLog for FileTaskLog {
    async fn recall(&self, key: &str) -> Option<Task> {
        let bytes = std::fs::read(self.path(key)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    async fn record(&self, key: &str, task: &Task) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.path(key);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(
            &tmp,
            serde_json::to_vec(task).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(&tmp, &path)
    }

    async fn forget(&self, key: &str) {
        let _ = std::fs::remove_file(self.path(key));
    }
}

/// Tasks on this worker's disk and in the store every worker shares: recorded in both before any
/// waiting, recalled from the disk first, then from the shared store.
#[derive(Debug)]
pub struct SharedTaskLog {
    local: FileTaskLog,
    shared: Arc<dyn SharedResults>,
}

impl SharedTaskLog {
    /// `local` in front of `shared`.
    pub fn new(local: FileTaskLog, shared: Arc<dyn SharedResults>) -> Self {
        Self { local, shared }
    }

    fn name(key: &str) -> String {
        format!("tasks/{}.json", crate::sha256_hex(key.as_bytes()))
    }
}

#[async_trait]
impl TaskLog for SharedTaskLog {
    async fn recall(&self, key: &str) -> Option<Task> {
        if let Some(task) = self.local.recall(key).await {
            return Some(task);
        }
        match self.shared.get(&Self::name(key)).await {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes).ok(),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "the shared task log could not be read");
                None
            }
        }
    }

    async fn record(&self, key: &str, task: &Task) -> std::io::Result<()> {
        self.local.record(key, task).await?;
        let json = serde_json::to_vec(task).map_err(std::io::Error::other)?;
        self.shared
            .put(&Self::name(key), json)
            .await
            .map_err(std::io::Error::other)
    }

    async fn forget(&self, key: &str) {
        self.local.forget(key).await;
        if let Err(e) = self.shared.delete(&Self::name(key)).await {
            tracing::warn!(error = %e, "a finished task could not be removed from the shared log");
        }
    }
}

/// Tasks in memory: for a process without a result cache (nothing outlives it anyway).
#[derive(Debug, Default)]
pub struct MemoryTaskLog(Mutex<HashMap<String, Task>>);

#[async_trait]
impl TaskLog for MemoryTaskLog {
    async fn recall(&self, key: &str) -> Option<Task> {
        self.0.lock().ok()?.get(key).cloned()
    }

    async fn record(&self, key: &str, task: &Task) -> std::io::Result<()> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("task log poisoned"))?
            .insert(key.to_owned(), task.clone());
        Ok(())
    }

    async fn forget(&self, key: &str) {
        if let Ok(mut tasks) = self.0.lock() {
            tasks.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_recorded_task_is_recalled_by_a_new_log_until_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let task = Task {
            provider: "replicate".into(),
            id: "pred0001".into(),
        };
        let key = crate::sha256_hex(b"request");
        FileTaskLog::new(dir.path())
            .record(&key, &task)
            .await
            .unwrap();
        // Another process: a fresh log over the same folder.
        let later = FileTaskLog::new(dir.path());
        assert_eq!(later.recall(&key).await, Some(task));
        later.forget(&key).await;
        assert_eq!(FileTaskLog::new(dir.path()).recall(&key).await, None);
        // A key that is not a digest stays inside the folder.
        let odd = FileTaskLog::new(dir.path());
        let t = Task {
            provider: "luma".into(),
            id: "x".into(),
        };
        odd.record("../../escape", &t).await.unwrap();
        assert_eq!(odd.recall("../../escape").await, Some(t));
        assert!(std::fs::read_dir(dir.path()).unwrap().count() == 1);
    }
}
