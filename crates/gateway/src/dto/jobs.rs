//! The REST shapes of jobs, their steps, outputs and progress events.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use studio_proto::job::v1 as job;
use utoipa::{IntoParams, ToSchema};

use super::time;

/// A job or step state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStateDto {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobStateDto {
    pub fn from_pb(value: i32) -> Self {
        match job::State::try_from(value) {
            Ok(job::State::Running) => JobStateDto::Running,
            Ok(job::State::Succeeded) => JobStateDto::Succeeded,
            Ok(job::State::Failed) => JobStateDto::Failed,
            Ok(job::State::Cancelled) => JobStateDto::Cancelled,
            _ => JobStateDto::Queued,
        }
    }

    /// Succeeded, failed or cancelled.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobStateDto::Succeeded | JobStateDto::Failed | JobStateDto::Cancelled
        )
    }
}

/// One step of a job.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepDto {
    pub id: String,
    /// `plan`, `narration`, `picture`, `music`, `timeline` or `render`.
    pub kind: String,
    /// Scene index (0-based) of per-scene steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scene: Option<u32>,
    pub state: JobStateDto,
    pub attempts: u32,
    /// The last attempt's error, if any.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// Micro-USD.
    pub cost_micro_usd: i64,
}

/// A file a finished job produced; download it through `/v1/jobs/{id}/outputs/{kind}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutputDto {
    /// `video`, `captions_srt`, `captions_vtt` or `thumbnail`.
    pub kind: String,
    /// Bytes.
    pub size_bytes: u64,
}

/// A job: one video being made from a project.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobDto {
    pub id: String,
    pub project_id: String,
    pub state: JobStateDto,
    /// Finished steps over all steps, 0 to 100.
    pub percent: f64,
    /// The step kind running now, or `done`.
    pub stage: String,
    /// For a failed job: what happened and what to do.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// Provider cost so far, micro-USD.
    pub cost_micro_usd: i64,
    pub steps: Vec<StepDto>,
    pub outputs: Vec<OutputDto>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<job::Job> for JobDto {
    fn from(j: job::Job) -> Self {
        JobDto {
            id: j.id,
            project_id: j.project_id,
            state: JobStateDto::from_pb(j.state),
            percent: j.percent,
            stage: j.stage,
            error: j.error,
            cost_micro_usd: j.cost_micro_usd,
            steps: j
                .steps
                .into_iter()
                .map(|s| StepDto {
                    id: s.id,
                    kind: s.kind,
                    scene: s.scene,
                    state: JobStateDto::from_pb(s.state),
                    attempts: s.attempts,
                    error: s.error,
                    cost_micro_usd: s.cost_micro_usd,
                })
                .collect(),
            outputs: j
                .outputs
                .into_iter()
                .map(|o| OutputDto {
                    kind: o.kind,
                    size_bytes: o.size_bytes,
                })
                .collect(),
            created_at: time(j.created_at_ms),
            updated_at: time(j.updated_at_ms),
        }
    }
}

/// A progress event, as sent over WebSocket (one JSON text message each) and SSE (`data:`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobEventDto {
    pub job_id: String,
    /// 1, 2, 3, … per job.
    pub sequence: u64,
    pub state: JobStateDto,
    pub stage: String,
    /// 0 to 100.
    pub percent: f64,
    pub message: String,
    /// Micro-USD so far.
    pub cost_micro_usd: i64,
    pub at: DateTime<Utc>,
}

impl From<job::JobEvent> for JobEventDto {
    fn from(e: job::JobEvent) -> Self {
        JobEventDto {
            job_id: e.job_id,
            sequence: e.sequence,
            state: JobStateDto::from_pb(e.state),
            stage: e.stage,
            percent: e.percent,
            message: e.message,
            cost_micro_usd: e.cost_micro_usd,
            at: time(e.at_ms),
        }
    }
}

/// Query of `GET /v1/jobs`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListJobsQuery {
    /// Only this project's jobs.
    pub project_id: Option<String>,
    /// 1 to 100; default 20.
    #[param(minimum = 0, maximum = 100)]
    pub page_size: Option<u32>,
    /// `next_page_token` of the previous page.
    pub page_token: Option<String>,
}

/// A download link.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutputUrlDto {
    /// Presigned URL; works without credentials until `expires_at`.
    pub url: String,
    pub expires_at: DateTime<Utc>,
    /// Bytes.
    pub size_bytes: u64,
}

impl From<job::OutputUrl> for OutputUrlDto {
    fn from(u: job::OutputUrl) -> Self {
        OutputUrlDto {
            url: u.url,
            expires_at: time(u.expires_at_ms),
            size_bytes: u.size_bytes,
        }
    }
}
