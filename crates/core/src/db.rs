//! Postgres for services: the connection pool built from [`DatabaseSettings`], and the probes every
//! service serves on its HTTP port (`/healthz`: the process answers; `/readyz`: Postgres answers).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use crate::settings::DatabaseSettings;

/// Why the pool could not be built; names the settings key.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{key}.url is not a valid postgres URL: {source}")]
    Url { key: String, source: sqlx::Error },
    #[error("connecting to postgres ({key}.url): {source}")]
    Connect { key: String, source: sqlx::Error },
}

/// Connects a pool with the settings under `key` (e.g. `user.database`).
pub async fn connect(settings: &DatabaseSettings, key: &str) -> Result<PgPool, DbError> {
    let options: PgConnectOptions =
        settings
            .url
            .expose_secret()
            .parse()
            .map_err(|source| DbError::Url {
                key: key.to_owned(),
                source,
            })?;
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(Duration::from_secs(settings.acquire_timeout_s))
        .connect_with(options)
        .await
        .map_err(|source| DbError::Connect {
            key: key.to_owned(),
            source,
        })
}

/// `GET /healthz` and `GET /readyz` (503 while Postgres does not answer).
pub fn probes<S: Clone + Send + Sync + 'static>(pool: PgPool) -> Router<S> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz).with_state(pool))
}

async fn readyz(State(pool): State<PgPool>) -> Response {
    match sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(&pool)
        .await
    {
        Ok(_) => "ready".into_response(),
        Err(err) => {
            tracing::warn!(error = %err, "not ready: postgres");
            (StatusCode::SERVICE_UNAVAILABLE, "postgres unavailable").into_response()
        }
    }
}
