//! Pruning of a worker's scratch folders (per-task folders, the provider-result cache, the
//! render segment cache), so a long-running worker's disk does not fill up (security review L5).
//!
//! A pass deletes every file not modified for `max_age`, then, while the folder still holds
//! more than `max_bytes`, the least recently modified files that are at least `min_age` old
//! (files in use by a running task are younger), and finally the folders left empty. A deleted
//! cache entry is only work to redo: the caches are content-addressed.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Deserialize;

/// How a scratch folder is kept in bounds.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScratchLimits {
    /// Files not modified for this many hours are deleted. Default 168 (7 days).
    pub max_age_h: u64,
    /// Above this many megabytes (10⁶ bytes) in all, the oldest files go first. Default 20000.
    pub max_mb: u64,
    /// Files younger than this many minutes are never deleted for size (a running task may be
    /// using them). Default 60.
    pub min_age_min: u64,
    /// Seconds between passes. Default 600.
    pub interval_s: u64,
}

impl Default for ScratchLimits {
    fn default() -> Self {
        ScratchLimits {
            max_age_h: 168,
            max_mb: 20_000,
            min_age_min: 60,
            interval_s: 600,
        }
    }
}

/// What one pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub files: u64,
    pub bytes: u64,
}

struct Entry {
    path: PathBuf,
    size: u64,
    modified: SystemTime,
}

fn walk(dir: &Path, files: &mut Vec<Entry>, dirs: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            dirs.push(entry.path());
            walk(&entry.path(), files, dirs);
        } else if meta.is_file() {
            files.push(Entry {
                path: entry.path(),
                size: meta.len(),
                modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            });
        }
    }
}

/// One pass over `root` as `limits` say, at time `now`. Files that vanish or cannot be deleted
/// are skipped; a missing `root` prunes nothing.
pub fn prune(root: &Path, limits: &ScratchLimits, now: SystemTime) -> Pruned {
    let (mut files, mut dirs) = (Vec::new(), Vec::new());
    walk(root, &mut files, &mut dirs);
    let age = |e: &Entry| now.duration_since(e.modified).unwrap_or_default();
    let mut pruned = Pruned::default();
    let remove = |e: &Entry, pruned: &mut Pruned| {
        if std::fs::remove_file(&e.path).is_ok() {
            pruned.files += 1;
            pruned.bytes += e.size;
        }
    };
    let max_age = Duration::from_secs(limits.max_age_h.saturating_mul(3600));
    let (old, mut kept): (Vec<Entry>, Vec<Entry>) =
        files.into_iter().partition(|e| age(e) > max_age);
    for e in &old {
        remove(e, &mut pruned);
    }
    let mut total: u64 = kept.iter().map(|e| e.size).sum();
    let max_bytes = limits.max_mb.saturating_mul(1_000_000);
    let min_age = Duration::from_secs(limits.min_age_min.saturating_mul(60));
    kept.sort_by_key(|e| e.modified);
    for e in &kept {
        if total <= max_bytes || age(e) < min_age {
            break;
        }
        remove(e, &mut pruned);
        total -= e.size;
    }
    // Deepest first, so a parent is empty once its children are gone; non-empty ones stay.
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for d in dirs {
        let _ = std::fs::remove_dir(d);
    }
    pruned
}

/// Prunes `root` every `limits.interval_s` until `shutdown`, on a blocking thread; `what` names
/// the folder in logs.
pub async fn run(
    what: &'static str,
    root: PathBuf,
    limits: ScratchLimits,
    shutdown: crate::Shutdown,
) {
    loop {
        let (dir, l) = (root.clone(), limits);
        match tokio::task::spawn_blocking(move || prune(&dir, &l, SystemTime::now())).await {
            Ok(p) if p.files > 0 => {
                tracing::info!(
                    folder = what,
                    files = p.files,
                    bytes = p.bytes,
                    "scratch pruned"
                )
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(folder = what, error = %err, "scratch pruning failed"),
        }
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(Duration::from_secs(limits.interval_s.max(1))) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &Path, name: &str, bytes: usize, age: Duration) -> PathBuf {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, vec![0u8; bytes]).unwrap();
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(SystemTime::now() - age).unwrap();
        path
    }

    #[test]
    fn old_files_go_then_the_oldest_until_under_the_size_and_empty_folders_after() {
        let dir = tempfile::tempdir().unwrap();
        let h = Duration::from_secs(3600);
        let stale = file(dir.path(), "tasks/t1/render.mp4", 10, 200 * h);
        let older = file(dir.path(), "segments/a.mp4", 600_000, 5 * h);
        let newer = file(dir.path(), "segments/b.mp4", 600_000, 2 * h);
        let busy = file(
            dir.path(),
            "segments/c.mp4",
            600_000,
            Duration::from_secs(60),
        );
        let limits = ScratchLimits {
            max_mb: 1,
            ..ScratchLimits::default()
        };
        let pruned = prune(dir.path(), &limits, SystemTime::now());
        assert!(!stale.exists(), "past max_age");
        assert!(
            !stale.parent().unwrap().exists(),
            "its empty task folder too"
        );
        assert!(!older.exists(), "the oldest goes first for size");
        assert!(!newer.exists(), "then the next");
        assert!(
            busy.exists(),
            "younger than min_age: kept although over the size"
        );
        assert_eq!(pruned.files, 3);
        assert_eq!(pruned.bytes, 1_200_010);
        assert!(dir.path().join("segments").exists());
    }

    #[test]
    fn a_folder_in_bounds_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let kept = file(dir.path(), "cache/x", 100, Duration::from_secs(7200));
        let pruned = prune(dir.path(), &ScratchLimits::default(), SystemTime::now());
        assert_eq!(pruned, Pruned::default());
        assert!(kept.exists());
        assert_eq!(
            prune(
                &dir.path().join("missing"),
                &ScratchLimits::default(),
                SystemTime::now()
            ),
            Pruned::default()
        );
    }
}
