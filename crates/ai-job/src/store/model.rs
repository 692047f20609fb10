//! The rows of the job store as Rust types: [`State`], [`Job`], [`Step`], [`JobEvent`],
//! [`Lease`], [`NewStep`], [`Failure`], and the typed input and output of the render step.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use studio_core::id::{JobId, ProjectId, StepId, UserId};

/// A step or job state, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl State {
    const ALL: [State; 5] = [
        State::Queued,
        State::Running,
        State::Succeeded,
        State::Failed,
        State::Cancelled,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Running => "running",
            State::Succeeded => "succeeded",
            State::Failed => "failed",
            State::Cancelled => "cancelled",
        }
    }

    /// Succeeded, failed or cancelled.
    pub fn is_final(self) -> bool {
        matches!(self, State::Succeeded | State::Failed | State::Cancelled)
    }
}

impl TryFrom<&str> for State {
    type Error = super::StoreError;

    /// The state stored as `value`. Errors with [`super::StoreError::Corrupt`] for anything
    /// the schema's check constraint would not let in.
    fn try_from(value: &str) -> Result<State, Self::Error> {
        State::ALL
            .into_iter()
            .find(|s| s.as_str() == value)
            .ok_or_else(|| super::StoreError::Corrupt(format!("unknown state {value:?}")))
    }
}

/// A step to create with its job.
#[derive(Debug, Clone)]
pub struct NewStep {
    /// Stored kind name (`studio_pipeline::StepKind::name`).
    pub kind: String,
    /// Scene index, 0-based, for per-scene steps.
    pub scene: Option<i32>,
    /// Steps of stage n are enqueued once every step of lower stages succeeded.
    pub stage: i32,
    pub max_attempts: i32,
    pub input: serde_json::Value,
}

/// A job as stored.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: JobId,
    pub owner_id: UserId,
    pub project_id: ProjectId,
    pub state: State,
    /// The kind of the step that last started, or `done`.
    pub stage: String,
    /// Why the job failed, for its owner.
    pub error: String,
    pub cost_micro_usd: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A step as stored.
#[derive(Debug, Clone)]
pub struct Step {
    pub id: StepId,
    pub job_id: JobId,
    pub kind: String,
    pub scene: Option<i32>,
    pub stage: i32,
    pub state: State,
    pub attempts: i32,
    pub fencing_token: i64,
    pub output: Option<serde_json::Value>,
    pub error: String,
    pub cost_micro_usd: i64,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A progress event of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobEvent {
    pub job_id: JobId,
    /// 1, 2, 3, … per job, without gaps.
    pub sequence: i64,
    pub state: State,
    pub stage: String,
    /// Finished steps over all steps, 0..=100.
    pub percent: f64,
    pub message: String,
    pub cost_micro_usd: i64,
    pub at: DateTime<Utc>,
}

/// A claimed step: work on it while the lease lasts, then settle it with the token.
#[derive(Debug, Clone)]
pub struct Lease {
    pub step_id: StepId,
    pub job_id: JobId,
    pub project_id: ProjectId,
    pub kind: String,
    pub input: serde_json::Value,
    pub attempt: i32,
    pub fencing_token: i64,
}

/// A job's steps in brief, for lists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepSummary {
    /// Steps succeeded.
    pub done: i64,
    /// Steps in all.
    pub total: i64,
    /// The output of the succeeded render step.
    pub render_output: Option<serde_json::Value>,
}

/// What the render step is given, written by the timeline step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RenderInput {
    /// Object key of the timeline JSON.
    pub timeline_key: String,
    /// Relative path in the timeline → object key.
    pub inputs: BTreeMap<String, String>,
    /// Where the outputs go, ending in `/`.
    pub output_prefix: String,
}

/// One file a render uploaded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenderedFile {
    /// The API name of the output (`video`, `captions_srt`, …).
    pub kind: String,
    /// Its object key.
    pub storage_key: String,
    /// Bytes.
    pub size_bytes: u64,
    /// SHA-256, hex.
    pub sha256: String,
}

/// What the render step made, as stored in its output.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RenderOutput {
    /// The uploaded files.
    pub files: Vec<RenderedFile>,
    /// Length of the video, seconds.
    pub duration_s: f64,
    /// Wall time of the render, seconds.
    pub render_seconds: f64,
    /// The H.264 encoder used (`libx264`, `h264_nvenc`).
    pub encoder: String,
    /// The worker that rendered it.
    pub worker: String,
}
