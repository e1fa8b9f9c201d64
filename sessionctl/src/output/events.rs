//! Events as records (every field of the contract's `Event`, in its order),
//! the lines of a watch, and the ledger's verification and checkpoint.
//!
//! Enums are spelled as everywhere in sessionctl's output
//! (`session_ended`, `closed_by_client`), `null` when unset. In JSON, unset
//! ids are 0 and unset strings empty, as the contract carries them; a
//! snapshot's `session` is the session's record (else `null`); hashes are
//! lowercase hex. Tables show `-` for what is unset, and a `detail` column
//! with the fields that only some kinds have.

use std::io::{self, Write};

use serde_json::{Value, json};
use sessiond_client::{Checkpoint, Event, LedgerHash, LedgerVerification, WatchEvent};

use super::table::{listing_cell, pad};
use super::{Record, cell, enum_name, json_line, json_object, session, time};
use crate::args::OutputFormat;

/// The columns of an event table.
pub const EVENT_COLUMNS: &[&str] = &[
    "revision",
    "time",
    "kind",
    "session_id",
    "user",
    "effective_user",
    "subject",
    "detail",
];

/// The width a watch's table gives each of [`EVENT_COLUMNS`] (it cannot
/// measure rows it has not received; longer values, up to
/// [`MAX_CELL_WIDTH`](super::table::MAX_CELL_WIDTH), push the rest right).
const WATCH_WIDTHS: [usize; 8] = [8, 27, 25, 10, 12, 14, 16, 0];

/// An event as a record, under the contract's field names; tables get a
/// `detail` field instead of the kind-specific ones, and no `session`.
pub fn event(format: OutputFormat, e: &Event) -> Record {
    let json = format == OutputFormat::Json;
    let id = |id: Option<i64>| match (id, json) {
        (Some(id), _) => json!(id),
        (None, true) => json!(0),
        (None, false) => Value::Null,
    };
    let text = |text: &str| {
        if text.is_empty() && !json {
            Value::Null
        } else {
            json!(text)
        }
    };
    let hash = |hash: Option<LedgerHash>| hash.map_or_else(|| text(""), |h| json!(h.to_string()));
    let mut record = vec![
        ("revision", json!(e.revision)),
        ("time", time(e.time)),
        ("kind", enum_name(Some(e.kind.name()))),
        ("session_id", id(e.session_id.map(|s| s.get()))),
        (
            "session_uuid",
            e.session_uuid
                .map_or_else(|| text(""), |u| json!(u.to_string())),
        ),
        ("user", text(&e.user)),
        ("effective_user", text(&e.effective_user)),
        ("subject", text(&e.subject)),
        (
            "authentication_method",
            enum_name(e.authentication_method.map(|m| m.name())),
        ),
        ("peer", text(&e.peer)),
        ("run_id", id(e.run_id.map(|r| r.get()))),
        ("module_id", text(&e.module_id)),
        ("end_reason", enum_name(e.end_reason.map(|r| r.name()))),
        ("run_state", enum_name(e.run_state.map(|s| s.name()))),
        ("failure_kind", enum_name(e.failure_kind.map(|k| k.name()))),
        ("request_id", text(&e.request_id)),
        ("traceparent", text(&e.traceparent)),
        ("scope_id", id(e.scope_id.map(|s| s.get()))),
        ("method", text(&e.method)),
        ("error_reason", text(&e.error_reason)),
    ];
    if json {
        record.push(("session", Value::Null));
    }
    record.push(("prev_hash", hash(e.prev_hash)));
    record.push(("hash", hash(e.hash)));
    if !json {
        record.push(("detail", detail(&record)));
    }
    record
}

/// The kind-specific fields that are set, as `name=value` pairs.
fn detail(record: &Record) -> Value {
    const SOME_KINDS_ONLY: [&str; 8] = [
        "run_id",
        "module_id",
        "run_state",
        "failure_kind",
        "end_reason",
        "scope_id",
        "method",
        "error_reason",
    ];
    let pairs: Vec<String> = record
        .iter()
        .filter(|(key, value)| SOME_KINDS_ONLY.contains(key) && !value.is_null())
        .map(|(key, value)| format!("{key}={}", cell(value)))
        .collect();
    if pairs.is_empty() {
        Value::Null
    } else {
        json!(pairs.join(" "))
    }
}

/// An event as one JSON object: every field in the contract's order, a
/// snapshot's session record nested in its order too.
pub fn event_json(e: &Event) -> String {
    let session = e
        .session
        .as_ref()
        .map_or_else(|| "null".to_owned(), |s| json_line(&session(s)));
    json_object(
        event(OutputFormat::Json, e)
            .into_iter()
            .map(|(key, value)| {
                let value = if key == "session" {
                    session.clone()
                } else {
                    value.to_string()
                };
                (key, value)
            }),
    )
}

/// Prints events: JSON lines, or a table.
pub fn events(format: OutputFormat, events: &[Event]) -> io::Result<()> {
    match format {
        OutputFormat::Json => {
            let mut out = io::stdout().lock();
            events
                .iter()
                .try_for_each(|e| writeln!(out, "{}", event_json(e)))
        }
        OutputFormat::Table => {
            let records: Vec<Record> = events.iter().map(|e| event(format, e)).collect();
            super::many(format, &records, EVENT_COLUMNS)
        }
    }
}

/// Prints a watch's items as they come, one line each: in JSON, the
/// contract's `WatchSessionsResponse` (`{"event":{…}}`,
/// `{"progress":{"revision":N}}`, `{"initial_state_end":{"revision":N}}`);
/// as a table, under a header, progress as kind `progress` and the initial
/// state's end as kind `initial_state_end`.
#[derive(Debug)]
pub struct WatchPrinter {
    format: OutputFormat,
    /// Whether the table's header was printed.
    header_printed: bool,
}

impl WatchPrinter {
    /// A printer of `format`.
    pub fn new(format: OutputFormat) -> Self {
        Self {
            format,
            header_printed: false,
        }
    }

    /// Prints one item (and, before the first row of a table, the header).
    pub fn print(&mut self, item: &WatchEvent) -> io::Result<()> {
        let mut out = io::stdout().lock();
        if self.format == OutputFormat::Json {
            let line = match item {
                WatchEvent::Event(e) => json_object([("event", event_json(e))]),
                WatchEvent::Progress(revision) => {
                    json_object([("progress", json_line(&vec![("revision", json!(revision))]))])
                }
                WatchEvent::InitialStateEnd(revision) => json_object([(
                    "initial_state_end",
                    json_line(&vec![("revision", json!(revision))]),
                )]),
            };
            return writeln!(out, "{line}");
        }
        if !self.header_printed {
            let header: Vec<String> = EVENT_COLUMNS.iter().map(|c| c.to_uppercase()).collect();
            writeln!(out, "{}", aligned(&header))?;
            self.header_printed = true;
        }
        let cells: Vec<String> = match item {
            WatchEvent::Event(e) => {
                let record = event(self.format, e);
                EVENT_COLUMNS
                    .iter()
                    .map(|column| {
                        record
                            .iter()
                            .find(|(key, _)| key == column)
                            .map_or_else(|| "-".to_owned(), |(_, value)| cell(value))
                    })
                    .collect()
            }
            WatchEvent::Progress(revision) => marker(*revision, "progress"),
            WatchEvent::InitialStateEnd(revision) => marker(*revision, "initial_state_end"),
        };
        writeln!(out, "{}", aligned(&cells))
    }
}

/// A table row for a revision marker: the revision and what it marks.
fn marker(revision: i64, kind: &str) -> Vec<String> {
    let mut cells = vec!["-".to_owned(); EVENT_COLUMNS.len()];
    cells[0] = revision.to_string();
    cells[2] = kind.to_owned();
    cells
}

/// Cells (but the last) cut to [`MAX_CELL_WIDTH`](super::table::MAX_CELL_WIDTH)
/// and padded to [`WATCH_WIDTHS`] (by display width), two spaces apart.
fn aligned(cells: &[String]) -> String {
    let padded: Vec<String> = cells
        .iter()
        .zip(WATCH_WIDTHS)
        .enumerate()
        .map(|(i, (text, width))| pad(&listing_cell(text, i + 1 == cells.len()), width))
        .collect();
    padded.join("  ").trim_end().to_owned()
}

/// A ledger verification, under the contract's field names
/// (`VerifyLedgerResponse`).
pub fn verification(v: &LedgerVerification) -> Record {
    let (first_bad_revision, problem) = v
        .first_bad
        .as_ref()
        .map_or((0, ""), |fault| (fault.revision, fault.problem.as_str()));
    vec![
        ("ok", json!(v.is_ok())),
        ("verified_events", json!(v.verified_events)),
        ("first_bad_revision", json!(first_bad_revision)),
        ("head_revision", json!(v.head_revision)),
        ("head_hash", json!(v.head_hash.to_string())),
        ("problem", json!(problem)),
    ]
}

/// A checkpoint, under the contract's field names
/// (`GetCheckpointResponse`).
pub fn checkpoint(c: &Checkpoint) -> Record {
    vec![
        ("head_revision", json!(c.head_revision)),
        ("head_hash", json!(c.head_hash.to_string())),
        ("compact_revision", json!(c.compact_revision)),
        ("compact_hash", json!(c.compact_hash.to_string())),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_cells_line_up_and_long_ones_push_the_rest() {
        let header: Vec<String> = EVENT_COLUMNS.iter().map(|c| c.to_uppercase()).collect();
        let row = marker(12, "progress");
        let (header, row) = (aligned(&header), aligned(&row));
        assert_eq!(header.find("TIME"), row.find('-'));
        assert_eq!(header.find("KIND"), row.find("progress"));
        assert!(row.starts_with("12 "), "{row}");
    }

    #[test]
    fn the_detail_names_only_the_kind_specific_fields_set() {
        let record: Record = vec![
            ("revision", json!(4)),
            ("module_id", json!("100000")),
            ("run_state", json!("succeeded")),
            ("end_reason", Value::Null),
            ("error_reason", Value::Null),
        ];
        assert_eq!(
            detail(&record),
            json!("module_id=100000 run_state=succeeded")
        );
    }
}
