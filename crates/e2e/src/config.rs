//! The settings file every service of a platform run reads (`config/default.toml` in the run's
//! folder), one section per service, and the loopback ports it names.

use std::collections::HashMap;
use std::path::Path;

use studio_testkit::free_port;
use studio_testkit::s3::{ACCESS_KEY as S3_ACCESS_KEY, SECRET_KEY as S3_SECRET_KEY};

use crate::{Options, OPENAI_KEY_ENV};

/// `url` (`postgres://user@host:port/db`) with its host and port replaced by `127.0.0.1:port`.
pub(crate) fn with_port(url: &str, port: u16) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let user = authority
        .rsplit_once('@')
        .map(|(user, _)| format!("{user}@"))
        .unwrap_or_default();
    format!("{scheme}://{user}127.0.0.1:{port}/{path}")
}

/// The loopback ports of one platform run.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub user_grpc: u16,
    pub user_http: u16,
    pub project_grpc: u16,
    pub project_http: u16,
    /// ai-job's JobService.
    pub job_grpc: u16,
    /// ai-job's RenderLeaseService.
    pub job_lease: u16,
    pub job_http: u16,
    pub render_grpc: u16,
    pub render_http: u16,
    pub gateway_http: u16,
}

impl Ports {
    pub(crate) fn new() -> Ports {
        Ports {
            user_grpc: free_port(),
            user_http: free_port(),
            project_grpc: free_port(),
            project_http: free_port(),
            job_grpc: free_port(),
            job_lease: free_port(),
            job_http: free_port(),
            render_grpc: free_port(),
            render_http: free_port(),
            gateway_http: free_port(),
        }
    }

    /// Every gRPC listener of the run, by service, with the audience it accepts.
    pub fn grpc(&self) -> [(&'static str, u16, &'static str); 5] {
        use studio_auth::service::audience;
        [
            ("user", self.user_grpc, audience::USER),
            ("project", self.project_grpc, audience::PROJECT),
            ("ai-job", self.job_grpc, audience::AI_JOB),
            (
                "ai-job render leases",
                self.job_lease,
                audience::RENDER_LEASE,
            ),
            ("media-render", self.render_grpc, audience::MEDIA_RENDER),
        ]
    }
}

/// The `identity` table of section `section`: the development keys, accepted (`lease`: with
/// the render-lease key).
fn identity_toml(section: &str, lease: bool) -> String {
    use studio_auth::service::{DEVELOPMENT_KEY, DEVELOPMENT_RENDER_LEASE_KEY};
    let lease = if lease {
        format!("render_lease_key = \"{DEVELOPMENT_RENDER_LEASE_KEY}\"\n")
    } else {
        String::new()
    };
    format!(
        "[{section}.identity]\nkey = \"{DEVELOPMENT_KEY}\"\n{lease}allow_development_keys = true\n"
    )
}

/// The settings file (`config/default.toml`) every service of a run reads: its ports, its
/// database in `urls`, the S3 bucket `(endpoint, bucket)`, the broker and its queue prefix, and
/// the knobs of `options`, with scratch folders under `work`.
pub(crate) fn config_toml(
    ports: &Ports,
    urls: &HashMap<&str, String>,
    (endpoint, bucket): (&str, &str),
    queue_prefix: &str,
    options: &Options,
    work: &Path,
) -> String {
    let storage = format!(
        "backend = \"s3\"\nbucket = \"{bucket}\"\nendpoint = \"{endpoint}\"\naccess_key_id = \"{S3_ACCESS_KEY}\"\nsecret_access_key = \"{S3_SECRET_KEY}\"\n"
    );
    let jwks = format!("http://127.0.0.1:{}/.well-known/jwks.json", ports.user_http);
    let auth = format!("jwks_url = \"{jwks}\"\nissuer = \"studio\"\naudience = \"studio-api\"\n");
    [
        "[telemetry]\nlog_filter = \"info\"\n".to_owned(),
        user_toml(ports, &urls["user"]),
        project_toml(ports, &urls["project"], &auth),
        gateway_toml(ports, &auth),
        ai_job_toml(
            ports,
            &urls["ai_job"],
            &auth,
            &storage,
            queue_prefix,
            options,
            work,
        ),
        media_render_toml(ports, &storage, queue_prefix, options, work),
    ]
    .join("\n")
}

fn user_toml(ports: &Ports, db: &str) -> String {
    let Ports {
        user_grpc,
        user_http,
        ..
    } = *ports;
    format!(
        r#"[user]
grpc_addr = "127.0.0.1:{user_grpc}"
http_addr = "127.0.0.1:{user_http}"
[user.database]
url = "{db}"
max_connections = 6
[user.auth]
issuer = "studio"
audience = "studio-api"
access_ttl_s = 900
refresh_ttl_s = 86400
reuse_grace_s = 5
key_encryption_key = "c3R1ZGlvLWRldmVsb3BtZW50LWtleS0wMDAwMDAwMDA="
allow_development_kek = true
{identity}"#,
        identity = identity_toml("user", false),
    )
}

fn project_toml(ports: &Ports, db: &str, auth: &str) -> String {
    let Ports {
        project_grpc,
        project_http,
        ..
    } = *ports;
    format!(
        r#"[project]
grpc_addr = "127.0.0.1:{project_grpc}"
http_addr = "127.0.0.1:{project_http}"
[project.database]
url = "{db}"
max_connections = 6
[project.auth]
{auth}
{identity}"#,
        identity = identity_toml("project", false),
    )
}

fn gateway_toml(ports: &Ports, auth: &str) -> String {
    let Ports {
        user_grpc,
        project_grpc,
        job_grpc,
        gateway_http,
        ..
    } = *ports;
    format!(
        r#"[gateway]
http_addr = "127.0.0.1:{gateway_http}"
user_url = "http://127.0.0.1:{user_grpc}"
project_url = "http://127.0.0.1:{project_grpc}"
ai_job_url = "http://127.0.0.1:{job_grpc}"
[gateway.auth]
{auth}
[gateway.rate_limit]
per_ip_per_minute = 100000
per_ip_burst = 10000
per_user_per_minute = 100000
per_user_burst = 10000
auth_per_ip_per_minute = 10000
auth_per_ip_burst = 1000
{identity}"#,
        identity = identity_toml("gateway", false),
    )
}

fn ai_job_toml(
    ports: &Ports,
    db: &str,
    auth: &str,
    storage: &str,
    queue_prefix: &str,
    options: &Options,
    work: &Path,
) -> String {
    let Ports {
        project_grpc,
        job_grpc,
        job_lease,
        job_http,
        ..
    } = *ports;
    format!(
        r#"[ai_job]
grpc_addr = "127.0.0.1:{job_grpc}"
lease_addr = "127.0.0.1:{job_lease}"
http_addr = "127.0.0.1:{job_http}"
project_url = "http://127.0.0.1:{project_grpc}"
queue_prefix = "{queue_prefix}"
relay_interval_ms = 100
max_deliveries = {max_deliveries}
[ai_job.limits]
# The broker-restart trial and the benchmark start many jobs for one user at once.
max_active_jobs_per_user = 10000
[ai_job.database]
url = "{db}"
max_connections = 6
[ai_job.auth]
{auth}
[ai_job.queue]
{queue}
[ai_job.storage]
{storage}
{providers}
[ai_job.worker]
concurrency = {concurrency}
lease_s = {step_lease}
max_attempts = 5
retry_backoff_ms = 200
grace_s = 5
work_dir = "{work}/ai-job"
{identity}"#,
        queue = options.broker.toml(),
        concurrency = options.worker_concurrency,
        step_lease = options.step_lease_s,
        max_deliveries = options.max_deliveries,
        work = work.display(),
        providers = providers_toml(options),
        identity = identity_toml("ai_job", true),
    )
}

fn media_render_toml(
    ports: &Ports,
    storage: &str,
    queue_prefix: &str,
    options: &Options,
    work: &Path,
) -> String {
    let Ports {
        job_lease,
        render_grpc,
        render_http,
        ..
    } = *ports;
    format!(
        r#"[media_render]
grpc_addr = "127.0.0.1:{render_grpc}"
http_addr = "127.0.0.1:{render_http}"
ai_job_lease_url = "http://127.0.0.1:{job_lease}"
queue_prefix = "{queue_prefix}"
lease_s = {render_lease}
max_deliveries = {max_deliveries}
grace_s = 5
render_timeout_s = {render_timeout}
work_dir = "{work}/media-render"
[media_render.queue]
{queue}
[media_render.storage]
{storage}
{identity}"#,
        queue = options.broker.toml(),
        render_lease = options.render_lease_s,
        render_timeout = options.render_timeout_s,
        max_deliveries = options.max_deliveries,
        work = work.display(),
        identity = identity_toml("media_render", true),
    )
}

fn providers_toml(options: &Options) -> String {
    let Some(url) = &options.openai else {
        return String::new();
    };
    format!(
        r#"[[ai_job.providers.script]]
kind = "openai"
base_url = "{url}"
api_key_env = "{OPENAI_KEY_ENV}"
[[ai_job.providers.script]]
kind = "text-planner"
[[ai_job.providers.speech]]
kind = "openai-speech"
base_url = "{url}"
api_key_env = "{OPENAI_KEY_ENV}"
voice = "nova"
[[ai_job.providers.speech]]
kind = "espeak-ng"
"#
    )
}
