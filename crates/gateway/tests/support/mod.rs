//! Starts the user, project and gateway services in this process, each on port 0 against its own
//! fresh database on the local Postgres (`STUDIO_TEST_POSTGRES`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`), and talks to them over real sockets.

#![allow(dead_code)]

use std::time::Duration;

use serde_json::{json, Value};
use studio_core::settings::DatabaseSettings;
use studio_core::Shutdown;

pub use studio_testkit::db::{drop_database, fresh_database};

/// Knobs a test may turn.
#[derive(Debug, Clone)]
pub struct Options {
    pub reuse_grace_s: i64,
    pub rate_limit: studio_gateway::settings::RateLimitSettings,
    pub google: Option<studio_user::settings::GoogleSettings>,
    pub mail: Option<studio_user::settings::MailSettings>,
    pub cors: studio_gateway::settings::CorsSettings,
    pub limits: studio_ai_job::limits::Limits,
    pub project_limits: studio_project::settings::Limits,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            reuse_grace_s: 5,
            rate_limit: studio_gateway::settings::RateLimitSettings {
                per_ip_per_minute: 100_000,
                per_ip_burst: 100_000,
                per_user_per_minute: 100_000,
                per_user_burst: 100_000,
                auth_per_ip_per_minute: 100_000,
                auth_per_ip_burst: 100_000,
                client_ip_header: None,
                max_streams_per_user: 10,
            },
            google: None,
            mail: None,
            cors: Default::default(),
            limits: Default::default(),
            project_limits: Default::default(),
        }
    }
}

pub const ISSUER: &str = "studio-test";
pub const AUDIENCE: &str = "studio-api";

/// A running platform.
pub struct Platform {
    pub base: String,
    pub user_grpc: String,
    pub user_http: String,
    pub project_grpc: String,
    /// ai-job's JobService.
    pub job_grpc: String,
    /// ai-job's RenderLeaseService.
    pub job_lease: String,
    pub user_db: String,
    pub user_db_name: String,
    project_db_name: String,
    shutdown: Shutdown,
    /// Stops only the gateway (the services keep running).
    pub gateway_shutdown: Shutdown,
    gateway_task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pub http: reqwest::Client,
    pub job_db_name: String,
    /// ai-job's database URL.
    pub job_db: String,
    /// ai-job's object store (a local folder).
    pub objects: tempfile::TempDir,
}

pub fn user_settings(db_url: &str, options: &Options) -> studio_user::settings::Settings {
    studio_user::settings::Settings {
        grpc_addr: "127.0.0.1:0".to_owned(),
        http_addr: "127.0.0.1:0".to_owned(),
        database: DatabaseSettings::new(db_url),
        auth: studio_user::settings::AuthSettings {
            issuer: ISSUER.to_owned(),
            audience: AUDIENCE.to_owned(),
            reuse_grace_s: options.reuse_grace_s,
            ..Default::default()
        },
        password: Default::default(),
        google: options.google.clone(),
        mail: options.mail.clone(),
        identity: Default::default(),
        tls: Default::default(),
    }
}

pub fn verifier(user_http: &str) -> studio_auth::VerifierSettings {
    let mut v = studio_auth::VerifierSettings::new(
        format!("{user_http}/.well-known/jwks.json"),
        ISSUER,
        AUDIENCE,
    );
    v.min_refresh_interval_ms = 0;
    v
}

impl Platform {
    pub async fn start() -> Platform {
        Platform::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Platform {
        let _ = studio_telemetry::init("test", &Default::default());
        let shutdown = Shutdown::new();
        let mut tasks = Vec::new();
        let (user_db_name, user_db) = fresh_database("user").await;
        let (project_db_name, project_db) = fresh_database("project").await;

        let user = studio_user::startup::Application::build(user_settings(&user_db, &options))
            .await
            .expect("user service starts");
        let user_grpc = format!("http://{}", user.grpc_addr());
        let user_http = format!("http://{}", user.http_addr());
        tasks.push(tokio::spawn(user.run_until_stopped(shutdown.clone())));

        let project =
            studio_project::startup::Application::build(studio_project::settings::Settings {
                grpc_addr: "127.0.0.1:0".to_owned(),
                http_addr: "127.0.0.1:0".to_owned(),
                database: DatabaseSettings::new(&project_db),
                auth: verifier(&user_http),
                identity: Default::default(),
                tls: Default::default(),
                limits: options.project_limits.clone(),
            })
            .await
            .expect("project service starts");
        let project_grpc = format!("http://{}", project.grpc_addr());
        tasks.push(tokio::spawn(project.run_until_stopped(shutdown.clone())));

        // The job API only (no workers): jobs stay queued, which is all these tests need.
        let (job_db_name, job_db) = fresh_database("aijob").await;
        let objects = tempfile::tempdir().unwrap();
        let ai_job =
            studio_ai_job::startup::Application::build(studio_ai_job::settings::Settings {
                grpc_addr: "127.0.0.1:0".to_owned(),
                lease_addr: "127.0.0.1:0".to_owned(),
                http_addr: "127.0.0.1:0".to_owned(),
                database: DatabaseSettings::new(&job_db),
                auth: verifier(&user_http),
                project_url: project_grpc.clone(),
                queue: studio_queue::QueueSettings::Memory,
                queue_prefix: String::new(),
                storage: studio_storage::StorageSettings::Local {
                    root: objects.path().to_path_buf(),
                },
                roles: vec![studio_ai_job::settings::Role::Api],
                worker: Default::default(),
                providers: Default::default(),
                relay_interval_ms: 100,
                output_url_ttl_s: 60,
                max_deliveries: 5,
                limits: options.limits.clone(),
                retention: Default::default(),
                identity: Default::default(),
                tls: Default::default(),
            })
            .await
            .expect("ai-job service starts");
        let job_grpc = format!("http://{}", ai_job.grpc_addr().expect("api role"));
        let job_lease = format!("http://{}", ai_job.lease_addr().expect("api role"));
        tasks.push(tokio::spawn(ai_job.run_until_stopped(shutdown.clone())));

        let gateway =
            studio_gateway::startup::Application::build(studio_gateway::settings::Settings {
                http_addr: "127.0.0.1:0".to_owned(),
                user_url: user_grpc.clone(),
                project_url: project_grpc.clone(),
                ai_job_url: job_grpc.clone(),
                auth: verifier(&user_http),
                body_limit_bytes: 2 * 1024 * 1024,
                upstream_timeout_ms: 10_000,
                rate_limit: options.rate_limit.clone(),
                cors: options.cors.clone(),
                identity: Default::default(),
                tls: Default::default(),
            })
            .await
            .expect("gateway starts");
        let base = format!("http://{}", gateway.addr());
        let gateway_shutdown = Shutdown::new();
        let gateway_task = tokio::spawn(gateway.run_until_stopped(gateway_shutdown.clone()));

        Platform {
            base,
            user_grpc,
            user_http,
            project_grpc,
            job_grpc,
            job_lease,
            user_db,
            user_db_name,
            project_db_name,
            job_db_name,
            job_db,
            objects,
            shutdown,
            gateway_shutdown,
            gateway_task: Some(gateway_task),
            tasks,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    /// Stops the services (gracefully) and drops their databases.
    pub async fn stop(mut self) {
        self.stop_gateway().await;
        self.shutdown.trigger();
        for task in self.tasks {
            task.await
                .expect("service task")
                .expect("service stopped cleanly");
        }
        drop_database(&self.user_db_name).await;
        drop_database(&self.project_db_name).await;
        drop_database(&self.job_db_name).await;
    }

    /// Stops the gateway gracefully and waits until it has.
    pub async fn stop_gateway(&mut self) {
        self.gateway_shutdown.trigger();
        if let Some(task) = self.gateway_task.take() {
            task.await
                .expect("gateway task")
                .expect("gateway stopped cleanly");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request; returns status, headers and JSON body (Null when empty).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut request = self
            .http
            .request(method.to_uppercase().parse().unwrap(), self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("gateway answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, headers, json)
    }

    /// Registers `email` and returns (access token, refresh token, user id).
    pub async fn register(&self, email: &str) -> (String, String, String) {
        let (status, _, body) = self
            .call(
                "POST",
                "/v1/auth/register",
                None,
                Some(json!({"email": email, "password": "correct horse battery", "display_name": "Test"})),
            )
            .await;
        assert_eq!(status, 201, "register {email}: {body}");
        (
            body["access_token"].as_str().unwrap().to_owned(),
            body["refresh_token"].as_str().unwrap().to_owned(),
            body["user"]["id"].as_str().unwrap().to_owned(),
        )
    }

    pub async fn sign_in(&self, email: &str) -> Value {
        let (status, _, body) = self
            .call(
                "POST",
                "/v1/auth/sign-in",
                None,
                Some(json!({"email": email, "password": "correct horse battery"})),
            )
            .await;
        assert_eq!(status, 200, "sign in {email}: {body}");
        body
    }
}

/// The fable the tests make projects from (public domain, Aesop/Townsend).
pub fn fable() -> String {
    let text = studio_testkit::texts::aesop();
    let start = text.find("The Lion And The Mouse").expect("fable present");
    let end = text[start..]
        .find("The Charcoal-Burner")
        .expect("next fable")
        + start;
    text[start..end].trim().to_owned()
}
