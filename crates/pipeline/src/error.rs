//! Why a run failed: [`PipelineError`]. Field names are the request's ([`crate::VideoRequest`]),
//! not any front-end's flags; `studio render` and the ai-job service each say them their way.

use std::path::{Path, PathBuf};

use studio_media::MediaError;

/// Why a run failed. Finished steps stay stored in the work folder either way.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A value of the request is wrong; `field` names it.
    #[error("{field}: {message}")]
    Input {
        /// The request's field (`duration_s`, `music`).
        field: &'static str,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The text cannot be planned (empty, unknown section).
    #[error("cannot plan the video: {0}")]
    Plan(String),
    /// A topic with no script writer that writes from topics.
    #[error("{}", crate::graph::NO_LANGUAGE_MODEL)]
    NoLanguageModel,
    /// A provider step failed.
    #[error("{step} failed: {message}")]
    Step {
        /// What the step was doing (`narration of scene 3`).
        step: String,
        /// Why.
        message: String,
    },
    /// The render failed.
    #[error("render failed: {0}")]
    Render(#[from] MediaError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The run was cancelled.
    #[error("cancelled")]
    Cancelled,
}

impl From<crate::graph::StepError> for PipelineError {
    fn from(e: crate::graph::StepError) -> Self {
        use crate::graph::StepError;
        match e {
            StepError::Unplannable(message) => PipelineError::Plan(message),
            StepError::NoLanguageModel => PipelineError::NoLanguageModel,
            StepError::Failed { step, message, .. } => PipelineError::Step { step, message },
        }
    }
}

/// Maps an I/O error on `path` to [`PipelineError::Io`].
pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PipelineError + '_ {
    move |source| PipelineError::Io {
        path: path.to_path_buf(),
        source,
    }
}
