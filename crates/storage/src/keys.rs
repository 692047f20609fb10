//! Object keys and where things live.
//!
//! ```text
//! projects/{project}/assets/{asset}/{file}           user uploads
//! projects/{project}/jobs/{job}/steps/{step}/{attempt}/{file}
//!                                                    step artifacts (narration, pictures, music,
//!                                                    the timeline media-render renders), per
//!                                                    attempt (each claim of a step is one)
//! projects/{project}/jobs/{job}/outputs/{file}       final.mp4, captions.srt/.vtt, thumbnail.jpg
//! cache/{capability}/{hh}/{sha256}                   content-addressed provider cache entries
//! ```

use crate::StorageError;

/// A checked key: 1 to 1024 bytes (S3's limit), `/`-separated segments that are neither empty,
/// `.` nor `..`, no leading `/`, no control characters or backslashes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey(String);

impl ObjectKey {
    pub fn parse(key: impl Into<String>) -> Result<ObjectKey, StorageError> {
        let key = key.into();
        let bad = |message: &str| StorageError::InvalidKey {
            key: key.clone(),
            message: message.to_owned(),
        };
        if key.is_empty() || key.len() > 1024 {
            return Err(bad("must be 1 to 1024 bytes"));
        }
        if key
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return Err(bad("segments must not be empty, . or .."));
        }
        if key.chars().any(|c| c.is_control() || c == '\\') {
            return Err(bad("must not contain control characters or backslashes"));
        }
        Ok(ObjectKey(key))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn segment(what: &str, value: &str) -> Result<(), StorageError> {
    if value.is_empty() || value.contains('/') || value == "." || value == ".." {
        return Err(StorageError::InvalidKey {
            key: value.to_owned(),
            message: format!("{what} must be one non-empty path segment"),
        });
    }
    Ok(())
}

/// `projects/{project}/jobs/{job}/outputs/`: the prefix of every [`job_output`] of the job.
pub fn job_outputs_prefix(project: &str, job: &str) -> Result<String, StorageError> {
    segment("project", project)?;
    segment("job", job)?;
    Ok(format!("projects/{project}/jobs/{job}/outputs/"))
}

/// `projects/{project}/jobs/{job}/outputs/{file}`.
pub fn job_output(project: &str, job: &str, file: &str) -> Result<ObjectKey, StorageError> {
    segment("project", project)?;
    segment("job", job)?;
    segment("file", file)?;
    ObjectKey::parse(format!("projects/{project}/jobs/{job}/outputs/{file}"))
}

/// `projects/{project}/jobs/{job}/steps/{step}/{attempt}/{file}`: `attempt` is the number of
/// the claim that made it (every claim of a step is a new attempt), so a stalled worker's late
/// upload lands beside its successor's, never over it (security review M1); the step's recorded
/// output names the key.
pub fn step_artifact(
    project: &str,
    job: &str,
    step: &str,
    attempt: i32,
    file: &str,
) -> Result<ObjectKey, StorageError> {
    segment("project", project)?;
    segment("job", job)?;
    segment("step", step)?;
    segment("file", file)?;
    ObjectKey::parse(format!(
        "projects/{project}/jobs/{job}/steps/{step}/{attempt}/{file}"
    ))
}

/// `cache/{capability}/{first two hex digits}/{sha256}`.
pub fn cache_entry(capability: &str, sha256_hex: &str) -> Result<ObjectKey, StorageError> {
    segment("capability", capability)?;
    if sha256_hex.len() != 64 || !sha256_hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(StorageError::InvalidKey {
            key: sha256_hex.to_owned(),
            message: "must be a SHA-256 in hex".to_owned(),
        });
    }
    let hash = sha256_hex.to_ascii_lowercase();
    ObjectKey::parse(format!("cache/{capability}/{}/{hash}", &hash[..2]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked() {
        assert!(ObjectKey::parse("projects/p/a.png").is_ok());
        for bad in [
            "", "/abs", "a//b", "a/../b", "a/./b", "a\\b", "a/b/", "a\nb",
        ] {
            assert!(ObjectKey::parse(bad).is_err(), "{bad:?}");
        }
        assert!(ObjectKey::parse("x".repeat(1025)).is_err());
    }

    #[test]
    fn layout() {
        assert_eq!(
            job_output("p1", "j1", "final.mp4").unwrap().as_str(),
            "projects/p1/jobs/j1/outputs/final.mp4"
        );
        assert!(job_output("p1", "../j", "final.mp4").is_err());
        let prefix = job_outputs_prefix("p1", "j1").unwrap();
        assert!(job_output("p1", "j1", "final.mp4")
            .unwrap()
            .as_str()
            .starts_with(&prefix));
        assert!(prefix.ends_with('/'));
        assert!(job_outputs_prefix("p1", "..").is_err());
        let hash = "AB".repeat(32);
        assert_eq!(
            cache_entry("speech", &hash).unwrap().as_str(),
            format!("cache/speech/ab/{}", hash.to_lowercase())
        );
        assert!(cache_entry("speech", "abc").is_err());
    }
}
