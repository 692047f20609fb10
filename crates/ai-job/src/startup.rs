//! Builds the ai-job service from settings and runs its roles until shutdown: `api` (gRPC
//! JobService and, on its own listener, RenderLeaseService; the outbox relay and the lease
//! sweeper) and `worker` (step workers). Every gRPC call needs a service token
//! ([`studio_auth::service`]): the platform key's for JobService, the render-lease key's for
//! RenderLeaseService.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use studio_auth::service::{audience, LeaseKey, ServiceIdentity};
use studio_auth::JwksVerifier;
use studio_core::Shutdown;
use studio_proto::job::v1::job_service_server::JobServiceServer;
use studio_proto::job::v1::render_lease_service_server::RenderLeaseServiceServer;
use studio_providers::cache::ResultCache;
use studio_queue::{QueueSpec, WorkQueue};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tonic::transport::server::TcpIncoming;

use studio_pipeline::Graph;
use studio_providers::Providers;
use studio_storage::ObjectStore;

use crate::grpc::{GrpcJobs, GrpcProjects, GrpcRenderLeases};
use crate::service::{Jobs, RenderLeases};
use crate::settings::{Role, Settings};
use crate::shared_cache::StoredResults;
use crate::steps::StepContext;
use crate::store::{JobStore, Queues};
use crate::worker::Worker;

/// What every role of the process shares.
#[derive(Clone)]
struct Shared {
    store: JobStore,
    storage: Arc<dyn ObjectStore>,
    providers: Arc<Providers>,
    graph: Arc<Graph>,
    projects: GrpcProjects,
}

/// The gRPC listeners of the `api` role.
struct ApiListeners {
    /// JobService.
    jobs: TcpListener,
    /// RenderLeaseService.
    leases: TcpListener,
}

/// The built service with its listeners bound.
pub struct Application {
    grpc: Option<ApiListeners>,
    http: TcpListener,
    identity: ServiceIdentity,
    shared: Shared,
    queue: Arc<dyn WorkQueue>,
    settings: Settings,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("roles", &self.settings.roles)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Connects to Postgres (applying migrations), the broker (declaring the queues) and the
    /// object store, builds the provider chains, and binds the ports (0 picks a free one).
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let identity = settings
            .identity
            .identity("ai_job", "ai-job", LeaseKey::Held)?;
        let pool = studio_core::db::connect(&settings.database, "ai_job.database").await?;
        crate::MIGRATOR
            .run(&pool)
            .await
            .context("applying ai-job migrations")?;
        let queue = settings
            .queue
            .connect("ai-job")
            .await
            .context("connecting to ai_job.queue")?;
        let queues = Queues::prefixed(&settings.queue_prefix);
        for name in [&queues.steps, &queues.render] {
            queue
                .declare(&QueueSpec::new(name.clone()).max_deliveries(settings.max_deliveries))
                .await
                .with_context(|| format!("declaring queue {name}"))?;
        }
        let storage = settings.storage.open().context("opening ai_job.storage")?;
        std::fs::create_dir_all(&settings.worker.work_dir).with_context(|| {
            format!(
                "creating ai_job.worker.work_dir {}",
                settings.worker.work_dir.display()
            )
        })?;
        let mut cache = ResultCache::new(settings.worker.work_dir.join("cache"));
        if settings.worker.shared_cache {
            cache = cache.with_shared(Arc::new(StoredResults::new(storage.clone())));
        }
        let cache = Arc::new(cache);
        let providers = Arc::new(
            settings
                .providers
                .build(Some(cache))
                .context("building ai_job.providers")?,
        );
        settings.tls.server("ai_job")?;
        let projects = settings
            .tls
            .endpoint("ai_job", "ai_job.project_url", &settings.project_url)?
            .connect_timeout(Duration::from_secs(5))
            .connect_lazy();
        let shared = Shared {
            store: JobStore { pool, queues },
            storage,
            providers,
            graph: Arc::new(Graph::standard()),
            projects: GrpcProjects(
                studio_proto::project::v1::project_service_client::ProjectServiceClient::new(
                    identity.tokens(audience::PROJECT).channel(projects),
                ),
            ),
        };
        let grpc = if settings.has(Role::Api) {
            Some(ApiListeners {
                jobs: TcpListener::bind(&settings.grpc_addr)
                    .await
                    .with_context(|| format!("binding ai_job.grpc_addr {}", settings.grpc_addr))?,
                leases: TcpListener::bind(&settings.lease_addr)
                    .await
                    .with_context(|| {
                        format!("binding ai_job.lease_addr {}", settings.lease_addr)
                    })?,
            })
        } else {
            None
        };
        let http = TcpListener::bind(&settings.http_addr)
            .await
            .with_context(|| format!("binding ai_job.http_addr {}", settings.http_addr))?;
        Ok(Application {
            grpc,
            http,
            identity,
            shared,
            queue,
            settings,
        })
    }

    /// The gRPC address of JobService, when this process runs the `api` role.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc.as_ref().and_then(|l| l.jobs.local_addr().ok())
    }

    /// The gRPC address of RenderLeaseService, when this process runs the `api` role.
    pub fn lease_addr(&self) -> Option<SocketAddr> {
        self.grpc.as_ref().and_then(|l| l.leases.local_addr().ok())
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http
            .local_addr()
            .expect("bound listener has an address")
    }

    /// Runs every role until `shutdown` fires; workers then get their grace period.
    pub async fn run_until_stopped(mut self, shutdown: Shutdown) -> anyhow::Result<()> {
        let pool = self.shared.store.pool.clone();
        let mut tasks = JoinSet::new();
        if let Some(listeners) = self.grpc.take() {
            self.spawn_api(listeners, &mut tasks, &shutdown).await?;
        }
        if self.settings.has(Role::Worker) {
            self.spawn_worker(&mut tasks, &shutdown);
        }
        let router = studio_telemetry::http::ops_router(studio_core::db::probes(pool.clone()));
        let http = axum::serve(self.http, router).with_graceful_shutdown(shutdown.wait_owned());
        tasks.spawn(async move { http.await.context("ai-job HTTP server") });
        let mut result = Ok(());
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    tracing::error!(error = %err, "ai-job task failed; stopping");
                    shutdown.trigger();
                    result = Err(err);
                }
                Err(err) => {
                    shutdown.trigger();
                    result = Err(err.into());
                }
            }
        }
        pool.close().await;
        tracing::info!("ai-job stopped");
        result
    }

    /// Starts the `api` role on `tasks`: JobService and RenderLeaseService on their listeners,
    /// the outbox relay, the dead-letter consumer and pruning.
    async fn spawn_api(
        &self,
        listeners: ApiListeners,
        tasks: &mut JoinSet<anyhow::Result<()>>,
        shutdown: &Shutdown,
    ) -> anyhow::Result<()> {
        let addr = listeners.jobs.local_addr()?;
        let lease_addr = listeners.leases.local_addr()?;
        let events = crate::watch::EventHub::start(&self.shared.store)
            .await
            .context("listening for job events")?;
        let jobs = Jobs {
            store: self.shared.store.clone(),
            storage: self.shared.storage.clone(),
            providers: self.shared.providers.clone(),
            projects: Arc::new(self.shared.projects.clone()),
            graph: self.shared.graph.clone(),
            events,
            output_url_ttl: Duration::from_secs(self.settings.output_url_ttl_s),
            max_attempts: self.settings.worker.max_attempts,
            limits: self.settings.limits.clone(),
        };
        let verifier = Arc::new(JwksVerifier::new(self.settings.auth.clone()));
        let leases = RenderLeases {
            store: self.shared.store.clone(),
        };
        let tls = &self.settings.tls;
        let server = tls
            .server("ai_job")?
            .layer(self.identity.guard(audience::AI_JOB).layer())
            .layer(studio_telemetry::grpc::TraceLayer)
            .add_service(JobServiceServer::new(GrpcJobs { jobs, verifier }))
            .serve_with_incoming_shutdown(TcpIncoming::from(listeners.jobs), shutdown.wait_owned());
        let lease_server = tls
            .server("ai_job")?
            .layer(self.identity.lease_guard().layer())
            .layer(studio_telemetry::grpc::TraceLayer)
            .add_service(RenderLeaseServiceServer::new(GrpcRenderLeases { leases }))
            .serve_with_incoming_shutdown(
                TcpIncoming::from(listeners.leases),
                shutdown.wait_owned(),
            );
        tracing::info!(grpc_addr = %addr, %lease_addr, "ai-job api listening");
        tasks.spawn(async move { server.await.context("ai-job gRPC server") });
        tasks.spawn(async move {
            lease_server
                .await
                .context("ai-job render-lease gRPC server")
        });
        let relay = crate::relay::run(
            self.shared.store.clone(),
            self.queue.clone(),
            Duration::from_millis(self.settings.relay_interval_ms.max(10)),
            shutdown.clone(),
        );
        tasks.spawn(async move {
            relay.await;
            Ok(())
        });
        tasks.spawn(crate::deadletter::run(
            self.shared.store.clone(),
            self.queue.clone(),
            self.settings.max_deliveries,
            shutdown.clone(),
        ));
        let prune = crate::retention::run(
            self.shared.store.pool.clone(),
            self.shared.storage.clone(),
            self.settings.retention.clone(),
            shutdown.clone(),
        );
        tasks.spawn(async move {
            prune.await;
            Ok(())
        });
        let purge = crate::deletion::run(
            self.shared.store.clone(),
            self.shared.storage.clone(),
            Duration::from_secs(self.settings.retention.purge_again_after_s),
            shutdown.clone(),
        );
        tasks.spawn(async move {
            purge.await;
            Ok(())
        });
        Ok(())
    }

    /// Starts the `worker` role on `tasks`: the step worker and the pruning of its work folder.
    fn spawn_worker(&self, tasks: &mut JoinSet<anyhow::Result<()>>, shutdown: &Shutdown) {
        let worker = Worker {
            id: format!("ai-job-{}-{}", hostname(), std::process::id()),
            context: StepContext {
                store: self.shared.store.clone(),
                storage: self.shared.storage.clone(),
                providers: self.shared.providers.clone(),
                graph: self.shared.graph.clone(),
                work_dir: self.settings.worker.work_dir.clone(),
                max_attempts: self.settings.worker.max_attempts,
            },
            queue: self.queue.clone(),
            settings: self.settings.worker.clone(),
        };
        tasks.spawn(worker.run(shutdown.clone()));
        let scratch = studio_core::scratch::run(
            "ai_job.worker.work_dir",
            self.settings.worker.work_dir.clone(),
            self.settings.worker.scratch,
            shutdown.clone(),
        );
        tasks.spawn(async move {
            scratch.await;
            Ok(())
        });
    }
}

/// This machine's name, for worker ids (`HOSTNAME` in containers).
pub fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .unwrap_or_else(|| "localhost".to_owned())
}
