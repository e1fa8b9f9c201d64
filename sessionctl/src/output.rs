//! Printing results: one JSON object per line, or a table.
//!
//! A [`Record`] keeps its fields in the contract's order and under the
//! contract's names; JSON output writes them as they are, tables show
//! strings bare, `-` for what is empty (`null`, `""`) and other values as
//! compact JSON. Enum values are spelled alike in both: the contract's
//! names in lower case without their type's prefix (`closed_by_client`,
//! as the command line takes them), and `null` / `-` when unset.
//! Listings line their columns up by display width ([`table`]).

use std::io::{self, Write};
use std::time::SystemTime;

use serde_json::{Value, json};
use sessiond_client::{
    AccessDecision, ModuleRun, PoppedScope, PushedScope, ScopeId, SessionId, SessionInfo,
    UserContext, WhoAmI,
};

pub use self::events::{WatchPrinter, checkpoint, event_json, events, verification};

mod events;
mod table;

use crate::args::OutputFormat;

/// One result: named fields, in order.
pub type Record = Vec<(&'static str, Value)>;

/// Prints one record: a JSON line, or a two-column "field value" table.
pub fn one(format: OutputFormat, record: &Record) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match format {
        OutputFormat::Json => writeln!(out, "{}", json_line(record)),
        OutputFormat::Table => {
            let width = record.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
            for (key, value) in record {
                writeln!(out, "{key:<width$}  {}", cell(value))?;
            }
            Ok(())
        }
    }
}

/// Prints many records: JSON lines, or a table with a header row showing
/// the `columns` (field names) given, cells cut to
/// [`table::MAX_CELL_WIDTH`].
pub fn many(format: OutputFormat, records: &[Record], columns: &[&'static str]) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match format {
        OutputFormat::Json => {
            for record in records {
                writeln!(out, "{}", json_line(record))?;
            }
            Ok(())
        }
        OutputFormat::Table => {
            let header: Vec<String> = columns.iter().map(|c| c.to_uppercase()).collect();
            let rows: Vec<Vec<String>> = std::iter::once(header)
                .chain(records.iter().map(|record| cells(record, columns)))
                .collect();
            for line in table::lines(&rows) {
                writeln!(out, "{line}")?;
            }
            Ok(())
        }
    }
}

/// A record as one JSON object, fields in order.
fn json_line(record: &Record) -> String {
    json_object(record.iter().map(|(key, value)| (*key, value.to_string())))
}

/// One JSON object of fields whose values are JSON text already (so that
/// nested records keep their order too).
fn json_object<'a>(fields: impl IntoIterator<Item = (&'a str, String)>) -> String {
    let fields: Vec<String> = fields
        .into_iter()
        .map(|(key, value)| format!("{}:{value}", Value::from(key)))
        .collect();
    format!("{{{}}}", fields.join(","))
}

/// The cells of `record` under `columns` (`-` for a field it lacks).
fn cells(record: &Record, columns: &[&str]) -> Vec<String> {
    columns
        .iter()
        .map(|column| {
            record
                .iter()
                .find(|(k, _)| k == column)
                .map_or_else(|| "-".to_owned(), |(_, v)| cell(v))
        })
        .collect()
}

/// A value as a table shows it: `-` for `null` and `""`, strings bare
/// (line breaks and tabs as spaces), anything else as compact JSON.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(s) if s.is_empty() => "-".to_owned(),
        Value::String(s) => s.replace(['\n', '\r', '\t'], " "),
        other => other.to_string(),
    }
}

/// An enum's value as the output spells it: its short name (the
/// contract's name in lower case, without the type's prefix), `null` when
/// unset.
fn enum_name(name: Option<&'static str>) -> Value {
    name.map_or(Value::Null, |name| json!(name))
}

/// A time as RFC 3339 (UTC), as protobuf's JSON mapping writes timestamps.
pub fn time(t: SystemTime) -> Value {
    Value::String(humantime::format_rfc3339_micros(t).to_string())
}

/// A session's record, under the contract's field names; an open
/// session's `end_time` and `end_reason` are `null`.
pub fn session(info: &SessionInfo) -> Record {
    vec![
        ("session_id", json!(info.session_id.get())),
        ("session_uuid", json!(info.session_uuid.to_string())),
        ("user", json!(info.user)),
        ("kind", enum_name(Some(info.kind.name()))),
        ("state", enum_name(Some(info.state.name()))),
        ("start_time", time(info.start_time)),
        ("end_time", info.end_time.map_or(Value::Null, time)),
        ("last_activity_time", time(info.last_activity_time)),
        ("end_reason", enum_name(info.end_reason.map(|r| r.name()))),
        ("effective_user", json!(info.effective_user)),
        ("client", json!(info.client)),
        ("user_context_depth", json!(info.user_context_depth)),
        ("owner_node", json!(info.owner_node)),
    ]
}

/// The columns of a session listing's table.
pub const SESSION_COLUMNS: &[&str] = &[
    "session_id",
    "user",
    "kind",
    "state",
    "start_time",
    "end_time",
    "end_reason",
    "effective_user",
];

/// A session's user context, under the contract's field names.
pub fn user_context(session_id: SessionId, context: &UserContext) -> Record {
    vec![
        ("session_id", json!(session_id.get())),
        ("user", json!(context.user)),
        ("session_user", json!(context.session_user)),
        ("depth", json!(context.depth)),
    ]
}

/// A scope `push` opened: the session, the scope's id (for `pop`), the
/// user it acts as, and the contract's `PushUserContextResponse` fields.
pub fn pushed_scope(session_id: SessionId, user: &str, scope: &PushedScope) -> Record {
    vec![
        ("session_id", json!(session_id.get())),
        ("scope_id", json!(scope.scope_id.get())),
        ("user", json!(user)),
        ("previous_user", json!(scope.previous_user)),
        ("depth", json!(scope.depth)),
    ]
}

/// A scope `pop` closed: the session, the scope, and the contract's
/// `PopUserContextResponse` fields (the user context restored, the depth
/// left).
pub fn popped_scope(session_id: SessionId, scope_id: ScopeId, popped: &PoppedScope) -> Record {
    vec![
        ("session_id", json!(session_id.get())),
        ("scope_id", json!(scope_id.get())),
        ("user", json!(popped.user)),
        ("depth", json!(popped.depth)),
    ]
}

/// A run `open-module` started: the session, the module, and the
/// contract's `OpenModuleResponse` fields.
pub fn module_run(session_id: SessionId, module_id: &str, run: &ModuleRun) -> Record {
    vec![
        ("session_id", json!(session_id.get())),
        ("module_id", json!(module_id)),
        ("run_id", json!(run.run_id.get())),
        ("state", enum_name(Some(run.state.name()))),
        ("start_time", time(run.start_time)),
        ("acting_user", json!(run.acting_user)),
    ]
}

/// A module's return value (`run`, `value`), with where it came from.
pub fn module_value(session_id: SessionId, module_id: &str, value: Value) -> Record {
    vec![
        ("session_id", json!(session_id.get())),
        ("module_id", json!(module_id)),
        ("value", value),
    ]
}

/// Who the server takes the caller to be, under the contract's field names
/// (`WhoAmIResponse`): groups are a list in JSON and comma-separated in
/// tables; `session_id` (a module run's credential only) is `null` / `-`
/// otherwise.
pub fn who_am_i(format: OutputFormat, me: &WhoAmI) -> Record {
    let groups = match format {
        OutputFormat::Json => json!(me.groups),
        OutputFormat::Table => json!(me.groups.join(", ")),
    };
    vec![
        ("subject", json!(me.subject)),
        ("groups", groups),
        ("method", enum_name(Some(me.method.name()))),
        (
            "session_id",
            me.session_id.map_or(Value::Null, |id| json!(id.get())),
        ),
    ]
}

/// Prints an access decision: `yes`, or `no: REASON` (`no` without a
/// reason), like `kubectl auth can-i`; in JSON, the contract's
/// `CheckAccessResponse` (`allowed`, `reason`).
pub fn decision(format: OutputFormat, decision: &AccessDecision) -> io::Result<()> {
    match format {
        OutputFormat::Json => one(
            format,
            &vec![
                ("allowed", json!(decision.allowed)),
                ("reason", json!(decision.reason)),
            ],
        ),
        OutputFormat::Table => {
            let mut out = io::stdout().lock();
            match (decision.allowed, decision.reason.as_str()) {
                (true, _) => writeln!(out, "yes"),
                (false, "") => writeln!(out, "no"),
                (false, reason) => writeln!(out, "no: {}", reason.replace('\n', " ")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_keep_field_order_and_escape_properly() {
        let record: Record = vec![
            ("session_id", json!(7)),
            ("user", json!("R\"41")),
            ("end_time", Value::Null),
        ];
        assert_eq!(
            json_line(&record),
            r#"{"session_id":7,"user":"R\"41","end_time":null}"#
        );
        let parsed: Value = serde_json::from_str(&json_line(&record)).unwrap();
        assert_eq!(parsed["user"], "R\"41");
    }

    #[test]
    fn cells_show_strings_bare_and_what_is_empty_as_a_dash() {
        assert_eq!(cell(&json!("R41")), "R41");
        assert_eq!(cell(&Value::Null), "-");
        assert_eq!(cell(&json!("")), "-");
        assert_eq!(cell(&json!("two\nlines")), "two lines");
        assert_eq!(cell(&json!({"a": 1})), r#"{"a":1}"#);
        assert_eq!(cell(&json!(0)), "0");
    }
}
