//! What sessiond tells its operators: its log ([`logging`], written
//! through [`output`]), the lines and
//! counters of every committed change ([`changes`]), and, with the `otlp`
//! feature, traces exported over OTLP ([`otlp`]). The metrics themselves
//! are in [`crate::metrics`].

pub mod changes;
pub mod logging;
#[cfg(feature = "otlp")]
pub mod otlp;
pub mod output;

use std::future::Future;

use crate::config::Config;
use crate::events::Cause;

/// What [`init`] set up; dropping it flushes the log (and the last traces).
#[derive(Debug)]
#[must_use]
pub struct Telemetry {
    log: output::LogOutput,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.log.flush();
        #[cfg(feature = "otlp")]
        otlp::shutdown();
    }
}

/// Installs the process's logger as `config` says, on stderr (and, with
/// `otlp`, the trace exporter). Call inside the tokio runtime.
///
/// # Errors
/// A message naming the setting that cannot be used.
pub fn init(config: &Config) -> Result<Telemetry, String> {
    init_writing_to(config, std::io::stderr())
}

/// [`init`], with the log written to `output` instead of stderr.
///
/// # Errors
/// As [`init`].
pub fn init_writing_to(
    config: &Config,
    output: impl std::io::Write + Send + 'static,
) -> Result<Telemetry, String> {
    let writer = output::LogOutput::new(output);
    let log = writer.clone();
    match &config.otlp_endpoint {
        None => logging::init(
            config.log_format,
            writer,
            tracing_subscriber::layer::Identity::new(),
        )?,
        #[cfg(feature = "otlp")]
        Some(endpoint) => logging::init(config.log_format, writer, otlp::layer(endpoint)?)?,
        #[cfg(not(feature = "otlp"))]
        Some(_) => {
            return Err(
                "--otlp-endpoint: this sessiond was built without the `otlp` feature \
                 (cargo build --features otlp)"
                    .to_owned(),
            );
        }
    }
    Ok(Telemetry { log })
}

/// The span of a call to `path` with request `headers`, when traces are
/// exported (else none is made: a call costs nothing here).
#[must_use]
pub fn call_span(path: &str, headers: &http::HeaderMap) -> Option<tracing::Span> {
    #[cfg(feature = "otlp")]
    if otlp::enabled() {
        return Some(otlp::call_span(path, headers));
    }
    let _ = (path, headers);
    None
}

/// `work` inside `span`, when there is one.
pub fn traced<F: Future>(
    span: Option<tracing::Span>,
    work: F,
) -> futures::future::Either<F, tracing::instrument::Instrumented<F>> {
    use tracing::Instrument;
    match span {
        Some(span) => futures::future::Either::Right(work.instrument(span)),
        None => futures::future::Either::Left(work),
    }
}

/// The W3C `traceparent` to hand on (to a module, to another replica): the
/// current span's when traces are exported, else the caller's own.
#[must_use]
pub fn outgoing_traceparent() -> Option<String> {
    #[cfg(feature = "otlp")]
    if let Some(traceparent) = otlp::current_traceparent() {
        return Some(traceparent);
    }
    Cause::current().traceparent.clone()
}
