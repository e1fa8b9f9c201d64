//! `sessionctl` end to end: the real binary as a child process against a
//! real server — each command's output as JSON lines and as a table, and
//! its exit codes (`commands`); modules: `run` with its timeout and
//! Ctrl-C, `open-module` and `value` (`modules`); how tables and JSON
//! spell things (`output`); `watch` followed line by line and `audit`
//! (`events`); and against servers that authenticate their callers
//! (`access`: `whoami`, `can-i`, refusals, `SESSIOND_TOKEN` and the
//! `--tls-*` flags).

mod access;
mod commands;
#[path = "../common/mod.rs"]
mod common;
mod events;
mod modules;
mod output;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;

use common::TestServer;
use common::credentials::static_token;
use common::pki::{CLIENT_SUBJECT, Pki};
use serde_json::{Value, json};
use sessiond_client::{Client, SessionId, SessionState};

/// The `sessionctl` binary, built once per test process.
fn sessionctl_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        common::cargo_build()
            .package("sessionctl")
            .bin("sessionctl")
            .run()
            .expect("building the sessionctl binary")
            .path()
            .to_owned()
    })
}

/// What one run of `sessionctl` did.
#[derive(Debug)]
struct Run {
    /// Its exit code.
    code: i32,
    /// Everything it printed on stdout.
    stdout: String,
    /// Everything it printed on stderr.
    stderr: String,
}

impl Run {
    /// Asserts success and returns stdout's JSON lines.
    #[track_caller]
    fn json_lines(&self) -> Vec<Value> {
        assert_eq!(self.code, 0, "{self:?}");
        self.stdout
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}")))
            .collect()
    }

    /// Asserts success and returns the one JSON line.
    #[track_caller]
    fn json(&self) -> Value {
        let mut lines = self.json_lines();
        assert_eq!(lines.len(), 1, "{self:?}");
        lines.remove(0)
    }

    /// Asserts failure with `code` and returns the one line on stderr.
    #[track_caller]
    fn failure(&self, code: i32) -> String {
        assert_eq!(self.code, code, "{self:?}");
        assert_eq!(self.stdout, "", "nothing on stdout when failing");
        let lines: Vec<_> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one clear line: {self:?}");
        lines[0].to_owned()
    }
}

/// Runs `sessionctl ARGS…` with `SESSIOND_ENDPOINT` set to `endpoint`.
async fn sessionctl_at(endpoint: &str, args: &[&str]) -> Run {
    sessionctl_with_env(endpoint, args, &[]).await
}

/// Runs `sessionctl ARGS…` with `SESSIOND_ENDPOINT` set to `endpoint` and
/// these variables (such as `SESSIOND_TOKEN`) added to its environment.
async fn sessionctl_with_env(endpoint: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let binary = sessionctl_binary();
    let output = tokio::process::Command::new(binary)
        .args(args)
        .env("SESSIOND_ENDPOINT", endpoint)
        .env_remove("SESSIOND_TOKEN")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .expect("running sessionctl");
    Run {
        code: output.status.code().expect("sessionctl exited by itself"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// Runs `sessionctl ARGS…` against `server`.
async fn sessionctl(server: &TestServer, args: &[&str]) -> Run {
    sessionctl_at(&server.endpoint(), args).await
}

/// The rows of a table: header first, cells split on runs of spaces.
fn table(stdout: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .map(|line| {
            line.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

/// The value of `field` in a two-column "field value" table.
fn field<'a>(stdout: &'a str, field: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(' ')?;
            (name == field).then(|| value.trim())
        })
        .unwrap_or_else(|| panic!("no {field} in {stdout}"))
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, as protobuf's JSON mapping writes
/// timestamps.
fn is_rfc3339_utc(text: &str) -> bool {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        bytes
            .get(range)
            .is_some_and(|b| b.iter().all(u8::is_ascii_digit))
    };
    digits(0..4)
        && bytes.get(4) == Some(&b'-')
        && digits(5..7)
        && bytes.get(7) == Some(&b'-')
        && digits(8..10)
        && bytes.get(10) == Some(&b'T')
        && digits(11..13)
        && bytes.get(13) == Some(&b':')
        && digits(14..16)
        && bytes.get(16) == Some(&b':')
        && digits(17..19)
        && text.ends_with('Z')
}

/// A server running the example modules of `examples/modules.toml`
/// (`100000`, `whoami`, `slow`).
async fn server_with_example_modules() -> TestServer {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/modules.toml");
    TestServer::start_with(|config| config.modules = Some(examples)).await
}

async fn client_for(server: &TestServer) -> Client {
    Client::connect(server.endpoint()).await.unwrap()
}

/// The fields of the contract's `SessionInfo`, in order.
const SESSION_INFO_FIELDS: [&str; 13] = [
    "session_id",
    "session_uuid",
    "user",
    "kind",
    "state",
    "start_time",
    "end_time",
    "last_activity_time",
    "end_reason",
    "effective_user",
    "client",
    "user_context_depth",
    "owner_node",
];

fn keys(object: &Value) -> Vec<&str> {
    object
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}
