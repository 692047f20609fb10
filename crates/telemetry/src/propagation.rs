//! W3C trace context in HTTP/2 headers (gRPC metadata is HTTP/2 headers): reading the caller's
//! `traceparent` into a span's parent, writing the current span's into an outgoing request.

use opentelemetry::propagation::{Extractor, Injector};
use tracing_opentelemetry::OpenTelemetrySpanExt;

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::header::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Sets `span`'s parent to the trace context in `headers`, if any.
pub fn extract_context(headers: &http::HeaderMap, span: &tracing::Span) {
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(headers))
    });
    let _ = span.set_parent(parent);
}

/// Writes the current span's trace context into `headers`.
pub fn inject_context(headers: &mut http::HeaderMap) {
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut HeaderInjector(headers))
    });
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
    use opentelemetry_sdk::propagation::TraceContextPropagator;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn trace_context_survives_a_hop_through_headers() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let caller = tracing::info_span!("caller");
            let mut headers = http::HeaderMap::new();
            let sent = caller.in_scope(|| {
                super::inject_context(&mut headers);
                tracing::Span::current()
                    .context()
                    .span()
                    .span_context()
                    .trace_id()
            });
            let traceparent = headers["traceparent"].to_str().unwrap().to_owned();
            assert!(traceparent.starts_with("00-"), "{traceparent}");
            assert!(traceparent.contains(&sent.to_string()));

            let callee = tracing::info_span!("callee");
            super::extract_context(&headers, &callee);
            let received = callee.context().span().span_context().trace_id();
            assert_eq!(received, sent, "the callee continues the caller's trace");
        });
    }
}
