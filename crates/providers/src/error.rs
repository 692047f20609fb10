//! Provider errors, classified so a chain knows whether to retry, fall back or stop.

/// How a provider failed, which decides what the chain does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// Worth retrying with the same provider after a backoff: timeouts, rate limits (HTTP 429),
    /// server errors (HTTP 5xx), a killed subprocess.
    Transient,
    /// This provider cannot serve this request (no matching media, not configured for topics,
    /// a missing tool); the chain moves on to the next provider and remembers the answer.
    Unavailable,
    /// The request itself is wrong (unknown section, empty text); no provider can help, so the
    /// chain stops and the message goes to the user.
    Invalid,
}

/// A failed provider call.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ProviderError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// A message a user can act on, lowercase, without a trailing period.
    pub message: String,
    /// How long the provider asked us to wait before the next call (HTTP `Retry-After`); the
    /// chain waits at least this long before retrying a transient failure.
    pub retry_after: Option<std::time::Duration>,
}

impl ProviderError {
    /// A failure worth retrying.
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Transient,
            message: message.into(),
            retry_after: None,
        }
    }

    /// This provider cannot serve the request; try the next one.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Unavailable,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The request is wrong; stop.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Invalid,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same error, asking the chain to wait `wait` before retrying.
    pub fn retry_after(mut self, wait: Option<std::time::Duration>) -> Self {
        self.retry_after = wait;
        self
    }

    /// An I/O failure on a local file: transient, since disks fill and free again.
    pub fn io(what: &str, path: &std::path::Path, e: std::io::Error) -> Self {
        Self::transient(format!("{what} {}: {e}", path.display()))
    }
}
