//! Builds the media-render service from settings and runs it until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use studio_auth::service::{audience, LeaseKey, ServiceGuard};
use studio_core::Shutdown;
use studio_media::ffmpeg::Toolchain;
use studio_media::VideoEncoder;
use studio_proto::job::v1::render_lease_service_client::RenderLeaseServiceClient;
use studio_proto::render::v1 as pb;
use studio_queue::QueueSpec;
use tokio::net::TcpListener;
use tokio::sync::Mutex;

use crate::settings::Settings;
use crate::worker::{Status, Worker};

/// The built service with its listeners bound.
#[derive(Debug)]
pub struct Application {
    grpc: TcpListener,
    http: TcpListener,
    worker: Worker,
    encoders: Vec<String>,
    guard: ServiceGuard,
    scratch: studio_core::scratch::ScratchLimits,
    tls: studio_core::tls::TlsSettings,
}

/// Picks the encoder: NVENC only when asked for and its self-test passes, libx264 otherwise.
/// Returns the choice and every encoder that works here.
pub async fn choose_encoder(
    wanted: VideoEncoder,
    toolchain: &Toolchain,
) -> (VideoEncoder, Vec<String>) {
    let mut working = vec![VideoEncoder::Libx264.ffmpeg_name().to_owned()];
    if wanted == VideoEncoder::Libx264 {
        return (wanted, working);
    }
    match wanted.self_test(toolchain).await {
        Ok(()) => {
            tracing::info!(encoder = wanted.ffmpeg_name(), "encoder self-test passed");
            working.push(wanted.ffmpeg_name().to_owned());
            (wanted, working)
        }
        Err(reason) => {
            tracing::warn!(encoder = wanted.ffmpeg_name(), %reason, "encoder self-test failed; falling back to libx264");
            (VideoEncoder::Libx264, working)
        }
    }
}

/// The channel to ai-job's render-lease listener at `url`. Every call has a deadline of a third
/// of the `lease`, and HTTP/2 keep-alive pings find a half-open connection as fast, so a
/// heartbeat that gets no answer fails in time for the next one instead of hanging while the
/// lease runs out (security review L6).
///
/// Errors: `url` is not a URI; the TLS settings are unusable.
pub fn lease_channel(
    tls: &studio_core::tls::TlsSettings,
    url: &str,
    lease: Duration,
) -> anyhow::Result<tonic::transport::Channel> {
    let deadline = (lease / 3).max(Duration::from_secs(1));
    Ok(tls
        .endpoint("media_render", "media_render.ai_job_lease_url", url)?
        .connect_timeout(Duration::from_secs(5))
        .timeout(deadline)
        .http2_keep_alive_interval(deadline)
        .keep_alive_timeout(deadline)
        .keep_alive_while_idle(true)
        .connect_lazy())
}

impl Application {
    /// Tests the encoder, connects to the broker and the store, and binds the ports.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let identity =
            settings
                .identity
                .identity("media_render", "media-render", LeaseKey::Held)?;
        let (encoder, encoders) = choose_encoder(settings.encoder, &Toolchain::default()).await;
        let queue = settings
            .queue
            .connect("media-render")
            .await
            .context("connecting to media_render.queue")?;
        let queue_name = format!("{}{}", settings.queue_prefix, studio_queue::names::RENDER);
        queue
            .declare(&QueueSpec::new(queue_name.clone()).max_deliveries(settings.max_deliveries))
            .await
            .with_context(|| format!("declaring queue {queue_name}"))?;
        let storage = settings
            .storage
            .open()
            .context("opening media_render.storage")?;
        std::fs::create_dir_all(&settings.work_dir).with_context(|| {
            format!(
                "creating media_render.work_dir {}",
                settings.work_dir.display()
            )
        })?;
        settings.tls.server("media_render")?;
        let channel = lease_channel(&settings.tls, &settings.ai_job_lease_url, settings.lease())?;
        let grpc = TcpListener::bind(&settings.grpc_addr)
            .await
            .with_context(|| format!("binding media_render.grpc_addr {}", settings.grpc_addr))?;
        let http = TcpListener::bind(&settings.http_addr)
            .await
            .with_context(|| format!("binding media_render.http_addr {}", settings.http_addr))?;
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".to_owned());
        let worker = Worker {
            id: format!("media-render-{host}-{}", std::process::id()),
            queue,
            queue_name,
            storage,
            leases: RenderLeaseServiceClient::new(identity.lease_tokens().channel(channel)),
            encoder,
            lease: settings.lease(),
            grace: Duration::from_secs(settings.grace_s),
            render_jobs: settings.render_jobs,
            work_dir: settings.work_dir.clone(),
            render_timeout: Duration::from_secs(settings.render_timeout_s),
            status: Arc::new(Mutex::new(Status::default())),
        };
        Ok(Application {
            grpc,
            http,
            worker,
            encoders,
            guard: identity.guard(audience::MEDIA_RENDER),
            scratch: settings.scratch,
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

    /// Renders until `shutdown`; the current render gets the grace period.
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let status = StatusService {
            worker: self.worker.id.clone(),
            encoders: self.encoders,
            status: self.worker.status.clone(),
        };
        let grpc = self
            .tls
            .server("media_render")?
            .layer(self.guard.layer())
            .layer(studio_telemetry::grpc::TraceLayer)
            .add_service(pb::render_service_server::RenderServiceServer::new(status))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(self.grpc),
                shutdown.wait_owned(),
            );
        // No database: alive and ready while the process runs.
        let probes = axum::Router::new()
            .route("/healthz", axum::routing::get(|| async { "ok" }))
            .route("/readyz", axum::routing::get(|| async { "ok" }));
        let router = studio_telemetry::http::ops_router(probes);
        let http = axum::serve(self.http, router).with_graceful_shutdown(shutdown.wait_owned());
        let scratch = studio_core::scratch::run(
            "media_render.work_dir",
            self.worker.work_dir.clone(),
            self.scratch,
            shutdown.clone(),
        );
        let (worker, grpc, http, ()) = tokio::join!(
            self.worker.run(shutdown.clone()),
            grpc,
            async { http.await },
            scratch
        );
        worker?;
        grpc.context("media-render gRPC server")?;
        http.context("media-render HTTP server")?;
        Ok(())
    }
}

/// `studio.render.v1.RenderService`.
#[derive(Debug, Clone)]
struct StatusService {
    worker: String,
    encoders: Vec<String>,
    status: Arc<Mutex<Status>>,
}

#[tonic::async_trait]
impl pb::render_service_server::RenderService for StatusService {
    async fn get_worker_status(
        &self,
        _request: tonic::Request<pb::GetWorkerStatusRequest>,
    ) -> Result<tonic::Response<pb::WorkerStatus>, tonic::Status> {
        Ok(tonic::Response::new(pb::WorkerStatus {
            worker: self.worker.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            encoders: self.encoders.clone(),
            current_job_id: self.status.lock().await.current_job.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use studio_auth::service::ServiceIdentity;
    use studio_proto::job::v1 as job_pb;
    use studio_proto::job::v1::render_lease_service_server::{
        RenderLeaseService, RenderLeaseServiceServer,
    };

    /// A lease service that takes every call and never answers.
    struct Silent;

    #[tonic::async_trait]
    impl RenderLeaseService for Silent {
        async fn claim_render(
            &self,
            _: tonic::Request<job_pb::ClaimRenderRequest>,
        ) -> Result<tonic::Response<job_pb::ClaimRenderResponse>, tonic::Status> {
            std::future::pending().await
        }
        async fn heartbeat_render(
            &self,
            _: tonic::Request<job_pb::HeartbeatRenderRequest>,
        ) -> Result<tonic::Response<job_pb::HeartbeatRenderResponse>, tonic::Status> {
            std::future::pending().await
        }
        async fn finish_render(
            &self,
            _: tonic::Request<pb::RenderResult>,
        ) -> Result<tonic::Response<job_pb::FinishRenderResponse>, tonic::Status> {
            std::future::pending().await
        }
    }

    /// A heartbeat that ai-job never answers fails with a deadline instead of hanging while the
    /// lease runs out (security review L6).
    #[tokio::test]
    async fn an_unanswered_heartbeat_fails_within_its_deadline() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let identity = ServiceIdentity::development("media-render");
        let server = tonic::transport::Server::builder()
            .layer(identity.lease_guard().layer())
            .add_service(RenderLeaseServiceServer::new(Silent))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
        let server = tokio::spawn(server);
        let lease = Duration::from_secs(6);
        let channel = lease_channel(&Default::default(), &url, lease).unwrap();
        let mut leases = RenderLeaseServiceClient::new(identity.lease_tokens().channel(channel));
        let beat = job_pb::HeartbeatRenderRequest {
            step_id: "s".into(),
            fencing_token: 1,
            lease_s: lease.as_secs() as u32,
        };
        // The outer bound only keeps a regression from hanging the suite.
        let answer = tokio::time::timeout(lease, leases.heartbeat_render(beat))
            .await
            .expect("the call's own deadline ends it before the lease does");
        let status = answer.unwrap_err();
        assert!(
            matches!(
                status.code(),
                tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
            ),
            "{status:?}"
        );
        server.abort();
    }
}
