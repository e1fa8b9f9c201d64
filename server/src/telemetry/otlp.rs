//! Traces over OTLP/gRPC (the `otlp` feature, `--otlp-endpoint`).
//!
//! Each call gets a server span named by its method, continuing the trace
//! of the caller's W3C `traceparent` when it sends one; what the call does
//! (store writes, a module run's start) happens inside it. The span's own
//! `traceparent` is what exec modules get (`TRACEPARENT`) and what a call
//! forwarded to another replica carries, so that their spans are its
//! children. Spans are batched and exported in the background; the last
//! ones are flushed when the server stops ([`shutdown`]).

use std::sync::OnceLock;

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::registry::LookupSpan;

/// The exporter, once traces are on.
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// The layer that turns spans into OTLP spans sent to `endpoint`
/// (`http://HOST:4317`). Must be called inside a tokio runtime (the gRPC
/// exporter's).
///
/// # Errors
/// When the exporter cannot be built from `endpoint`.
pub fn layer<S>(endpoint: &str) -> Result<impl tracing_subscriber::Layer<S>, String>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|error| format!("--otlp-endpoint {endpoint}: {error}"))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name("sessiond").build())
        .build();
    let tracer = provider.tracer("sessiond");
    PROVIDER
        .set(provider)
        .map_err(|_| "traces are already exported".to_owned())?;
    Ok(tracing_opentelemetry::layer().with_tracer(tracer))
}

/// Whether traces are exported.
pub fn enabled() -> bool {
    PROVIDER.get().is_some()
}

/// Exports the spans not sent yet, and stops the exporter.
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get()
        && let Err(error) = provider.shutdown()
    {
        eprintln!("sessiond: exporting the last traces failed: {error}");
    }
}

/// The span of a call to `path` whose request has `headers`.
pub fn call_span(path: &str, headers: &http::HeaderMap) -> tracing::Span {
    let (service, method) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or(("unknown", "unknown"));
    let span = tracing::info_span!(
        "grpc.call",
        otel.name = path.trim_start_matches('/'),
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
    );
    let parent = TraceContextPropagator::new().extract(&Headers(headers));
    let _ = span.set_parent(parent);
    span
}

/// The W3C `traceparent` of the current span, when it is traced.
pub fn current_traceparent() -> Option<String> {
    if !enabled() {
        return None;
    }
    let context = tracing::Span::current().context();
    let span = context.span();
    let span = span.span_context();
    span.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            span.trace_id(),
            span.span_id(),
            span.trace_flags().to_u8()
        )
    })
}

/// Request headers, as the propagator reads them.
struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}
