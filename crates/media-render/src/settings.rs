//! The `[media_render]` settings section (see `config/default.toml`).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use studio_core::settings::{parse_addr, SettingsError, Validate};
use studio_media::VideoEncoder;
use studio_queue::QueueSettings;
use studio_storage::StorageSettings;

/// Everything a media-render worker reads at start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// gRPC listen address (`RenderService.GetWorkerStatus`). Default `127.0.0.1:50054`.
    #[serde(default = "default_grpc_addr")]
    pub grpc_addr: String,
    /// HTTP listen address for `/healthz`, `/readyz`, `/metrics`. Default `127.0.0.1:8084`.
    #[serde(default = "default_http_addr")]
    pub http_addr: String,
    /// ai-job's render-lease listener (`ai_job.lease_addr`), which holds the render step's
    /// lease. Default `http://127.0.0.1:50055`.
    #[serde(default = "default_ai_job_lease_url")]
    pub ai_job_lease_url: String,
    /// The broker. Default RabbitMQ at `amqp://guest:guest@127.0.0.1:5672/%2f?heartbeat=10`.
    #[serde(default)]
    pub queue: QueueSettings,
    /// Prepended to the render queue's name (as `ai_job.queue_prefix`).
    #[serde(default)]
    pub queue_prefix: String,
    /// The object store. Default the local folder `$TMPDIR/studio-objects`.
    #[serde(default)]
    pub storage: StorageSettings,
    /// `libx264` (default) or `h264_nvenc`; NVENC is used only when the start-up self-test
    /// passes, libx264 otherwise.
    #[serde(default)]
    pub encoder: VideoEncoder,
    /// Deliveries of a render task before it is dead-lettered; must equal
    /// `ai_job.max_deliveries` (both declare the queue). Default 5.
    #[serde(default = "default_max_deliveries")]
    pub max_deliveries: u32,
    /// Lease on a claimed render, seconds; renewed every third of it. Default 60.
    #[serde(default = "default_lease")]
    pub lease_s: u32,
    /// On SIGTERM, seconds the current render may take to finish before it is stopped and
    /// handed back. Default 30.
    #[serde(default = "default_grace")]
    pub grace_s: u64,
    /// Segments encoded at the same time. Default 1.
    #[serde(default = "default_jobs")]
    pub render_jobs: usize,
    /// Per-task folders and the segment cache. Default `$TMPDIR/studio-media-render`.
    #[serde(default = "default_work_dir")]
    pub work_dir: PathBuf,
    /// Longest one render may run, seconds; a render that runs longer is stopped and fails its
    /// job for good, naming this limit. Default 3600.
    #[serde(default = "default_render_timeout")]
    pub render_timeout_s: u64,
    /// TLS of the gRPC listeners and of `https://` peers.
    #[serde(default)]
    pub tls: studio_core::tls::TlsSettings,
    /// How `work_dir` (per-task folders, the segment cache) is kept in bounds.
    #[serde(default)]
    pub scratch: studio_core::scratch::ScratchLimits,
    /// The render-lease key (tokens to ai-job's lease listener) and the platform key (callers
    /// of `GetWorkerStatus`).
    #[serde(default)]
    pub identity: studio_auth::service::IdentitySettings,
}

fn default_render_timeout() -> u64 {
    3600
}

fn default_grpc_addr() -> String {
    "127.0.0.1:50054".to_owned()
}

fn default_http_addr() -> String {
    "127.0.0.1:8084".to_owned()
}

fn default_ai_job_lease_url() -> String {
    "http://127.0.0.1:50055".to_owned()
}

fn default_max_deliveries() -> u32 {
    5
}

fn default_lease() -> u32 {
    60
}

fn default_grace() -> u64 {
    30
}

fn default_jobs() -> usize {
    1
}

fn default_work_dir() -> PathBuf {
    std::env::temp_dir().join("studio-media-render")
}

impl Settings {
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_s as u64)
    }
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), SettingsError> {
        parse_addr("media_render.grpc_addr", &self.grpc_addr)?;
        parse_addr("media_render.http_addr", &self.http_addr)?;
        if !self.ai_job_lease_url.starts_with("http://")
            && !self.ai_job_lease_url.starts_with("https://")
        {
            return Err(SettingsError::invalid(
                "media_render.ai_job_lease_url",
                "must be an http(s) URL such as http://127.0.0.1:50055",
            ));
        }
        self.identity
            .validate("media_render", studio_auth::service::LeaseKey::Held)?;
        if !(5..=3600).contains(&self.lease_s) {
            return Err(SettingsError::invalid(
                "media_render.lease_s",
                "must be 5 to 3600 seconds",
            ));
        }
        if self.render_jobs == 0 {
            return Err(SettingsError::invalid(
                "media_render.render_jobs",
                "must be at least 1",
            ));
        }
        if self.render_timeout_s == 0 {
            return Err(SettingsError::invalid(
                "media_render.render_timeout_s",
                "must be at least 1 second",
            ));
        }
        Ok(())
    }
}
