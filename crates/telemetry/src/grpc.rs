//! gRPC telemetry: a server layer that continues the caller's trace and records
//! `grpc_server_requests_total{service,method,code}` and
//! `grpc_server_request_duration_seconds{service,method}`, and a client interceptor that sends the
//! current trace context.
//!
//! Labels stay bounded: a path no service answers (`UNIMPLEMENTED`) is counted as
//! `service="unknown", method="unknown"`, so a peer sending random paths cannot create metric
//! series (security review M10). Put the service-identity check outside this layer, so that
//! refused callers never reach it either.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tracing::Instrument;

/// Server layer: `tonic::transport::Server::builder().layer(TraceLayer)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceLayer;

impl<S> tower::Layer<S> for TraceLayer {
    type Service = TraceService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TraceService { inner }
    }
}

/// The service [`TraceLayer`] wraps around a gRPC router.
#[derive(Debug, Clone)]
pub struct TraceService<S> {
    inner: S,
}

impl<S, B, R> tower::Service<http::Request<B>> for TraceService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // Take the service that was driven to readiness, leave a fresh clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let path = request.uri().path().trim_start_matches('/');
        let (service, method) = path.split_once('/').unwrap_or((path, ""));
        let (service, method) = (service.to_owned(), method.to_owned());
        let span = tracing::info_span!(
            "grpc",
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            rpc.grpc.status_code = tracing::field::Empty,
        );
        crate::extract_context(request.headers(), &span);
        let started = Instant::now();
        Box::pin(
            async move {
                let result = inner.call(request).await;
                let code = match &result {
                    // Unary errors come back as trailers-only responses: the status is a header.
                    Ok(response) => response
                        .headers()
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<i32>().ok())
                        .unwrap_or(0),
                    Err(_) => tonic::Code::Unknown as i32,
                };
                let code_name = format!("{:?}", tonic::Code::from_i32(code));
                tracing::Span::current().record("rpc.grpc.status_code", code);
                let (service, method) = if code == tonic::Code::Unimplemented as i32 {
                    ("unknown".to_owned(), "unknown".to_owned())
                } else {
                    (service, method)
                };
                metrics::counter!(
                    "grpc_server_requests_total",
                    "service" => service.clone(),
                    "method" => method.clone(),
                    "code" => code_name,
                )
                .increment(1);
                metrics::histogram!(
                    "grpc_server_request_duration_seconds",
                    "service" => service,
                    "method" => method,
                )
                .record(started.elapsed().as_secs_f64());
                result
            }
            .instrument(span),
        )
    }
}

/// Client interceptor: writes the current span's W3C trace context into the request metadata.
/// Use with `XxxClient::with_interceptor(channel, studio_telemetry::grpc::inject)`.
#[allow(clippy::result_large_err)]
pub fn inject(mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
    let mut headers = std::mem::take(request.metadata_mut()).into_headers();
    crate::inject_context(&mut headers);
    *request.metadata_mut() = tonic::metadata::MetadataMap::from_headers(headers);
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{Layer as _, Service as _, ServiceExt as _};

    /// A router that answers one method and `UNIMPLEMENTED` to every other path, as tonic's does.
    fn router(
        request: http::Request<()>,
    ) -> std::future::Ready<Result<http::Response<()>, std::convert::Infallible>> {
        let code = if request.uri().path() == "/studio.user.v1.UserService/GetMe" {
            "0"
        } else {
            "12"
        };
        let mut response = http::Response::new(());
        response
            .headers_mut()
            .insert("grpc-status", http::HeaderValue::from_static(code));
        std::future::ready(Ok(response))
    }

    #[test]
    fn random_paths_do_not_make_metric_series() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        metrics::with_local_recorder(&recorder, || {
            runtime.block_on(async {
                let mut service = TraceLayer.layer(tower::service_fn(router));
                for i in 0..1000 {
                    let path = if i % 100 == 0 {
                        "/studio.user.v1.UserService/GetMe".to_owned()
                    } else {
                        format!("/random.{i}.Service/Method{i}")
                    };
                    let request = http::Request::builder().uri(path).body(()).unwrap();
                    service.ready().await.unwrap().call(request).await.unwrap();
                }
            })
        });
        let rendered = handle.render();
        let services: std::collections::BTreeSet<&str> = rendered
            .lines()
            .filter(|l| l.starts_with("grpc_server_requests_total{"))
            .filter_map(|l| l.split("service=\"").nth(1))
            .filter_map(|rest| rest.split('"').next())
            .collect();
        assert_eq!(
            services,
            ["studio.user.v1.UserService", "unknown"].into(),
            "{rendered}"
        );
    }
}
