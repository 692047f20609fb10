//! Builds the user service from settings and runs it until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use secrecy::ExposeSecret;
use studio_auth::service::{audience, LeaseKey, ServiceGuard};
use studio_core::Shutdown;
use tokio::net::TcpListener;

use crate::google::Google;
use crate::grpc::GrpcUser;
use crate::keys::{Kek, KeyRing};
use crate::mail::outbox::Outbox;
use crate::password::Passwords;
use crate::repo::Repo;
use crate::service::UserService;
use crate::settings::Settings;
use crate::verification::Verifier;

/// The built service with its listeners bound.
#[derive(Debug)]
pub struct Application {
    grpc: TcpListener,
    http: TcpListener,
    service: UserService,
    pool: sqlx::PgPool,
    guard: ServiceGuard,
    tls: studio_core::tls::TlsSettings,
    outbox: Option<Outbox>,
}

impl Application {
    /// Connects, applies migrations, loads signing keys and binds both ports (port 0 picks a free
    /// one; read it back with [`Application::grpc_addr`]).
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let identity = settings
            .identity
            .identity("user", "user", LeaseKey::NotHeld)?;
        settings.tls.server("user")?;
        let pool = studio_core::db::connect(&settings.database, "user.database").await?;
        crate::MIGRATOR
            .run(&pool)
            .await
            .context("applying user migrations")?;
        let kek = Kek::parse(settings.auth.key_encryption_key.expose_secret())
            .map_err(anyhow::Error::msg)
            .context("user.auth.key_encryption_key")?;
        let keys = KeyRing::load(
            pool.clone(),
            kek,
            chrono::Duration::seconds(settings.auth.access_ttl_s + 60),
        )
        .await
        .context("loading signing keys")?;
        let passwords = Passwords::new(&settings.password).context("user.password")?;
        let google = settings
            .google
            .clone()
            .map(Google::new)
            .transpose()
            .map_err(anyhow::Error::msg)?;
        let verifier = match &settings.mail {
            Some(mail) => Some(Verifier {
                settings: mail.clone(),
                outbox: Outbox::new(
                    pool.clone(),
                    crate::mail::sender(mail).context("user.mail")?,
                    mail.max_attempts,
                ),
            }),
            None => {
                tracing::warn!("user.mail is not set: no verification mail is sent, and password accounts stay unverified");
                None
            }
        };
        let service = UserService::new(
            Repo { pool: pool.clone() },
            Arc::new(keys),
            passwords,
            settings.auth.clone(),
            google,
            verifier.clone(),
        );
        let grpc = TcpListener::bind(&settings.grpc_addr)
            .await
            .with_context(|| format!("binding user.grpc_addr {}", settings.grpc_addr))?;
        let http = TcpListener::bind(&settings.http_addr)
            .await
            .with_context(|| format!("binding user.http_addr {}", settings.http_addr))?;
        Ok(Application {
            grpc,
            http,
            service,
            pool,
            guard: identity.guard(audience::USER),
            tls: settings.tls.clone(),
            outbox: verifier.map(|v| v.outbox),
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

    /// Serves gRPC and HTTP until `shutdown` fires, then stops accepting and finishes in-flight
    /// requests.
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let grpc_addr = self.grpc_addr();
        let http_addr = self.http_addr();
        let grpc = self
            .tls
            .server("user")?
            .layer(self.guard.layer())
            .layer(studio_telemetry::grpc::TraceLayer)
            .add_service(
                studio_proto::user::v1::user_service_server::UserServiceServer::new(GrpcUser {
                    service: self.service.clone(),
                }),
            )
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(self.grpc),
                shutdown.wait_owned(),
            );
        let http = axum::serve(
            self.http,
            crate::http::router(self.service, self.pool.clone()),
        )
        .with_graceful_shutdown(shutdown.wait_owned());
        tracing::info!(%grpc_addr, %http_addr, "user service listening");
        let prune = crate::retention::run(self.pool.clone(), shutdown.clone());
        let outbox = async {
            if let Some(outbox) = self.outbox {
                outbox.run(shutdown.clone()).await;
            }
        };
        let (grpc, http, (), ()) = tokio::join!(grpc, async { http.await }, prune, outbox);
        grpc.context("user gRPC server")?;
        http.context("user HTTP server")?;
        self.pool.close().await;
        tracing::info!("user service stopped");
        Ok(())
    }
}
