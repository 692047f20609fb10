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
    crate::tls::install_crypto_provider();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn url(sslmode: &str) -> DatabaseSettings {
        let base = std::env::var("STUDIO_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let joiner = if base.contains('?') { '&' } else { '?' };
        DatabaseSettings::new(format!("{base}{joiner}sslmode={sslmode}"))
    }

    /// `?sslmode=require` in a database URL encrypts the connection (rustls); `verify-full`
    /// also checks the server's certificate, so a self-signed one is refused (security review
    /// M10). The local Postgres serves TLS with Debian's self-signed certificate.
    #[tokio::test]
    async fn database_urls_can_require_tls_and_verify_the_server() {
        let pool = connect(&url("require"), "test.database").await.unwrap();
        let ssl: bool =
            sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert!(ssl, "the connection is encrypted");
        pool.close().await;
        let err = connect(&url("verify-full"), "test.database")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("test.database.url"), "{err}");
        assert!(err.to_lowercase().contains("certificate"), "{err}");
    }
}
