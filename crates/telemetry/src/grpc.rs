//! gRPC telemetry: a server layer that continues the caller's trace and records
//! `grpc_server_requests_total{service,method,code}` and
//! `grpc_server_request_duration_seconds{service,method}`, and a client interceptor that sends the
//! current trace context.

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
