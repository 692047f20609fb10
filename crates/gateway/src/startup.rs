//! Builds the gateway: gRPC channels to the services, the JWKS verifier, limiters, the `/v1`
//! router with its OpenAPI document, and runs it until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use studio_auth::service::{audience, LeaseKey};
use studio_auth::JwksVerifier;
use studio_core::tls::TlsSettings;
use studio_core::{Error, ErrorCode, Shutdown};
use studio_proto::job::v1::job_service_client::JobServiceClient;
use studio_proto::project::v1::project_service_client::ProjectServiceClient;
use studio_proto::user::v1::user_service_client::UserServiceClient;
use tokio::net::TcpListener;
use tonic::transport::Channel;
use tower_http::cors::{AllowOrigin, CorsLayer};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::rate::Limits;
use crate::routes::{auth, jobs, projects};
use crate::settings::Settings;
pub use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Studio API",
        description = "Studio turns text into narrated videos. Sign in under /v1/auth, then keep projects, scenes, assets and style presets. Errors are application/problem+json (RFC 9457) naming the field at fault.",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    components(schemas(crate::error::Problem)),
    tags(
        (name = "auth", description = "Accounts and tokens"),
        (name = "projects", description = "Projects: the text or topic a video is made from"),
        (name = "scenes", description = "Scenes of a project"),
        (name = "assets", description = "Stored media of a project"),
        (name = "presets", description = "Style presets"),
        (name = "jobs", description = "Jobs: making a project's video, its progress and its outputs"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("An access token from /v1/auth/sign-in"))
                    .build(),
            ),
        );
    }
}

/// The `/v1` routes and the OpenAPI document describing exactly them: both come from the same
/// handler list, so an undocumented route cannot exist.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(auth::register))
        .routes(routes!(auth::sign_in))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::sign_out))
        .routes(routes!(auth::google_start))
        .routes(routes!(auth::google_finish))
        .routes(routes!(auth::me))
        .routes(routes!(auth::verify_email))
        .routes(routes!(auth::resend_verification))
        .routes(routes!(projects::create_project, projects::list_projects))
        .routes(routes!(
            projects::get_project,
            projects::update_project,
            projects::delete_project
        ))
        .routes(routes!(projects::create_scene, projects::list_scenes))
        .routes(routes!(
            projects::get_scene,
            projects::update_scene,
            projects::delete_scene
        ))
        .routes(routes!(projects::create_asset, projects::list_assets))
        .routes(routes!(projects::get_asset, projects::delete_asset))
        .routes(routes!(projects::list_presets, projects::create_preset))
        .routes(routes!(projects::delete_preset))
        .routes(routes!(jobs::start_job))
        .routes(routes!(jobs::list_jobs))
        .routes(routes!(jobs::get_job))
        .routes(routes!(jobs::cancel_job))
        .routes(routes!(jobs::output_url))
        .routes(routes!(jobs::job_events))
        .split_for_parts()
}

/// The OpenAPI document (3.1), as served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().1
}

async fn not_found() -> ApiError {
    Error::new(ErrorCode::NotFound, "no such route; see /openapi.json").into()
}

async fn method_not_allowed(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    if response.status() == StatusCode::METHOD_NOT_ALLOWED {
        let problem = crate::error::Problem {
            kind: "https://studio.dev/problems/method-not-allowed".to_owned(),
            title: "Method not allowed".to_owned(),
            status: 405,
            detail: "this route does not accept that method; see /openapi.json".to_owned(),
            field: None,
        };
        let mut problem = (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::CONTENT_TYPE, "application/problem+json")],
            serde_json::to_vec(&problem).unwrap_or_default(),
        )
            .into_response();
        if let Some(allow) = response.headers().get(header::ALLOW) {
            problem.headers_mut().insert(header::ALLOW, allow.clone());
        }
        return problem;
    }
    response
}

/// The whole router: `/v1` (rate-limited), `/openapi.json`, probes, metrics.
pub fn router(state: AppState, settings: &Settings) -> Router {
    let (api, doc) = api();
    let doc = Arc::new(doc);
    let api = api.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        crate::rate::per_ip,
    ));
    let mut app = Router::new()
        .merge(api)
        .route(
            "/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { Json(doc.as_ref().clone()) }
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .merge(studio_telemetry::http::metrics_router())
        .fallback(not_found)
        .with_state(state)
        .layer(axum::middleware::from_fn(method_not_allowed))
        .layer(DefaultBodyLimit::max(settings.body_limit_bytes))
        .layer(axum::middleware::from_fn(studio_telemetry::http::track));
    if !settings.cors.allowed_origins.is_empty() {
        let origins: Vec<HeaderValue> = settings
            .cors
            .allowed_origins
            .iter()
            .filter_map(|o| o.parse().ok())
            .collect();
        app = app.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
                // Idempotency-Key lets a browser retry a job start safely.
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    header::HeaderName::from_static("idempotency-key"),
                ])
                .expose_headers([header::RETRY_AFTER])
                .max_age(Duration::from_secs(settings.cors.max_age_s)),
        );
    }
    app
}

/// Ready when both services accept TCP connections on their gRPC ports.
async fn readyz(State(state): State<AppState>) -> Response {
    let mut down = Vec::new();
    for (name, authority) in state.upstreams.iter() {
        let connect = tokio::net::TcpStream::connect(authority.as_str());
        match tokio::time::timeout(Duration::from_secs(2), connect).await {
            Ok(Ok(_)) => {}
            _ => down.push(name.as_str()),
        }
    }
    if down.is_empty() {
        "ready".into_response()
    } else {
        tracing::warn!(?down, "not ready");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("unavailable: {}", down.join(", ")),
        )
            .into_response()
    }
}

/// The gateway with its listener bound.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    router: Router,
    limits: Arc<Limits>,
}

/// `host:port` of an http(s) URL (port 80/443 when absent).
fn authority(url: &str) -> String {
    let uri: http::Uri = url.parse().unwrap_or_default();
    let host = uri.host().unwrap_or("127.0.0.1");
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    format!("{host}:{port}")
}

fn channel(tls: &TlsSettings, url: &str, key: &str, timeout: Duration) -> anyhow::Result<Channel> {
    Ok(tls
        .endpoint("gateway", key, url)?
        .connect_timeout(Duration::from_secs(3))
        .timeout(timeout)
        .tcp_nodelay(true)
        .connect_lazy())
}

impl Application {
    /// Binds the port (0 picks a free one); the services are connected on first use.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let timeout = Duration::from_millis(settings.upstream_timeout_ms);
        let identity = settings
            .identity
            .identity("gateway", "gateway", LeaseKey::NotHeld)?;
        let tls = &settings.tls;
        let user = channel(tls, &settings.user_url, "gateway.user_url", timeout)?;
        let project = channel(tls, &settings.project_url, "gateway.project_url", timeout)?;
        let jobs = channel(tls, &settings.ai_job_url, "gateway.ai_job_url", timeout)?;
        let state = AppState {
            user: UserServiceClient::new(identity.tokens(audience::USER).channel(user)),
            project: ProjectServiceClient::new(identity.tokens(audience::PROJECT).channel(project)),
            jobs: JobServiceClient::new(identity.tokens(audience::AI_JOB).channel(jobs)),
            verifier: Arc::new(JwksVerifier::new(settings.auth.clone())),
            limits: Arc::new(Limits::new(&settings.rate_limit)),
            timeout,
            upstreams: Arc::new(vec![
                ("user".to_owned(), authority(&settings.user_url)),
                ("project".to_owned(), authority(&settings.project_url)),
                ("ai-job".to_owned(), authority(&settings.ai_job_url)),
            ]),
        };
        let limits = state.limits.clone();
        let router = router(state, &settings);
        let listener = TcpListener::bind(&settings.http_addr)
            .await
            .with_context(|| format!("binding gateway.http_addr {}", settings.http_addr))?;
        Ok(Application {
            listener,
            router,
            limits,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    /// Serves until `shutdown` fires, then stops accepting and finishes in-flight requests.
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let addr = self.addr();
        let limits = self.limits.clone();
        let sweeper = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                limits.retain_recent();
            }
        });
        tracing::info!(%addr, "gateway listening");
        axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown.wait_owned())
        .await
        .context("gateway HTTP server")?;
        sweeper.abort();
        tracing::info!("gateway stopped");
        Ok(())
    }
}
