//! Runs the whole platform as separate processes for end-to-end tests: user, project, ai-job (an
//! `api` process and a `worker` process), media-render and gateway, built by `cargo build` into
//! the same target folder as the test, against the local Postgres (fresh databases), RabbitMQ
//! (queues under a unique prefix) or moto's SQS, and an in-process S3 server (s3s-fs over a
//! temporary folder) that counts completed uploads per key.
#![allow(missing_debug_implementations)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;

pub const S3_ACCESS_KEY: &str = "studio-e2e";
pub const S3_SECRET_KEY: &str = "studio-e2e-secret";

/// An S3 endpoint over a folder, counting successful uploads (`PUT` of a whole object, or the
/// completion of a multipart upload) per key.
pub struct S3Server {
    pub endpoint: String,
    uploads: Arc<Mutex<HashMap<String, u32>>>,
    task: tokio::task::JoinHandle<()>,
}

impl S3Server {
    pub async fn start(root: &Path) -> S3Server {
        let fs = s3s_fs::FileSystem::new(root).expect("s3s-fs root");
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(S3_ACCESS_KEY, S3_SECRET_KEY));
        let service = builder.build();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let uploads = Arc::new(Mutex::new(HashMap::new()));
        let counts = uploads.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let (service, counts) = (service.clone(), counts.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let (service, counts) = (service.clone(), counts.clone());
                            let method = req.method().clone();
                            let path = req.uri().path().to_owned();
                            let query = req.uri().query().unwrap_or("").to_owned();
                            async move {
                                let response = hyper::service::Service::call(&service, req).await?;
                                let whole_put =
                                    method == hyper::Method::PUT && !query.contains("partNumber");
                                let completed =
                                    method == hyper::Method::POST && query.contains("uploadId");
                                if response.status().is_success() && (whole_put || completed) {
                                    *counts.lock().unwrap().entry(path).or_insert(0) += 1;
                                }
                                Ok::<_, s3s::HttpError>(response)
                            }
                        },
                    );
                    let _ = ConnBuilder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(socket), svc)
                        .await;
                });
            }
        });
        S3Server {
            endpoint: format!("http://{addr}"),
            uploads,
            task,
        }
    }

    /// Completed uploads of keys whose path ends with `suffix`, summed.
    pub fn uploads_ending_with(&self, suffix: &str) -> HashMap<String, u32> {
        self.uploads
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.ends_with(suffix))
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.task.abort();
    }
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

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
}

impl Options {
    pub fn new(broker: Broker) -> Options {
        Options {
            broker,
            step_lease_s: 30,
            render_lease_s: 60,
            worker_concurrency: 4,
            workers: 1,
            max_deliveries: 5,
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
}

impl Platform {
    pub async fn start(options: Options) -> Platform {
        let bin = bin_dir();
        let dir = tempfile::tempdir().unwrap();
        let s3_root = dir.path().join("s3");
        std::fs::create_dir_all(&s3_root).unwrap();
        let s3 = S3Server::start(&s3_root).await;
        let tag = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
        let bucket = format!("studio-e2e-{tag}");
        let store = studio_storage::s3::S3Store::new(s3_settings(&s3.endpoint, &bucket)).unwrap();
        store.ensure_bucket().await.unwrap();
        let queue_prefix = format!("e2e-{tag}.");
        let mut databases = Vec::new();
        let mut urls = HashMap::new();
        for service in ["user", "project", "ai_job"] {
            let (name, url) = studio_core::testing::fresh_database(&format!("e2e_{service}")).await;
            databases.push(name);
            urls.insert(service, url);
        }
        let port = |_: &str| free_port();
        let (user_grpc, user_http) = (port("user"), port("user"));
        let (project_grpc, project_http) = (port("p"), port("p"));
        let (job_grpc, job_http) = (port("j"), port("j"));
        let (render_grpc, render_http) = (port("r"), port("r"));
        let gateway_http = port("g");
        let jwks = format!("http://127.0.0.1:{user_http}/.well-known/jwks.json");
        let storage = format!(
            "backend = \"s3\"\nbucket = \"{bucket}\"\nendpoint = \"{}\"\naccess_key_id = \"{S3_ACCESS_KEY}\"\nsecret_access_key = \"{S3_SECRET_KEY}\"\n",
            s3.endpoint
        );
        let queue = options.broker.toml();
        let auth =
            format!("jwks_url = \"{jwks}\"\nissuer = \"studio\"\naudience = \"studio-api\"\n");
        let config = format!(
            r#"[telemetry]
log_filter = "info"

[user]
grpc_addr = "127.0.0.1:{user_grpc}"
http_addr = "127.0.0.1:{user_http}"
[user.database]
url = "{user_db}"
max_connections = 6
[user.auth]
issuer = "studio"
audience = "studio-api"
access_ttl_s = 900
refresh_ttl_s = 86400
reuse_grace_s = 5
key_encryption_key = "c3R1ZGlvLWRldmVsb3BtZW50LWtleS0wMDAwMDAwMDA="

[project]
grpc_addr = "127.0.0.1:{project_grpc}"
http_addr = "127.0.0.1:{project_http}"
[project.database]
url = "{project_db}"
max_connections = 6
[project.auth]
{auth}
[gateway]
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

[ai_job]
grpc_addr = "127.0.0.1:{job_grpc}"
http_addr = "127.0.0.1:{job_http}"
project_url = "http://127.0.0.1:{project_grpc}"
queue_prefix = "{queue_prefix}"
relay_interval_ms = 100
max_deliveries = {max_deliveries}
[ai_job.database]
url = "{job_db}"
max_connections = 6
[ai_job.auth]
{auth}
[ai_job.queue]
{queue}
[ai_job.storage]
{storage}
[ai_job.worker]
concurrency = {concurrency}
lease_s = {step_lease}
max_attempts = 5
retry_backoff_ms = 200
grace_s = 5
work_dir = "{work}/ai-job"

[media_render]
grpc_addr = "127.0.0.1:{render_grpc}"
http_addr = "127.0.0.1:{render_http}"
ai_job_url = "http://127.0.0.1:{job_grpc}"
queue_prefix = "{queue_prefix}"
lease_s = {render_lease}
max_deliveries = {max_deliveries}
grace_s = 5
work_dir = "{work}/media-render"
[media_render.queue]
{queue}
[media_render.storage]
{storage}
"#,
            user_db = urls["user"],
            project_db = urls["project"],
            job_db = urls["ai_job"],
            concurrency = options.worker_concurrency,
            step_lease = options.step_lease_s,
            render_lease = options.render_lease_s,
            max_deliveries = options.max_deliveries,
            work = dir.path().display(),
        );
        let config_dir = dir.path().join("config");
        std::fs::create_dir_all(&config_dir).unwrap();
        std::fs::write(config_dir.join("default.toml"), config).unwrap();
        let service = |name: &str, binary: &str, ready: String, extra: &[(&str, String)]| {
            let mut env = vec![(
                "STUDIO_CONFIG_DIR".to_owned(),
                config_dir.display().to_string(),
            )];
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
        let mut user = service("user", "user", ready(user_http), &[]);
        let mut project = service("project", "project", ready(project_http), &[]);
        let mut ai_job_api = service(
            "ai-job-api",
            "ai-job",
            ready(job_http),
            &[("STUDIO__AI_JOB__ROLES", "api".to_owned())],
        );
        let mut ai_job_workers: Vec<Service> = (0..options.workers.max(1))
            .map(|i| {
                let http = free_port();
                service(
                    &format!("ai-job-worker-{i}"),
                    "ai-job",
                    ready(http),
                    &[
                        ("STUDIO__AI_JOB__ROLES", "worker".to_owned()),
                        ("STUDIO__AI_JOB__HTTP_ADDR", format!("127.0.0.1:{http}")),
                    ],
                )
            })
            .collect();
        let mut media_render = service("media-render", "media-render", ready(render_http), &[]);
        let mut gateway_service = service("gateway", "gateway", ready(gateway_http), &[]);
        user.spawn();
        user.wait_ready().await;
        project.spawn();
        ai_job_api.spawn();
        ai_job_api.wait_ready().await;
        for w in &mut ai_job_workers {
            w.spawn();
        }
        media_render.spawn();
        gateway_service.spawn();
        for s in [&mut project, &mut media_render, &mut gateway_service] {
            s.wait_ready().await;
        }
        for w in &mut ai_job_workers {
            w.wait_ready().await;
        }
        Platform {
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
            studio_core::testing::drop_database(db).await;
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

/// A private RabbitMQ node (its own name, ports and data folder; never the shared broker on
/// 5672), for tests that stop or restart the broker. Stopped, and its folder removed, on drop.
pub struct RabbitNode {
    dir: tempfile::TempDir,
    name: String,
    pub port: u16,
    dist_port: u16,
}

/// Debian's wrappers switch to the rabbitmq user; the scripts behind them run as us.
fn rabbit_script(name: &str) -> PathBuf {
    let direct = PathBuf::from("/usr/lib/rabbitmq/bin").join(name);
    if direct.exists() {
        direct
    } else {
        PathBuf::from(name)
    }
}

impl RabbitNode {
    pub fn new() -> RabbitNode {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("enabled_plugins"), "[].").unwrap();
        let port = free_port();
        std::fs::write(
            dir.path().join("rabbitmq.conf"),
            format!("listeners.tcp.default = {port}\nloopback_users = none\n"),
        )
        .unwrap();
        RabbitNode {
            name: format!(
                "studio-test-{}-{}@localhost",
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            ),
            port,
            dist_port: free_port(),
            dir,
        }
    }

    fn command(&self, program: &str) -> Command {
        let d = self.dir.path();
        let mut c = Command::new(rabbit_script(program));
        c.env("RABBITMQ_NODENAME", &self.name)
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", d.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", d.join("log"))
            .env("RABBITMQ_PID_FILE", d.join("pid"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d.join("enabled_plugins"))
            .env("RABBITMQ_CONFIG_FILE", d.join("rabbitmq"))
            .env("RABBITMQ_PLUGINS_EXPAND_DIR", d.join("plugins"));
        c
    }

    /// `amqp://guest:guest@127.0.0.1:{port}/%2f`.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// Starts the node and waits until it accepts AMQP connections.
    pub async fn start(&self) {
        let status = self
            .command("rabbitmq-server")
            .arg("-detached")
            .status()
            .unwrap();
        assert!(status.success(), "rabbitmq-server -detached failed");
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(q) = studio_queue::rabbitmq::RabbitQueue::connect(&self.url(), "probe").await
            {
                q.close().await;
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "private RabbitMQ node did not start; see {:?}",
                self.dir.path().join("log")
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Stops the node (and waits until it has).
    pub fn stop(&self) {
        let _ = self
            .command("rabbitmqctl")
            .args(["-n", &self.name, "stop"])
            .output();
    }
}

impl Default for RabbitNode {
    fn default() -> Self {
        RabbitNode::new()
    }
}

impl Drop for RabbitNode {
    fn drop(&mut self) {
        self.stop();
    }
}

/// moto's SQS server (from PyPI, `moto_server`), on a free port; stopped on drop.
pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Moto {
    pub async fn start() -> Moto {
        let port = free_port();
        let moto = Moto {
            child: Command::new("moto_server")
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("moto_server (pip install 'moto[server]'; scripts/test.sh does)"),
            port,
        };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return moto;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("moto_server did not start on port {port}");
    }

    /// `http://127.0.0.1:{port}`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
