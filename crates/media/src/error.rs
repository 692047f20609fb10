//! The render engine's error type.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::validate::Problem;

/// Everything that can stop a render.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The timeline JSON does not parse; `path` is the JSON path where parsing failed.
    #[error("timeline JSON is invalid at {path}: {message}")]
    Json {
        /// JSON path, e.g. `$.scenes[1].duration`.
        path: String,
        /// What the parser expected.
        message: String,
    },
    /// The timeline or its inputs have problems; all of them are listed.
    #[error("the timeline has {} problem(s):\n{}", .0.len(), .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
    /// An input file is missing, unreadable or not what it claims to be.
    #[error("input {}: {problem}", path.display())]
    Input {
        /// The file as the timeline names it.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A path resolves outside the render's input, work and output folders.
    #[error("{} is outside the folders this render may use ({roots}); copy it into the input folder", path.display())]
    OutsideSandbox {
        /// The path as given.
        path: PathBuf,
        /// The allowed folders.
        roots: String,
    },
    /// FFmpeg exited with an error.
    #[error("ffmpeg failed (exit status {status:?}): {stderr}")]
    Ffmpeg {
        /// Exit code, if it exited normally.
        status: Option<i32>,
        /// The last lines FFmpeg printed.
        stderr: String,
    },
    /// `ffmpeg` or `ffprobe` cannot be started.
    #[error("cannot run {tool}: {source}; install FFmpeg (`apt-get install ffmpeg`) or set STUDIO_FFMPEG/STUDIO_FFPROBE")]
    MissingTool {
        /// The program.
        tool: String,
        /// Why it did not start.
        source: std::io::Error,
    },
    /// The render was cancelled; FFmpeg was killed and no output was published.
    #[error("render cancelled")]
    Cancelled,
    /// The render ran past its time limit; FFmpeg was killed and no output was published.
    #[error("render timed out after {0:?}")]
    TimedOut(Duration),
    /// The video cannot fit the size cap even at the highest CRF.
    #[error("the video is {size} bytes at CRF 51, over output.max_bytes = {max_bytes}; raise max_bytes or shorten the timeline")]
    TooLarge {
        /// Size reached at CRF 51, bytes.
        size: u64,
        /// The cap, bytes.
        max_bytes: u64,
    },
    /// A filesystem operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A bug in the engine (an invariant broke).
    #[error("internal error: {0}")]
    Internal(String),
}

impl MediaError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        MediaError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
