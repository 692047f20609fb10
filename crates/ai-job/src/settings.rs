//! The `[ai_job]` settings section (see `config/default.toml`).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use studio_auth::VerifierSettings;
use studio_core::settings::{parse_addr, DatabaseSettings, SettingsError, Validate};
use studio_providers::ProvidersSettings;
use studio_queue::QueueSettings;
use studio_storage::StorageSettings;

/// Everything the ai-job service reads at start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// gRPC listen address of `JobService` (callers: the gateway). Default `127.0.0.1:50053`.
    #[serde(default = "default_grpc_addr")]
    pub grpc_addr: String,
    /// gRPC listen address of `RenderLeaseService`, its own listener (callers: media-render
    /// workers, with the render-lease key). Default `127.0.0.1:50055`.
    #[serde(default = "default_lease_addr")]
    pub lease_addr: String,
    /// HTTP listen address for `/healthz`, `/readyz`, `/metrics`. Default `127.0.0.1:8083`.
    #[serde(default = "default_http_addr")]
    pub http_addr: String,
    pub database: DatabaseSettings,
    /// Where the user service publishes its keys and what tokens must claim.
    pub auth: VerifierSettings,
    /// The project service, asked for the project (with the caller's token) when a job starts.
    #[serde(default = "default_project_url")]
    pub project_url: String,
    /// The broker. Default RabbitMQ at `amqp://guest:guest@127.0.0.1:5672/%2f?heartbeat=10`.
    #[serde(default)]
    pub queue: QueueSettings,
    /// Prepended to every queue name (`studio.steps`, `studio.render`); lets several
    /// deployments or test runs share one broker. Default empty.
    #[serde(default)]
    pub queue_prefix: String,
    /// The object store. Default the local folder `$TMPDIR/studio-objects`.
    #[serde(default)]
    pub storage: StorageSettings,
    /// What this process does: `api` serves gRPC and relays the outbox; `worker` runs steps.
    /// Default both.
    #[serde(default = "default_roles")]
    pub roles: Vec<Role>,
    #[serde(default)]
    pub worker: WorkerSettings,
    /// Provider chains (the local ones when absent), as in `studio.toml`.
    #[serde(default)]
    pub providers: ProvidersSettings,
    /// Outbox relay and lease sweep interval, milliseconds. Default 200.
    #[serde(default = "default_relay_interval")]
    pub relay_interval_ms: u64,
    /// Lifetime of a download URL, seconds. Default 900 (15 minutes).
    #[serde(default = "default_url_ttl")]
    pub output_url_ttl_s: u64,
    /// Deliveries of one message before it is dead-lettered (a poison message). Default 5.
    #[serde(default = "default_max_deliveries")]
    pub max_deliveries: u32,
    /// What one job and one user may ask for.
    #[serde(default)]
    pub limits: crate::limits::Limits,
    /// How long published outbox rows and old progress events are kept.
    #[serde(default)]
    pub retention: crate::retention::Retention,
    /// TLS of the gRPC listeners and of `https://` peers.
    #[serde(default)]
    pub tls: studio_core::tls::TlsSettings,
    /// The platform key (tokens to the project service; the gateway's tokens) and the
    /// render-lease key (media-render's tokens).
    #[serde(default)]
    pub identity: studio_auth::service::IdentitySettings,
}

/// A part of the service a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Api,
    Worker,
}

/// How workers run steps.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerSettings {
    /// Steps run at once by one process. Default 4.
    pub concurrency: u16,
    /// Lease on a claimed step, seconds; renewed every third of it. Default 30.
    pub lease_s: u32,
    /// Attempts per step before the job fails. Default 3.
    pub max_attempts: i32,
    /// Backoff before the 2nd attempt, milliseconds; doubles per attempt. Default 1000.
    pub retry_backoff_ms: u64,
    /// Scratch folder and provider cache. Default `$TMPDIR/studio-ai-job`.
    pub work_dir: PathBuf,
    /// Seconds to let running steps finish on SIGTERM before giving them back. Default 20.
    pub grace_s: u64,
    /// Longest one step may run, seconds; an attempt that runs longer fails for good, naming
    /// this limit. Default 900.
    pub step_timeout_s: u64,
    /// How `work_dir` (step scratch folders, the provider-result cache) is kept in bounds.
    pub scratch: studio_core::scratch::ScratchLimits,
    /// Whether provider results are shared with every worker through the object store
    /// (`cache/results/…`), so a job repeated on another worker makes no paid call. Default
    /// true.
    pub shared_cache: bool,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            concurrency: 4,
            lease_s: 30,
            max_attempts: 3,
            retry_backoff_ms: 1000,
            work_dir: std::env::temp_dir().join("studio-ai-job"),
            grace_s: 20,
            step_timeout_s: 900,
            scratch: Default::default(),
            shared_cache: true,
        }
    }
}

impl WorkerSettings {
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_s.max(1) as u64)
    }

    /// Backoff before attempt `attempt + 1`.
    pub fn backoff(&self, attempt: i32) -> Duration {
        let doublings = (attempt - 1).clamp(0, 10) as u32;
        Duration::from_millis(self.retry_backoff_ms.saturating_mul(1 << doublings))
    }
}

fn default_grpc_addr() -> String {
    "127.0.0.1:50053".to_owned()
}

fn default_http_addr() -> String {
    "127.0.0.1:8083".to_owned()
}

fn default_lease_addr() -> String {
    "127.0.0.1:50055".to_owned()
}

fn default_project_url() -> String {
    "http://127.0.0.1:50052".to_owned()
}

fn default_roles() -> Vec<Role> {
    vec![Role::Api, Role::Worker]
}

fn default_relay_interval() -> u64 {
    200
}

fn default_url_ttl() -> u64 {
    900
}

fn default_max_deliveries() -> u32 {
    5
}

impl Settings {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), SettingsError> {
        parse_addr("ai_job.grpc_addr", &self.grpc_addr)?;
        parse_addr("ai_job.http_addr", &self.http_addr)?;
        parse_addr("ai_job.lease_addr", &self.lease_addr)?;
        self.identity
            .validate("ai_job", studio_auth::service::LeaseKey::Held)?;
        self.database.validate("ai_job.database")?;
        if self.roles.is_empty() {
            return Err(SettingsError::invalid(
                "ai_job.roles",
                "name at least one of \"api\" and \"worker\"",
            ));
        }
        if !self.project_url.starts_with("http://") && !self.project_url.starts_with("https://") {
            return Err(SettingsError::invalid(
                "ai_job.project_url",
                "must be an http(s) URL such as http://127.0.0.1:50052",
            ));
        }
        if self.worker.concurrency == 0 {
            return Err(SettingsError::invalid(
                "ai_job.worker.concurrency",
                "must be at least 1",
            ));
        }
        if !(1..=3600).contains(&self.output_url_ttl_s) {
            return Err(SettingsError::invalid(
                "ai_job.output_url_ttl_s",
                "must be 1 to 3600 seconds",
            ));
        }
        if self.max_deliveries == 0 {
            return Err(SettingsError::invalid(
                "ai_job.max_deliveries",
                "must be at least 1",
            ));
        }
        if self.worker.step_timeout_s == 0 {
            return Err(SettingsError::invalid(
                "ai_job.worker.step_timeout_s",
                "must be at least 1 second",
            ));
        }
        let l = &self.limits;
        if l.max_active_jobs_per_user == 0 || l.max_scenes == 0 {
            return Err(SettingsError::invalid(
                "ai_job.limits",
                "max_active_jobs_per_user and max_scenes must be at least 1",
            ));
        }
        if !(l.max_video_s.is_finite() && l.max_video_s > 0.0) {
            return Err(SettingsError::invalid(
                "ai_job.limits.max_video_s",
                "must be a positive number of seconds",
            ));
        }
        Ok(())
    }
}
