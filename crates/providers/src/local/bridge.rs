//! A Python script run as a subprocess that reads one JSON request on stdin and answers with one
//! JSON line per item (Piper's voice, the PocketSphinx aligner).

use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

use crate::error::ProviderError;

/// A running bridge.
#[derive(Debug)]
pub struct Bridge {
    name: &'static str,
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Bridge {
    /// Runs `script` with `python -c`, sends it `job` and closes its stdin. The process is
    /// killed when the bridge is dropped.
    ///
    /// Errors: `Unavailable` when Python cannot be run; `Transient` when the request cannot be
    /// written.
    pub async fn start(
        name: &'static str,
        python: &Path,
        script: &str,
        job: &serde_json::Value,
    ) -> Result<Bridge, ProviderError> {
        let mut child = tokio::process::Command::new(python)
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ProviderError::unavailable(format!("{name} cannot be run: {e}")))?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        stdin
            .write_all(job.to_string().as_bytes())
            .await
            .map_err(|e| ProviderError::transient(format!("writing to {name}: {e}")))?;
        drop(stdin);
        let stdout = child.stdout.take().expect("stdout is piped");
        Ok(Bridge {
            name,
            child,
            lines: BufReader::new(stdout).lines(),
        })
    }

    /// The next line of the answer, `None` at its end.
    pub async fn next_line(&mut self) -> Result<Option<String>, ProviderError> {
        self.lines
            .next_line()
            .await
            .map_err(|e| ProviderError::transient(format!("reading from {}: {e}", self.name)))
    }

    /// Waits for the process to end.
    ///
    /// Errors: `Transient` when it failed, or answered `done` of the `expected` `items`,
    /// with the last line it wrote to stderr.
    pub async fn finish(
        self,
        done: usize,
        expected: usize,
        items: &str,
    ) -> Result<(), ProviderError> {
        let name = self.name;
        let out = self
            .child
            .wait_with_output()
            .await
            .map_err(|e| ProviderError::transient(format!("{name}: {e}")))?;
        if out.status.success() && done == expected {
            return Ok(());
        }
        Err(ProviderError::transient(format!(
            "{name} failed ({}) after {done} of {expected} {items}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or_default()
        )))
    }
}
