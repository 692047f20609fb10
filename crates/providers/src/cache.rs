//! A content-addressed store of provider results on disk.
//!
//! Layout: `<root>/<capability>/<key[0..2]>/<key>/entry.json` plus the result's files beside it,
//! where `key` is the SHA-256 of (capability, provider, model, request). A result is written into
//! `<root>/tmp/…` and renamed into place in one step, so an entry is either complete or absent,
//! whatever moment a process dies at. "This provider cannot serve this request" answers are
//! stored too, so a repeated run asks no provider again.
//!
//! In the platform every worker's disk cache sits in front of one [`SharedResults`] store (an
//! S3 bucket): a result missing on disk is looked for there before any provider is called, and a
//! result a provider made is published there, its files first and `entry.json` last, so a reader
//! that finds the entry finds its files. Only results are shared; "cannot serve" answers depend
//! on the worker (its media folder, its keys) and stay on its disk.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::capability::{Artifacts, Capability, Produced};

/// What a cache entry holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Entry<T> {
    /// A result.
    Ok {
        /// The result, paths relative to the entry folder.
        output: T,
        /// What producing it cost, micro-USD.
        cost_micro_usd: u64,
    },
    /// The provider said it cannot serve this request.
    Unavailable {
        /// Its reason.
        message: String,
    },
}

/// A store every worker shares, holding cache entries under relative names
/// (`image/ab/ab12…/entry.json`).
#[async_trait]
pub trait SharedResults: Send + Sync + std::fmt::Debug {
    /// The object's bytes; `None` when absent. Errors: the store cannot be reached.
    async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, String>;
    /// Stores `bytes` under `name`. Errors: the store cannot be reached.
    async fn put(&self, name: &str, bytes: Vec<u8>) -> Result<(), String>;
    /// Removes `name`; removing an absent object succeeds. Errors: the store cannot be reached.
    async fn delete(&self, name: &str) -> Result<(), String>;
    /// A URL anyone can download `name` from for `valid_for` (a presigned URL), for vendors
    /// that fetch their inputs themselves. Errors: the store cannot make one.
    async fn public_url(
        &self,
        name: &str,
        valid_for: std::time::Duration,
    ) -> Result<String, String>;
}

/// The result cache rooted at one folder.
#[derive(Debug)]
pub struct ResultCache {
    root: PathBuf,
    scratch_counter: AtomicU64,
    shared: Option<Arc<dyn SharedResults>>,
}

impl ResultCache {
    /// A cache under `root` (created on first store).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            scratch_counter: AtomicU64::new(0),
            shared: None,
        }
    }

    /// This cache in front of `shared`, the store every worker shares.
    pub fn with_shared(mut self, shared: Arc<dyn SharedResults>) -> Self {
        self.shared = Some(shared);
        self
    }

    /// The shared name of entry `key`'s file `file`.
    fn shared_name(capability: &str, key: &str, file: &str) -> String {
        format!("{capability}/{}/{key}/{file}", &key[..2])
    }

    /// Publishes `bytes` under `stills/{sha256}.{extension}` in the shared store and returns a
    /// URL anyone can fetch them from for `valid_for`; `None` without a shared store (a vendor
    /// that only takes URLs cannot be served then).
    ///
    /// Errors: the store cannot be written or cannot presign.
    pub async fn public_still(
        &self,
        bytes: &[u8],
        extension: &str,
        valid_for: std::time::Duration,
    ) -> Result<Option<String>, String> {
        let Some(shared) = &self.shared else {
            return Ok(None);
        };
        let name = format!("stills/{}.{extension}", crate::sha256_hex(bytes));
        shared.put(&name, bytes.to_vec()).await?;
        shared.public_url(&name, valid_for).await.map(Some)
    }

    /// Copies entry `key` from the shared store onto disk and returns it, with local paths;
    /// `None` without a shared store, when it has no such entry, or when it cannot be read
    /// (then the request is made again; a warning says why).
    pub async fn fetch_shared<C: Capability>(&self, key: &str) -> Option<Entry<C::Output>> {
        let shared = self.shared.as_ref()?;
        let fetched = async {
            let Some(json) = shared
                .get(&Self::shared_name(C::NAME, key, "entry.json"))
                .await?
            else {
                return Ok(false);
            };
            let mut entry: Entry<C::Output> =
                serde_json::from_slice(&json).map_err(|e| format!("entry.json: {e}"))?;
            let Entry::Ok { output, .. } = &mut entry else {
                return Ok(false);
            };
            let scratch = self.scratch().map_err(|e| e.to_string())?;
            for path in output.artifacts_mut() {
                let relative = path.to_string_lossy().into_owned();
                let safe = path
                    .components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)));
                if !safe {
                    return Err(format!("entry names a file outside it: {relative}"));
                }
                let bytes = shared
                    .get(&Self::shared_name(C::NAME, key, &relative))
                    .await?
                    .ok_or_else(|| format!("{relative} is missing"))?;
                let local = scratch.join(&relative);
                if let Some(parent) = local.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
                }
                std::fs::write(&local, bytes).map_err(|e| e.to_string())?;
            }
            std::fs::write(scratch.join("entry.json"), &json).map_err(|e| e.to_string())?;
            self.place(C::NAME, key, &scratch)
                .map_err(|e| e.to_string())?;
            Ok::<bool, String>(true)
        };
        match fetched.await {
            Ok(true) => self.load::<C>(key),
            Ok(false) => None,
            Err(e) => {
                tracing::warn!(capability = C::NAME, key, error = %e, "the shared result cache could not serve an entry");
                None
            }
        }
    }

    /// Publishes entry `key` (a result on disk) to the shared store: its files, then
    /// `entry.json`. Does nothing without a shared store or for an entry that is not a result.
    ///
    /// Errors: the entry cannot be read or the store cannot be written.
    pub async fn publish<C: Capability>(&self, key: &str) -> Result<(), String> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        let dir = self.entry_dir(C::NAME, key);
        let json = std::fs::read(dir.join("entry.json")).map_err(|e| e.to_string())?;
        let mut entry: Entry<C::Output> =
            serde_json::from_slice(&json).map_err(|e| e.to_string())?;
        let Entry::Ok { output, .. } = &mut entry else {
            return Ok(());
        };
        for path in output.artifacts_mut() {
            let relative = path.to_string_lossy().into_owned();
            let bytes = std::fs::read(dir.join(&relative)).map_err(|e| e.to_string())?;
            shared
                .put(&Self::shared_name(C::NAME, key, &relative), bytes)
                .await?;
        }
        shared
            .put(&Self::shared_name(C::NAME, key, "entry.json"), json)
            .await
    }

    /// The log of vendor tasks under way, beside the results (`<root>/tasks`) and, with a
    /// shared store, in it too, so a request resumed by a later process, on this worker or
    /// another, finds the task an earlier one started ([`crate::tasks`]).
    pub fn tasks(&self) -> Arc<dyn crate::tasks::TaskLog> {
        let local = crate::tasks::FileTaskLog::new(self.root.join("tasks"));
        match &self.shared {
            Some(shared) => Arc::new(crate::tasks::SharedTaskLog::new(local, shared.clone())),
            None => Arc::new(local),
        }
    }

    /// The cache's root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn entry_dir(&self, capability: &str, key: &str) -> PathBuf {
        self.root.join(capability).join(&key[..2]).join(key)
    }

    /// Returns the entry for `key`, with result paths made absolute; `None` when absent,
    /// unreadable or missing one of its files (then the request is simply made again).
    pub fn load<C: Capability>(&self, key: &str) -> Option<Entry<C::Output>> {
        let dir = self.entry_dir(C::NAME, key);
        let bytes = std::fs::read(dir.join("entry.json")).ok()?;
        let mut entry: Entry<C::Output> = serde_json::from_slice(&bytes).ok()?;
        if let Entry::Ok { output, .. } = &mut entry {
            for path in output.artifacts_mut() {
                *path = dir.join(&*path);
                if !path.is_file() {
                    return None;
                }
            }
        }
        Some(entry)
    }

    /// Creates an empty scratch folder for one provider call.
    pub fn scratch(&self) -> std::io::Result<PathBuf> {
        let n = self.scratch_counter.fetch_add(1, Ordering::Relaxed);
        let dir = self
            .root
            .join("tmp")
            .join(format!("{}-{n}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// Stores a result whose files lie in `scratch` and returns it with its final paths.
    ///
    /// Errors: a result path outside `scratch`; I/O failures.
    pub fn store<C: Capability>(
        &self,
        key: &str,
        scratch: &Path,
        produced: Produced<C::Output>,
    ) -> std::io::Result<C::Output> {
        let Produced {
            mut output,
            cost_micro_usd,
        } = produced;
        for path in output.artifacts_mut() {
            let relative = path.strip_prefix(scratch).map_err(|_| {
                std::io::Error::other(format!(
                    "provider returned {} outside its scratch folder",
                    path.display()
                ))
            })?;
            *path = relative.to_path_buf();
        }
        let entry = Entry::Ok {
            output,
            cost_micro_usd,
        };
        self.commit::<C>(key, scratch, &entry)?;
        match self.load::<C>(key) {
            Some(Entry::Ok { output, .. }) => Ok(output),
            _ => Err(std::io::Error::other("cache entry vanished after storing")),
        }
    }

    /// Remembers that a provider cannot serve the request under `key`.
    pub fn store_unavailable<C: Capability>(
        &self,
        key: &str,
        message: &str,
    ) -> std::io::Result<()> {
        let scratch = self.scratch()?;
        let entry: Entry<C::Output> = Entry::Unavailable {
            message: message.to_string(),
        };
        self.commit::<C>(key, &scratch, &entry)
    }

    fn commit<C: Capability>(
        &self,
        key: &str,
        scratch: &Path,
        entry: &Entry<C::Output>,
    ) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(entry).map_err(std::io::Error::other)?;
        std::fs::write(scratch.join("entry.json"), json)?;
        self.place(C::NAME, key, scratch)
    }

    /// Renames `scratch`, holding `entry.json` and its files, into place as entry `key`.
    fn place(&self, capability: &str, key: &str, scratch: &Path) -> std::io::Result<()> {
        let dir = self.entry_dir(capability, key);
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if dir.join("entry.json").is_file() {
            // Another worker stored the same request first; the results are interchangeable.
            std::fs::remove_dir_all(scratch)?;
            return Ok(());
        }
        if dir.exists() {
            // A leftover without entry.json is not an entry; replace it.
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::rename(scratch, &dir)
    }
}
