//! The server's log: `--log-format text` (the default, for a terminal) or
//! `json` (one object per line, for a log collector), filtered by
//! `RUST_LOG` (default `info`), on stderr.
//!
//! Every line written while serving a request names it: the formatter adds
//! `request_id` (the caller's `x-request-id`, else one the server made up),
//! read from the work's [`Cause`] at the moment the line is written — so no
//! span is made per request, and a request costs nothing until it logs.
//! A JSON line has `timestamp`, `level`, `target`, the event's fields
//! (`message` among them) at the top level, then `request_id`.

use std::fmt;

use serde::Deserialize;
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use crate::events::Cause;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the process's logger, writing `format` to `writer`. `extra` is
/// another layer of the same subscriber (the OTLP exporter's).
///
/// # Errors
/// When a logger is already installed.
pub fn init<W, L>(format: LogFormat, writer: W, extra: L) -> Result<(), String>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
    L: tracing_subscriber::Layer<
            tracing_subscriber::layer::Layered<EnvFilter, tracing_subscriber::Registry>,
        > + Send
        + Sync
        + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let subscriber = tracing_subscriber::registry().with(filter).with(extra);
    let result = match format {
        LogFormat::Text => subscriber
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(writer)
                    // Plain: a line that names its request is rewritten
                    // through a buffer, which cannot carry colours.
                    .with_ansi(false)
                    .event_format(WithRequestId {
                        inner: tracing_subscriber::fmt::format(),
                        json: false,
                    }),
            )
            .try_init(),
        LogFormat::Json => subscriber
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(writer)
                    .event_format(WithRequestId {
                        inner: tracing_subscriber::fmt::format()
                            .json()
                            .flatten_event(true)
                            .with_current_span(false)
                            .with_span_list(false),
                        json: true,
                    }),
            )
            .try_init(),
    };
    result.map_err(|error| error.to_string())
}

/// A line format that adds the current request's id to `inner`'s lines.
struct WithRequestId<F> {
    inner: F,
    json: bool,
}

impl<S, N, F> FormatEvent<S, N> for WithRequestId<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let Some(request_id) = Cause::current_request_id() else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let line = line.trim_end_matches('\n');
        if self.json {
            // `{…}` becomes `{…,"request_id":"…"}`.
            let Some(object) = line.strip_suffix('}') else {
                return writeln!(writer, "{line}");
            };
            let id = serde_json::to_string(&request_id).map_err(|_| fmt::Error)?;
            writeln!(writer, "{object},\"request_id\":{id}}}")
        } else {
            writeln!(writer, "{line} request_id={request_id}")
        }
    }
}
