//! The service's HTTP port: the JWKS document for verifiers, health probes and metrics.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::service::UserService;

/// `GET /.well-known/jwks.json`, `/healthz`, `/readyz`, `/metrics`.
pub fn router(service: UserService, pool: sqlx::PgPool) -> Router {
    let routes = Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .with_state(service)
        .merge(studio_core::db::probes(pool));
    studio_telemetry::http::ops_router(routes)
}

async fn jwks(State(service): State<UserService>) -> Response {
    match service.jwks().await {
        // Verifiers cache the keys; a short max-age bounds how long a rotation takes to reach them.
        Ok(set) => (
            [(axum::http::header::CACHE_CONTROL, "public, max-age=60")],
            Json(set),
        )
            .into_response(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}
