//! `sessionctl` end to end: the real binary as a child process against a
//! real server — each command's output as JSON lines and as a table, and
//! its exit codes; and against servers that authenticate their callers
//! (`whoami`, `can-i`, refusals, `SESSIOND_TOKEN` and the `--tls-*` flags).

mod common;

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

#[tokio::test]
async fn user_prints_whose_session_it_is() {
    let server = TestServer::start().await;
    let client = client_for(&server).await;
    let id = client
        .start_session("R41", "")
        .await
        .unwrap()
        .session_id
        .to_string();

    let line = sessionctl(&server, &["--output", "json", "user", &id])
        .await
        .json();
    assert_eq!(
        line,
        json!({"session_id": id.parse::<i64>().unwrap(), "user": "R41"})
    );

    let run = sessionctl(&server, &["user", &id]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(field(&run.stdout, "user"), "R41");
    assert_eq!(field(&run.stdout, "session_id"), id);
}

#[tokio::test]
async fn info_prints_every_field_of_the_record_under_its_contract_name() {
    let server = TestServer::start().await;
    let client = client_for(&server).await;
    let session = client.start_session("R41", "web/2.3").await.unwrap();
    let id = session.session_id.to_string();

    let line = sessionctl(&server, &["info", &id, "--output", "json"])
        .await
        .json();
    let mut expected_keys = SESSION_INFO_FIELDS.to_vec();
    expected_keys.sort_unstable();
    let mut got_keys = keys(&line);
    got_keys.sort_unstable();
    assert_eq!(got_keys, expected_keys);
    assert_eq!(line["session_id"], json!(session.session_id.get()));
    assert_eq!(
        line["session_uuid"],
        json!(session.session_uuid.to_string())
    );
    assert_eq!(line["user"], "R41");
    assert_eq!(line["kind"], "SESSION_KIND_INTERACTIVE");
    assert_eq!(line["state"], "SESSION_STATE_OPEN");
    assert_eq!(line["end_time"], Value::Null);
    assert_eq!(line["end_reason"], "END_REASON_UNSPECIFIED");
    assert_eq!(line["client"], "web/2.3");
    assert_eq!(line["user_context_depth"], 0);
    let start = line["start_time"].as_str().unwrap();
    assert!(is_rfc3339_utc(start), "{start}");
    assert_eq!(
        line["last_activity_time"], line["start_time"],
        "a session nobody used was last active when it started"
    );

    let run = sessionctl(&server, &["info", &id]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let rows = table(&run.stdout);
    let names: Vec<_> = rows.iter().map(|row| row[0].as_str()).collect();
    assert_eq!(
        names, SESSION_INFO_FIELDS,
        "every field, in the contract's order"
    );
    assert_eq!(field(&run.stdout, "kind"), "interactive");
    assert_eq!(field(&run.stdout, "state"), "open");
    assert_eq!(field(&run.stdout, "end_time"), "-");
}

#[tokio::test]
async fn list_filters_by_user_state_and_kind() {
    let server = TestServer::start().await;
    let client = client_for(&server).await;
    let a = client
        .open_clientless_session("R41")
        .await
        .unwrap()
        .session_id
        .get();
    let b = client
        .start_session("R41", "")
        .await
        .unwrap()
        .session_id
        .get();
    let c = client.open_clientless_session("R42").await.unwrap();
    client.end_session(c.session_id).await.unwrap();
    let c = c.session_id.get();
    let ids = |lines: Vec<Value>| {
        lines
            .iter()
            .map(|l| l["session_id"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };

    let all = sessionctl(&server, &["list", "--output", "json"])
        .await
        .json_lines();
    assert_eq!(ids(all.clone()), [a, b, c]);
    for line in &all {
        let mut got = keys(line);
        got.sort_unstable();
        let mut expected = SESSION_INFO_FIELDS.to_vec();
        expected.sort_unstable();
        assert_eq!(got, expected);
    }
    let of_r41 = sessionctl(&server, &["--output", "json", "list", "--user", "R41"]).await;
    assert_eq!(ids(of_r41.json_lines()), [a, b]);
    let ended = sessionctl(&server, &["--output", "json", "list", "--state", "ended"]).await;
    let ended = ended.json_lines();
    assert_eq!(ids(ended.clone()), [c]);
    assert_eq!(ended[0]["end_reason"], "END_REASON_CLOSED_BY_CLIENT");
    let interactive = sessionctl(
        &server,
        &["--output", "json", "list", "--kind", "interactive"],
    )
    .await;
    assert_eq!(ids(interactive.json_lines()), [b]);
    let open_clientless_of_r41 = sessionctl(
        &server,
        &[
            "--output",
            "json",
            "list",
            "--user",
            "R41",
            "--kind",
            "clientless",
            "--state",
            "open",
        ],
    )
    .await;
    assert_eq!(ids(open_clientless_of_r41.json_lines()), [a]);
    let nobody = sessionctl(&server, &["--output", "json", "list", "--user", "R99"]).await;
    assert!(nobody.json_lines().is_empty());

    let run = sessionctl(&server, &["list", "--state", "open"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let rows = table(&run.stdout);
    assert_eq!(rows[0][..4], ["SESSION_ID", "USER", "KIND", "STATE"]);
    assert_eq!(
        rows.len(),
        3,
        "a header and two open sessions: {}",
        run.stdout
    );
    assert_eq!(
        rows[1][..4],
        [
            a.to_string(),
            "R41".into(),
            "clientless".into(),
            "open".into()
        ]
    );
    assert_eq!(
        rows[2][..4],
        [
            b.to_string(),
            "R41".into(),
            "interactive".into(),
            "open".into()
        ]
    );
}

#[tokio::test]
async fn open_then_close_a_clientless_session() {
    let server = TestServer::start().await;
    let client = client_for(&server).await;

    let opened = sessionctl(&server, &["--output", "json", "open", "R41"])
        .await
        .json();
    assert_eq!(opened["user"], "R41");
    assert_eq!(opened["kind"], "SESSION_KIND_CLIENTLESS");
    assert_eq!(opened["state"], "SESSION_STATE_OPEN");
    let id = SessionId::new(opened["session_id"].as_i64().unwrap());
    assert_eq!(
        client.get_session_info(id).await.unwrap().state,
        SessionState::Open,
        "it stays open after sessionctl exits"
    );

    let closed = sessionctl(
        &server,
        &[
            "--output",
            "json",
            "close",
            &id.to_string(),
            "--grace",
            "10s",
        ],
    )
    .await
    .json();
    assert_eq!(closed["session_id"], json!(id.get()));
    assert_eq!(closed["state"], "SESSION_STATE_ENDED");
    assert_eq!(closed["end_reason"], "END_REASON_CLOSED_BY_CLIENT");
    assert!(closed["end_time"].is_string());
    let info = client.get_session_info(id).await.unwrap();
    assert_eq!(info.state, SessionState::Ended);

    // Closing again is idempotent, and the table says so too.
    let run = sessionctl(&server, &["close", &id.to_string()]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(field(&run.stdout, "state"), "ended");
    assert_eq!(field(&run.stdout, "end_reason"), "closed_by_client");
}

#[tokio::test]
async fn close_ends_an_interactive_session_but_a_grace_is_for_clientless_ones() {
    let server = TestServer::start().await;
    let client = client_for(&server).await;
    let id = client
        .start_session("R41", "")
        .await
        .unwrap()
        .session_id
        .to_string();

    let line = sessionctl(&server, &["close", &id, "--grace", "1s"])
        .await
        .failure(1);
    assert_eq!(
        line,
        format!("sessionctl: session {id} is not a clientless session")
    );

    let closed = sessionctl(&server, &["--output", "json", "close", &id])
        .await
        .json();
    assert_eq!(closed["state"], "SESSION_STATE_ENDED");
    assert_eq!(closed["kind"], "SESSION_KIND_INTERACTIVE");
}

#[tokio::test]
async fn context_reads_and_switches_the_user_context() {
    let server = TestServer::start().await;
    let client = client_for(&server).await;
    let id = client
        .open_clientless_session("R41")
        .await
        .unwrap()
        .session_id;
    let arg = id.to_string();

    let line = sessionctl(&server, &["--output", "json", "context", &arg])
        .await
        .json();
    assert_eq!(
        line,
        json!({"session_id": id.get(), "user": "R41", "session_user": "R41", "depth": 0})
    );

    let line = sessionctl(
        &server,
        &["--output", "json", "context", &arg, "--set", "R50"],
    )
    .await
    .json();
    assert_eq!(line["user"], "R50");
    assert_eq!(line["previous_user"], "R41");
    assert_eq!(client.get_user_context(id).await.unwrap().user, "R50");

    let run = sessionctl(&server, &["context", &arg]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(field(&run.stdout, "user"), "R50");
    assert_eq!(field(&run.stdout, "session_user"), "R41");

    client.end_session(id).await.unwrap();
    let line = sessionctl(&server, &["context", &arg, "--set", "R60"])
        .await
        .failure(1);
    assert_eq!(line, format!("sessionctl: session {arg} has ended"));
}

#[tokio::test]
async fn failures_print_one_line_and_exit_non_zero() {
    let server = TestServer::start().await;

    let line = sessionctl(&server, &["info", "4242"]).await.failure(1);
    assert_eq!(line, "sessionctl: session 4242 not found");
    let line = sessionctl(&server, &["user", "4242", "--output", "json"])
        .await
        .failure(1);
    assert_eq!(line, "sessionctl: session 4242 not found");
    let line = sessionctl(&server, &["info", "0"]).await.failure(1);
    assert!(line.starts_with("sessionctl: invalid argument"), "{line}");
    assert!(line.contains("session_id"), "{line}");
    let line = sessionctl(&server, &["open", ""]).await.failure(1);
    assert!(line.contains("user"), "{line}");

    // Nothing listens on a port that was just free.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let nowhere = format!("http://127.0.0.1:{port}");
    let line = sessionctl_at(&nowhere, &["list"]).await.failure(1);
    assert!(
        line.starts_with(&format!("sessionctl: cannot connect to {nowhere}")),
        "{line}"
    );

    // Usage errors are clap's: exit status 2.
    let run = sessionctl(&server, &["info", "seven"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    let run = sessionctl(&server, &["list", "--state", "sleepy"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("open, closing, ended"), "{run:?}");
    let run = sessionctl(&server, &["frobnicate"]).await;
    assert_eq!(run.code, 2, "{run:?}");
}

#[tokio::test]
async fn the_endpoint_flag_overrides_the_environment() {
    let server = TestServer::start().await;
    let client = client_for(&server).await;
    let id = client
        .start_session("R41", "")
        .await
        .unwrap()
        .session_id
        .to_string();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let nowhere = format!("http://127.0.0.1:{port}");
    let run = sessionctl_at(
        &nowhere,
        &[
            "--endpoint",
            &server.endpoint(),
            "--output",
            "json",
            "user",
            &id,
        ],
    )
    .await;
    assert_eq!(run.json()["user"], "R41");
}

/// A server running the example modules of `examples/modules.toml`.
async fn server_with_example_modules() -> TestServer {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/modules.toml");
    TestServer::start_with(|config| config.modules = Some(examples)).await
}

#[tokio::test]
async fn run_prints_the_modules_value_and_closes_the_session() {
    let server = server_with_example_modules().await;
    let run = sessionctl(
        &server,
        &[
            "--output",
            "json",
            "run",
            "R41",
            "100000",
            "--param",
            "title=Open projects",
            "--timeout",
            "30s",
        ],
    )
    .await;
    let line = run.json();
    assert_eq!(line["module_id"], "100000");
    let value = &line["value"];
    assert_eq!(value["module"], "100000");
    assert_eq!(value["user"], "R41");
    assert_eq!(value["title"], "Open projects");
    assert_eq!(value["session_id"], line["session_id"]);

    let client = client_for(&server).await;
    let sessions = client
        .list_sessions(&sessiond_client::SessionFilter::new().user("R41"))
        .await
        .unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(
        sessions[0].state,
        SessionState::Ended,
        "run closed its session"
    );
}

#[tokio::test]
async fn run_of_an_unknown_module_fails_with_one_line_and_still_closes() {
    let server = server_with_example_modules().await;
    let run = sessionctl(&server, &["run", "R41", "no-such-module"]).await;
    let line = run.failure(1);
    assert!(line.contains("no-such-module"), "{line}");
    let client = client_for(&server).await;
    let sessions = client
        .list_sessions(&sessiond_client::SessionFilter::new().user("R41"))
        .await
        .unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].state, SessionState::Ended);
}

// --------------------------------------------------------- authentication

/// A server with static tokens and `examples/policy.toml`, and the tokens
/// of `billing` (group `services`) and of the end user `R41`.
async fn server_with_tokens_and_example_policy() -> (TestServer, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.toml");
    let service = static_token(&tokens, "billing", &["services"]);
    let r41 = static_token(&tokens, "R41", &[]);
    let policy = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policy.toml");
    let server = TestServer::start_in(dir, |config| {
        config.security.tokens = Some(tokens);
        config.security.policy = Some(policy);
    })
    .await;
    (server, service, r41)
}

#[tokio::test]
async fn whoami_without_authentication_prints_anonymous() {
    let server = TestServer::start().await;
    let me = sessionctl(&server, &["whoami", "--output", "json"])
        .await
        .json();
    assert_eq!(
        me,
        json!({
            "subject": "anonymous",
            "groups": [],
            "method": "AUTHENTICATION_METHOD_NONE",
            "session_id": null,
        })
    );
    let run = sessionctl(&server, &["whoami"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(field(&run.stdout, "subject"), "anonymous");
    assert_eq!(field(&run.stdout, "method"), "none");
}

#[tokio::test]
async fn whoami_with_sessiond_token_prints_the_tokens_subject() {
    let (server, service, _) = server_with_tokens_and_example_policy().await;
    let endpoint = server.endpoint();
    let token = [("SESSIOND_TOKEN", service.as_str())];
    let me = sessionctl_with_env(&endpoint, &["whoami", "--output", "json"], &token)
        .await
        .json();
    assert_eq!(
        me,
        json!({
            "subject": "billing",
            "groups": ["services"],
            "method": "AUTHENTICATION_METHOD_STATIC_TOKEN",
            "session_id": null,
        })
    );
    let run = sessionctl_with_env(&endpoint, &["whoami"], &token).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(field(&run.stdout, "subject"), "billing");
    assert_eq!(field(&run.stdout, "groups"), "services");
    assert_eq!(field(&run.stdout, "method"), "static_token");
    assert!(!run.stdout.contains(&service), "the token is never printed");

    // Without the token: one line saying so, exit 1.
    let line = sessionctl(&server, &["whoami"]).await.failure(1);
    assert!(line.starts_with("sessionctl: unauthenticated: "), "{line}");
}

#[tokio::test]
async fn can_i_answers_from_the_policy_and_exits_1_for_no() {
    let (server, service, _) = server_with_tokens_and_example_policy().await;
    let endpoint = server.endpoint();
    let client = Client::builder()
        .bearer_token(&service)
        .connect(&endpoint)
        .await
        .unwrap();
    let id = client
        .open_clientless_session("R41")
        .await
        .unwrap()
        .session_id
        .to_string();
    let token = [("SESSIOND_TOKEN", service.as_str())];
    let can_i = |user: &'static str| ["can-i", "act_as", "--session", &id, "--user", user];

    let run = sessionctl_with_env(&endpoint, &can_i("admin"), &token).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stderr, "", "a refusal is an answer, not an error");
    let answer = run.stdout.strip_suffix('\n').unwrap();
    assert!(!answer.contains('\n'), "one line: {run:?}");
    let reason = answer.strip_prefix("no: ").expect("no: REASON");
    assert!(
        reason.contains("billing") && reason.contains("admin"),
        "{reason}"
    );

    let run = sessionctl_with_env(&endpoint, &can_i("R41"), &token).await;
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (0, "yes\n", ""),
        "{run:?}"
    );

    let mut json_args = can_i("admin").to_vec();
    json_args.extend(["--output", "json"]);
    let run = sessionctl_with_env(&endpoint, &json_args, &token).await;
    assert_eq!(run.code, 1, "{run:?}");
    let decision: Value = serde_json::from_str(run.stdout.trim_end()).unwrap();
    assert_eq!(decision, json!({"allowed": false, "reason": reason}));

    // The question changed nothing; the real call gets the same reason.
    let context = client
        .get_user_context(SessionId::new(id.parse().unwrap()))
        .await
        .unwrap();
    assert_eq!(context.user, "R41");
    let line = sessionctl_with_env(&endpoint, &["context", &id, "--set", "admin"], &token)
        .await
        .failure(1);
    assert_eq!(line, format!("sessionctl: permission denied: {reason}"));
}

#[tokio::test]
async fn a_refused_call_prints_one_permission_denied_line() {
    let (server, service, r41) = server_with_tokens_and_example_policy().await;
    let endpoint = server.endpoint();
    let as_service = [("SESSIOND_TOKEN", service.as_str())];
    let as_r41 = [("SESSIOND_TOKEN", r41.as_str())];

    let line = sessionctl_with_env(&endpoint, &["open", "admin"], &as_service)
        .await
        .failure(1);
    assert!(
        line.starts_with("sessionctl: permission denied: "),
        "{line}"
    );
    assert!(line.contains("billing") && line.contains("admin"), "{line}");

    // Allowed for R41; the end user R41 may read it but not open one.
    let opened = sessionctl_with_env(&endpoint, &["open", "R41", "--output", "json"], &as_service)
        .await
        .json();
    let id = opened["session_id"].as_i64().unwrap().to_string();
    let read = sessionctl_with_env(&endpoint, &["user", &id, "--output", "json"], &as_r41)
        .await
        .json();
    assert_eq!(read["user"], "R41");
    let line = sessionctl_with_env(&endpoint, &["open", "R41"], &as_r41)
        .await
        .failure(1);
    assert!(
        line.starts_with("sessionctl: permission denied: "),
        "{line}"
    );
    assert!(line.contains("R41"), "{line}");
    // `run` is refused before it opens anything: the service's session is
    // still the only one.
    let line = sessionctl_with_env(&endpoint, &["run", "admin", "100000"], &as_service)
        .await
        .failure(1);
    assert!(
        line.starts_with("sessionctl: permission denied: "),
        "{line}"
    );
    let listed = sessionctl_with_env(&endpoint, &["list", "--output", "json"], &as_service)
        .await
        .json_lines();
    assert_eq!(listed.len(), 1, "{listed:?}");
}

#[tokio::test]
async fn tls_flags_present_a_client_certificate() {
    let pki = Pki::new();
    let server = TestServer::start_with(|config| {
        config.security.tls = Some(pki.server_with_client_ca());
    })
    .await;
    // A bare HOST:PORT means https:// with any --tls-* flag.
    let endpoint = server.addr.to_string();
    let (ca, cert, key) = (
        pki.path("ca.pem"),
        pki.path("client.pem"),
        pki.path("client.key"),
    );
    let (ca, cert, key) = (
        ca.to_str().unwrap(),
        cert.to_str().unwrap(),
        key.to_str().unwrap(),
    );
    let args = [
        "--tls-ca",
        ca,
        "--tls-cert",
        cert,
        "--tls-key",
        key,
        "whoami",
        "--output",
        "json",
    ];
    let me = sessionctl_at(&endpoint, &args).await.json();
    assert_eq!(
        me,
        json!({
            "subject": CLIENT_SUBJECT,
            "groups": [],
            "method": "AUTHENTICATION_METHOD_TLS_CLIENT_CERTIFICATE",
            "session_id": null,
        })
    );

    // Trusting the server without presenting a certificate: refused.
    let line = sessionctl_at(&endpoint, &["--tls-ca", ca, "whoami"])
        .await
        .failure(1);
    assert!(line.starts_with("sessionctl: unauthenticated: "), "{line}");
    // A certificate from another CA: the handshake fails, one line.
    let (stranger, stranger_key) = (pki.path("stranger.pem"), pki.path("stranger.key"));
    let args = [
        "--tls-ca",
        ca,
        "--tls-cert",
        stranger.to_str().unwrap(),
        "--tls-key",
        stranger_key.to_str().unwrap(),
        "whoami",
    ];
    let line = sessionctl_at(&endpoint, &args).await.failure(1);
    assert!(line.starts_with("sessionctl: "), "{line}");
    assert!(!line.contains(CLIENT_SUBJECT), "{line}");
}
