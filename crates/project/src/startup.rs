//! Builds the project service from settings and runs it until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use studio_auth::service::{audience, LeaseKey, ServiceGuard};
use studio_auth::JwksVerifier;
use studio_core::Shutdown;
use tokio::net::TcpListener;

use crate::grpc::GrpcProject;
use crate::repo::Repo;
use crate::service::ProjectService;
use crate::settings::Settings;

/// The built service with its listeners bound.
#[derive(Debug)]
pub struct Application {
    grpc: TcpListener,
    http: TcpListener,
    service: ProjectService,
    verifier: Arc<JwksVerifier>,
    pool: sqlx::PgPool,
    guard: ServiceGuard,
    tls: studio_core::tls::TlsSettings,
}

impl Application {
    /// Connects, applies migrations and binds both ports (port 0 picks a free one).
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let identity = settings
            .identity
            .identity("project", "project", LeaseKey::NotHeld)?;
        settings.tls.server("project")?;
        let pool = studio_core::db::connect(&settings.database, "project.database").await?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .context("applying project migrations")?;
        let service = ProjectService::new(Repo { pool: pool.clone() }, settings.limits.clone());
        let verifier = Arc::new(JwksVerifier::new(settings.auth.clone()));
        let grpc = TcpListener::bind(&settings.grpc_addr)
            .await
            .with_context(|| format!("binding project.grpc_addr {}", settings.grpc_addr))?;
        let http = TcpListener::bind(&settings.http_addr)
            .await
            .with_context(|| format!("binding project.http_addr {}", settings.http_addr))?;
        Ok(Application {
            grpc,
            http,
            service,
            verifier,
            pool,
            guard: identity.guard(audience::PROJECT),
            tls: settings.tls.clone(),
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc
            .local_addr()
            .expect("bound listener has an address")
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http
            .local_addr()
            .expect("bound listener has an address")
    }

    /// Serves until `shutdown` fires, then finishes in-flight requests.
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let grpc_addr = self.grpc_addr();
        let http_addr = self.http_addr();
        let grpc = self
            .tls
            .server("project")?
            .layer(self.guard.layer())
            .layer(studio_telemetry::grpc::TraceLayer)
            .add_service(
                studio_proto::project::v1::project_service_server::ProjectServiceServer::new(
                    GrpcProject {
                        service: self.service,
                        verifier: self.verifier,
                    },
                ),
            )
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(self.grpc),
                shutdown.wait_owned(),
            );
        let router = studio_telemetry::http::ops_router(studio_core::db::probes(self.pool.clone()));
        let http = axum::serve(self.http, router).with_graceful_shutdown(shutdown.wait_owned());
        tracing::info!(%grpc_addr, %http_addr, "project service listening");
        let (grpc, http) = tokio::join!(grpc, async { http.await });
        grpc.context("project gRPC server")?;
        http.context("project HTTP server")?;
        self.pool.close().await;
        tracing::info!("project service stopped");
        Ok(())
    }
}
