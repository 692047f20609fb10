//! HTTP telemetry: a middleware that records `http_server_requests_total{method,route,status}`,
//! `http_server_request_duration_seconds{method,route}` and the gauge
//! `http_server_requests_in_flight` per matched route (never the raw path, so
//! ids do not explode the label set), and the `/metrics` route in Prometheus text format.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// Middleware for `axum::middleware::from_fn(track)`; continues the caller's trace too.
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let span = tracing::info_span!(
        "http",
        otel.kind = "server",
        http.request.method = %method,
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
    );
    crate::extract_context(request.headers(), &span);
    let in_flight = metrics::gauge!("http_server_requests_in_flight");
    in_flight.increment(1.0);
    let response = {
        use tracing::Instrument;
        next.run(request).instrument(span.clone()).await
    };
    in_flight.decrement(1.0);
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    metrics::counter!(
        "http_server_requests_total",
        "method" => method.clone(),
        "route" => route.clone(),
        "status" => status.to_string(),
    )
    .increment(1);
    metrics::histogram!(
        "http_server_request_duration_seconds",
        "method" => method,
        "route" => route,
    )
    .record(started.elapsed().as_secs_f64());
    response
}

/// The operations router of a service: `routes` (at least its `/healthz` and `/readyz` probes,
/// as `studio_core::db::probes` builds them for a service on Postgres) plus `GET /metrics`, with
/// request metrics and spans on every route ([`track`]).
pub fn ops_router(routes: Router) -> Router {
    routes
        .merge(metrics_router())
        .layer(axum::middleware::from_fn(track))
}

/// A router serving `GET /metrics` from the process registry.
pub fn metrics_router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/metrics", get(render))
}

async fn render() -> impl IntoResponse {
    (
        [(
            http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics_handle().render(),
    )
}
