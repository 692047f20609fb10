//! Runs the whole platform as separate processes for end-to-end tests: user, project, ai-job (an
//! `api` process and a `worker` process), media-render and gateway, built by `cargo build` into
//! the same target folder as the test, against the local Postgres (fresh databases), RabbitMQ
//! (queues under a unique prefix) or moto's SQS, and an in-process S3 server (s3s-fs over a
//! temporary folder) that counts completed uploads per key. The fixtures it stands on (databases,
//! S3, private RabbitMQ nodes, moto) are `studio-testkit`'s.
#![allow(missing_debug_implementations)]

pub mod api;
mod config;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use studio_testkit::free_port;
use studio_testkit::s3::{S3Server, ACCESS_KEY as S3_ACCESS_KEY, SECRET_KEY as S3_SECRET_KEY};

pub use config::Ports;
use config::{config_toml, with_port};

/// The value of a counter in Prometheus text (summed over its label sets).
pub fn counter(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The folder holding the service binaries (next to the test binary's `deps/`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    for name in ["user", "project", "ai-job", "media-render", "gateway"] {
        assert!(
            dir.join(name).is_file(),
            "{} missing: build the services first (cargo build --bins; scripts/test.sh does)",
            dir.join(name).display()
        );
    }
    dir
}

/// One service process; killed on drop.
pub struct Service {
    pub name: String,
    binary: PathBuf,
    env: Vec<(String, String)>,
    log: PathBuf,
    pub ready_url: String,
    child: Option<Child>,
}

impl Service {
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(&self.binary)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("RUST_LOG", "info")
            .env("RUST_BACKTRACE", "0")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", self.binary.display()));
        self.child = Some(child);
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&mut self) {
        let client = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(r) = client.get(&self.ready_url).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("{} exited ({status}):\n{}", self.name, self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{} did not become ready:\n{}", self.name, self.log_tail());
    }

    /// SIGKILL, as a crash or an OOM kill would.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` (e.g. "STOP", "CONT", "TERM") to the process.
    pub fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let status = Command::new("kill")
                .args([format!("-{signal}"), child.id().to_string()])
                .status()
                .unwrap();
            assert!(status.success(), "kill -{signal}");
        }
    }

    /// Waits for the process to exit by itself, up to `timeout`; returns whether it did.
    pub async fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if child.try_wait().ok().flatten().is_some() {
                    self.child = None;
                    return true;
                }
            } else {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Starts the process again with the same settings.
    pub async fn restart(&mut self) {
        self.kill9();
        self.spawn();
        self.wait_ready().await;
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The Prometheus text of the service's `/metrics`.
    pub async fn metrics(&self) -> String {
        let url = self.ready_url.replace("/readyz", "/metrics");
        reqwest::get(&url).await.unwrap().text().await.unwrap()
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Which broker the platform uses.
#[derive(Debug, Clone)]
pub enum Broker {
    /// The local RabbitMQ (127.0.0.1:5672, guest/guest), or another node's URL.
    RabbitMq { url: String },
    /// An SQS endpoint (moto).
    Sqs { endpoint: String },
}

impl Broker {
    pub fn local_rabbitmq() -> Broker {
        Broker::RabbitMq {
            url: std::env::var("STUDIO_TEST_AMQP")
                .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f?heartbeat=5".to_owned()),
        }
    }

    fn toml(&self) -> String {
        match self {
            Broker::RabbitMq { url } => format!("backend = \"rabbitmq\"\nurl = \"{url}\"\n"),
            Broker::Sqs { endpoint } => format!(
                "backend = \"sqs\"\nendpoint = \"{endpoint}\"\naccess_key_id = \"testing\"\n\
                 secret_access_key = \"testing\"\nvisibility_timeout_s = 30\nwait_time_s = 1\n"
            ),
        }
    }

    /// A client for checking queues from the test.
    pub async fn connect(&self) -> Arc<dyn studio_queue::WorkQueue> {
        let settings: studio_queue::QueueSettings = match self {
            Broker::RabbitMq { url } => studio_queue::QueueSettings::Rabbitmq {
                tls_ca_file: None,
                url: url.clone().into(),
            },
            Broker::Sqs { endpoint } => {
                studio_queue::QueueSettings::Sqs(studio_queue::sqs::SqsSettings {
                    region: "us-east-1".into(),
                    endpoint: Some(endpoint.clone()),
                    access_key_id: "testing".into(),
                    secret_access_key: "testing".to_owned().into(),
                    visibility_timeout_s: 30,
                    wait_time_s: 1,
                })
            }
        };
        settings.connect("studio-e2e").await.unwrap()
    }
}

/// Knobs of a platform run.
#[derive(Debug, Clone)]
pub struct Options {
    pub broker: Broker,
    /// Step lease, seconds (short in crash tests, so a dead worker's step is taken over fast).
    pub step_lease_s: u32,
    /// Render lease, seconds.
    pub render_lease_s: u32,
    pub worker_concurrency: u16,
    /// ai-job worker processes.
    pub workers: usize,
    /// Deliveries before a message is dead-lettered.
    pub max_deliveries: u32,
    /// Base URL of an OpenAI-compatible server (`studio_testkit::openai::FakeOpenAi`): when
    /// set, ai-job plans with `openai` (the text planner after it) and speaks with
    /// `openai-speech` (espeak-ng after it), its key in [`OPENAI_KEY_ENV`].
    pub openai: Option<String>,
    /// media-render's `render_timeout_s`. Default 3600.
    pub render_timeout_s: u64,
    /// A loopback port the ai-job worker processes reach Postgres through (a
    /// `studio_testkit::proxy::TcpProxy` in front of it), instead of Postgres itself.
    pub worker_database_port: Option<u16>,
}

/// The variable the ai-job processes read the OpenAI key from in these tests.
pub const OPENAI_KEY_ENV: &str = "STUDIO_E2E_OPENAI_KEY";

impl Options {
    pub fn new(broker: Broker) -> Options {
        Options {
            broker,
            step_lease_s: 30,
            render_lease_s: 60,
            worker_concurrency: 4,
            workers: 1,
            max_deliveries: 5,
            openai: None,
            render_timeout_s: 3600,
            worker_database_port: None,
        }
    }
}

/// The running platform.
pub struct Platform {
    pub dir: tempfile::TempDir,
    pub s3: S3Server,
    pub gateway: String,
    pub queue_prefix: String,
    pub bucket: String,
    pub options: Options,
    pub ai_job_db_url: String,
    databases: Vec<String>,
    pub user: Service,
    pub project: Service,
    pub ai_job_api: Service,
    /// The ai-job worker processes (`Options::workers`).
    pub ai_job_workers: Vec<Service>,
    pub media_render: Service,
    pub gateway_service: Service,
    /// The loopback ports of every listener.
    pub ports: Ports,
}

impl Platform {
    pub async fn start(options: Options) -> Platform {
        let bin = bin_dir();
        let dir = tempfile::tempdir().unwrap();
        let s3_root = dir.path().join("s3");
        std::fs::create_dir_all(&s3_root).unwrap();
        let s3 = S3Server::start(&s3_root).await;
        let tag = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
        // Short: s3s-fs keeps each object's metadata in a file named after base64(bucket) and
        // base64(key), which must fit the file system's 255-byte names.
        let bucket = format!("e2e-{tag}");
        let store = studio_storage::s3::S3Store::new(s3_settings(&s3.endpoint, &bucket)).unwrap();
        store.ensure_bucket().await.unwrap();
        let queue_prefix = format!("e2e-{tag}.");
        let mut databases = Vec::new();
        let mut urls = HashMap::new();
        for service in ["user", "project", "ai_job"] {
            let (name, url) = studio_testkit::db::fresh_database(&format!("e2e_{service}")).await;
            databases.push(name);
            urls.insert(service, url);
        }
        let ports = Ports::new();
        let config = config_toml(
            &ports,
            &urls,
            (&s3.endpoint, &bucket),
            &queue_prefix,
            &options,
            dir.path(),
        );
        let Ports {
            user_http,
            project_http,
            job_http,
            render_http,
            gateway_http,
            ..
        } = ports;
        let config_dir = dir.path().join("config");
        std::fs::create_dir_all(&config_dir).unwrap();
        std::fs::write(config_dir.join("default.toml"), config).unwrap();
        let service = |name: &str, binary: &str, ready: String, extra: &[(&str, String)]| {
            let mut env = vec![
                (
                    "STUDIO_CONFIG_DIR".to_owned(),
                    config_dir.display().to_string(),
                ),
                (
                    OPENAI_KEY_ENV.to_owned(),
                    studio_testkit::openai::KEY.to_owned(),
                ),
            ];
            env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
            Service {
                name: name.to_owned(),
                binary: bin.join(binary),
                env,
                log: dir.path().join(format!("{name}.log")),
                ready_url: ready,
                child: None,
            }
        };
        let ready = |port: u16| format!("http://127.0.0.1:{port}/readyz");
        let user = service("user", "user", ready(user_http), &[]);
        let project = service("project", "project", ready(project_http), &[]);
        let ai_job_api = service(
            "ai-job-api",
            "ai-job",
            ready(job_http),
            &[("STUDIO__AI_JOB__ROLES", "api".to_owned())],
        );
        let ai_job_workers: Vec<Service> = (0..options.workers.max(1))
            .map(|i| {
                let http = free_port();
                let mut env = vec![
                    ("STUDIO__AI_JOB__ROLES", "worker".to_owned()),
                    ("STUDIO__AI_JOB__HTTP_ADDR", format!("127.0.0.1:{http}")),
                ];
                if let Some(port) = options.worker_database_port {
                    env.push((
                        "STUDIO__AI_JOB__DATABASE__URL",
                        with_port(&urls["ai_job"], port),
                    ));
                }
                service(&format!("ai-job-worker-{i}"), "ai-job", ready(http), &env)
            })
            .collect();
        let media_render = service("media-render", "media-render", ready(render_http), &[]);
        let gateway_service = service("gateway", "gateway", ready(gateway_http), &[]);
        let mut platform = Platform {
            dir,
            s3,
            gateway: format!("http://127.0.0.1:{gateway_http}"),
            queue_prefix,
            bucket,
            options,
            ai_job_db_url: urls["ai_job"].clone(),
            databases,
            user,
            project,
            ai_job_api,
            ai_job_workers,
            media_render,
            gateway_service,
            ports,
        };
        platform.launch().await;
        platform
    }

    /// Starts the processes in the order they need each other and waits until each is ready.
    async fn launch(&mut self) {
        self.user.spawn();
        self.user.wait_ready().await;
        self.project.spawn();
        self.ai_job_api.spawn();
        self.ai_job_api.wait_ready().await;
        for w in &mut self.ai_job_workers {
            w.spawn();
        }
        self.media_render.spawn();
        self.gateway_service.spawn();
        for s in [
            &mut self.project,
            &mut self.media_render,
            &mut self.gateway_service,
        ] {
            s.wait_ready().await;
        }
        for w in &mut self.ai_job_workers {
            w.wait_ready().await;
        }
    }

    /// The object store as the services see it.
    pub fn store(&self) -> studio_storage::s3::S3Store {
        studio_storage::s3::S3Store::new(s3_settings(&self.s3.endpoint, &self.bucket)).unwrap()
    }

    /// Stops every process, deletes the queues and drops the databases.
    pub async fn stop(mut self) {
        for s in [
            &mut self.gateway_service,
            &mut self.media_render,
            &mut self.ai_job_api,
            &mut self.project,
            &mut self.user,
        ] {
            s.kill9();
        }
        for w in &mut self.ai_job_workers {
            w.kill9();
        }
        let queue = self.options.broker.connect().await;
        for name in [studio_queue::names::STEPS, studio_queue::names::RENDER] {
            let _ = queue.delete(&format!("{}{name}", self.queue_prefix)).await;
        }
        for db in &self.databases {
            studio_testkit::db::drop_database(db).await;
        }
    }
}

fn s3_settings(endpoint: &str, bucket: &str) -> studio_storage::s3::S3Settings {
    studio_storage::s3::S3Settings {
        bucket: bucket.to_owned(),
        region: "us-east-1".to_owned(),
        endpoint: Some(endpoint.to_owned()),
        access_key_id: S3_ACCESS_KEY.to_owned(),
        secret_access_key: S3_SECRET_KEY.to_owned().into(),
        force_path_style: None,
        multipart_threshold_bytes: 16 * 1024 * 1024,
        part_size_bytes: 8 * 1024 * 1024,
    }
}
