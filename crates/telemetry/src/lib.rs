//! Telemetry for every Studio service, set up once by [`init`]:
//!
//! - **logs**: `tracing` with human-readable lines in development and JSON in production
//!   (`STUDIO_ENV=production` or `telemetry.json = true`), filtered by `telemetry.log_filter`
//!   (`RUST_LOG` syntax);
//! - **traces**: OpenTelemetry spans exported over OTLP/gRPC when `telemetry.otlp_endpoint` is set;
//!   W3C trace context (`traceparent`, `tracestate`) is read from incoming gRPC/HTTP headers by
//!   [`grpc::TraceLayer`] and written to outgoing gRPC calls by [`grpc::inject`];
//! - **metrics**: a Prometheus registry ([`metrics_handle`]) served at `/metrics` by
//!   [`http::metrics_router`], with request counts and latency histograms per route/method and
//!   status from [`http::track`] (REST) and [`grpc::TraceLayer`] (gRPC).
//!
//! [`TelemetryGuard::shutdown`] flushes the span exporter; call it after the servers stop.

pub mod grpc;
pub mod http;
mod propagation;

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde::Deserialize;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

pub use propagation::{extract_context, inject_context};

/// The `[telemetry]` settings section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySettings {
    /// Log filter in `RUST_LOG` syntax. Default `info`; `RUST_LOG` overrides it.
    pub log_filter: String,
    /// JSON log lines; when unset, JSON in production only.
    pub json: Option<bool>,
    /// OTLP/gRPC collector endpoint, e.g. `http://otel-collector:4317`; no export when unset.
    pub otlp_endpoint: Option<String>,
    /// Fraction of root traces sampled, 0.0..=1.0. Default 1.0.
    pub sample_ratio: f64,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        TelemetrySettings {
            log_filter: "info".to_owned(),
            json: None,
            otlp_endpoint: None,
            sample_ratio: 1.0,
        }
    }
}

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("telemetry.log_filter: {0}")]
    Filter(String),
    #[error("telemetry.otlp_endpoint: {0}")]
    Otlp(String),
    #[error("telemetry.sample_ratio: must be between 0.0 and 1.0, got {0}")]
    SampleRatio(f64),
}

/// Flushes exporters on [`TelemetryGuard::shutdown`] (and on drop, as a last resort).
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Exports spans still buffered and stops the exporter.
    pub fn shutdown(mut self) {
        if let Some(provider) = self.provider.take() {
            if let Err(err) = provider.shutdown() {
                eprintln!("telemetry: flushing spans failed: {err}");
            }
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Sets up logs, traces and metrics for `service` (its `service.name` in traces). Call once, inside
/// a Tokio runtime, before building the app. A second call in the same process (tests that start
/// several services) keeps the first subscriber and returns a guard with nothing to flush.
///
/// Errors: a bad log filter, sample ratio or OTLP endpoint.
pub fn init(service: &str, settings: &TelemetrySettings) -> Result<TelemetryGuard, TelemetryError> {
    if !(0.0..=1.0).contains(&settings.sample_ratio) {
        return Err(TelemetryError::SampleRatio(settings.sample_ratio));
    }
    let filter = match std::env::var("RUST_LOG") {
        Ok(filter) => EnvFilter::try_new(filter),
        Err(_) => EnvFilter::try_new(&settings.log_filter),
    }
    .map_err(|e| TelemetryError::Filter(e.to_string()))?;
    let json = settings
        .json
        .unwrap_or_else(|| std::env::var("STUDIO_ENV").is_ok_and(|e| e == "production"));

    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let provider = match &settings.otlp_endpoint {
        Some(endpoint) => Some(otlp_provider(service, endpoint, settings.sample_ratio)?),
        None => None,
    };

    let fmt = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer().compact().boxed()
    };
    let otel = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer().with_tracer(provider.tracer(service.to_owned()))
    });
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()
        .is_ok();
    metrics_handle();
    if installed {
        if let Some(provider) = &provider {
            opentelemetry::global::set_tracer_provider(provider.clone());
        }
        tracing::info!(
            service,
            json,
            otlp = settings.otlp_endpoint.is_some(),
            "telemetry ready"
        );
        Ok(TelemetryGuard { provider })
    } else {
        Ok(TelemetryGuard { provider: None })
    }
}

fn otlp_provider(
    service: &str,
    endpoint: &str,
    ratio: f64,
) -> Result<SdkTracerProvider, TelemetryError> {
    use opentelemetry_otlp::WithExportConfig;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|e| TelemetryError::Otlp(e.to_string()))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service.to_owned())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(opentelemetry_sdk::trace::Sampler::ParentBased(Box::new(
            opentelemetry_sdk::trace::Sampler::TraceIdRatioBased(ratio),
        )))
        .with_resource(resource)
        .build())
}

/// Latency histogram buckets in seconds: 1 ms to 10 s.
const LATENCY_BUCKETS_S: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process-wide Prometheus registry, installed as the `metrics` recorder on first use. Metric
/// names ending in `_seconds` are histograms with [`LATENCY_BUCKETS_S`].
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS_S)
            .expect("latency buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may be installed already (a test harness); ours still renders.
        let _ = metrics::set_global_recorder(recorder);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let upkeep = handle.clone();
            runtime.spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
                loop {
                    tick.tick().await;
                    upkeep.run_upkeep();
                }
            });
        }
        handle
    })
}
