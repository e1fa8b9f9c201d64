//! `watch` and `audit` against a server without authentication.

use std::time::Duration;

use futures::TryStreamExt;
use sessiond_client::EventFilter;
use sqlx::Connection;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

use super::*;

/// The fields of the contract's `Event`, in order.
const EVENT_FIELDS: [&str; 23] = [
    "revision",
    "time",
    "kind",
    "session_id",
    "session_uuid",
    "user",
    "effective_user",
    "subject",
    "authentication_method",
    "peer",
    "run_id",
    "module_id",
    "end_reason",
    "run_state",
    "failure_kind",
    "request_id",
    "traceparent",
    "scope_id",
    "method",
    "error_reason",
    "session",
    "prev_hash",
    "hash",
];

/// The longest a test waits for `sessionctl watch` to print its next line
/// (a guard against hanging, not a measurement).
const PATIENCE: Duration = Duration::from_secs(30);

/// A server whose idle watches send progress often, so that a watch's
/// first line says it has started.
async fn quick_server() -> TestServer {
    TestServer::start_with(|config| {
        config.watch_progress_interval = Duration::from_millis(100);
    })
    .await
}

/// `sessionctl ARGS…` running against `server`, its stdout read line by
/// line (killed when dropped).
fn spawn_sessionctl(server: &TestServer, args: &[&str]) -> (Child, Lines<BufReader<ChildStdout>>) {
    let mut child = tokio::process::Command::new(sessionctl_binary())
        .args(args)
        .env("SESSIOND_ENDPOINT", server.endpoint())
        .env_remove("SESSIOND_TOKEN")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starting sessionctl");
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

/// The next line `sessionctl` prints.
async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .expect("sessionctl prints its next line")
        .unwrap()
        .expect("sessionctl goes on printing")
}

/// Whether the keys of the JSON object `line` appear in `order` (the
/// object's own text: parsing would sort them).
fn keys_in_order(line: &str, order: &[&str]) -> bool {
    let positions: Vec<Option<usize>> = order
        .iter()
        .map(|key| line.find(&format!("\"{key}\":")))
        .collect();
    positions.iter().all(Option::is_some) && positions.windows(2).all(|w| w[0] < w[1])
}

#[tokio::test]
async fn watch_prints_a_session_opened_meanwhile_as_json_and_as_a_table() {
    let server = quick_server().await;
    let (mut json_watch, mut json_lines) =
        spawn_sessionctl(&server, &["--output", "json", "watch"]);
    let (mut table_watch, mut table_lines) = spawn_sessionctl(&server, &["watch", "--user", "R41"]);
    let first: Value = serde_json::from_str(&next_line(&mut json_lines).await).unwrap();
    assert!(first["progress"]["revision"].is_i64(), "{first}");
    let header = next_line(&mut table_lines).await;
    assert_eq!(
        table(&header)[0],
        [
            "REVISION",
            "TIME",
            "KIND",
            "SESSION_ID",
            "USER",
            "EFFECTIVE_USER",
            "SUBJECT",
            "DETAIL"
        ]
    );
    let progress = table(&next_line(&mut table_lines).await).remove(0);
    assert_eq!(progress[2], "progress", "{progress:?}");

    let client = client_for(&server).await;
    client.open_clientless_session("R42").await.unwrap();
    let opened = client.open_clientless_session("R41").await.unwrap();
    let id = opened.session_id.get();

    let event = loop {
        let line = next_line(&mut json_lines).await;
        let item: Value = serde_json::from_str(&line).unwrap();
        if item["event"]["session_id"] == json!(id) {
            assert!(keys_in_order(&line, &EVENT_FIELDS), "{line}");
            break item["event"].clone();
        }
        assert!(
            item.get("progress").is_some() || item.get("event").is_some(),
            "{line}"
        );
    };
    assert_eq!(event["kind"], "clientless_session_opened");
    assert_eq!(event["user"], "R41");
    assert_eq!(
        event["session_uuid"],
        json!(opened.session_uuid.to_string())
    );
    assert_eq!(event["authentication_method"], "none");
    assert_eq!(event["end_reason"], Value::Null);
    assert_eq!(event["session"], Value::Null);
    assert_eq!(event["hash"].as_str().map(str::len), Some(64), "hex");
    assert!(is_rfc3339_utc(event["time"].as_str().unwrap()), "{event}");

    let row = loop {
        let row = table(&next_line(&mut table_lines).await).remove(0);
        if row[2] != "progress" {
            break row;
        }
    };
    assert_eq!(row[0], event["revision"].to_string());
    assert_eq!(
        row[2..7],
        [
            "clientless_session_opened",
            &id.to_string(),
            "R41",
            "R41",
            "anonymous"
        ],
        "R41's only: {row:?}"
    );

    json_watch.kill().await.unwrap();
    table_watch.kill().await.unwrap();
}

#[tokio::test]
async fn watch_with_the_initial_state_prints_snapshots_then_its_end() {
    let server = quick_server().await;
    let client = client_for(&server).await;
    let open = client.start_session("R41", "desk").await.unwrap();
    let (mut watch, mut lines) =
        spawn_sessionctl(&server, &["--output", "json", "watch", "--initial-state"]);
    let line = next_line(&mut lines).await;
    let snapshot: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(snapshot["event"]["kind"], "session_snapshot");
    assert_eq!(snapshot["event"]["hash"], "", "not in the log");
    let record = &snapshot["event"]["session"];
    assert_eq!(record["session_id"], json!(open.session_id.get()));
    assert_eq!(record["state"], "open");
    let nested = &line[line.find("\"session\":{").expect("a nested record")..];
    assert!(keys_in_order(nested, &SESSION_INFO_FIELDS), "{line}");
    let end: Value = serde_json::from_str(&next_line(&mut lines).await).unwrap();
    assert_eq!(
        end["initial_state_end"]["revision"],
        snapshot["event"]["revision"]
    );
    watch.kill().await.unwrap();
}

#[tokio::test]
async fn audit_export_writes_every_event_as_json_lines_oldest_first() {
    let server = TestServer::start().await;
    let client = client_for(&server).await;
    // More than one page of the listing (1000 events).
    let sessions = futures::future::try_join_all(
        ["R41", "R42", "R43", "R44"].map(|user| client.open_clientless_session(user)),
    )
    .await
    .unwrap();
    futures::future::try_join_all(sessions.iter().map(|session| {
        let client = client.clone();
        let id = session.session_id;
        async move {
            for n in 0..251 {
                client.set_user_context(id, format!("U{n}")).await?;
            }
            Ok::<_, sessiond_client::Error>(())
        }
    }))
    .await
    .unwrap();
    let head = client.get_checkpoint().await.unwrap().head_revision;
    assert_eq!(head, 4 + 4 * 251);

    let run = sessionctl(&server, &["audit", "export"]).await;
    let events = run.json_lines();
    let revisions: Vec<i64> = events
        .iter()
        .map(|e| e["revision"].as_i64().unwrap())
        .collect();
    assert_eq!(
        revisions,
        (1..=head).collect::<Vec<_>>(),
        "every event, oldest first"
    );
    assert!(
        run.stdout
            .lines()
            .all(|line| keys_in_order(line, &EVENT_FIELDS)),
        "every field, in the contract's order"
    );
    let listed: Vec<sessiond_client::Event> = client
        .list_events(EventFilter::new())
        .try_collect()
        .await
        .unwrap();
    for (exported, listed) in events.iter().zip(&listed) {
        assert_eq!(exported["hash"], json!(listed.hash.unwrap().to_string()));
        assert_eq!(exported["kind"], json!(listed.kind.name()));
    }

    let r42 = sessionctl(
        &server,
        &[
            "audit",
            "export",
            "--user",
            "R42",
            "--kind",
            "clientless_session_opened",
        ],
    )
    .await
    .json_lines();
    assert_eq!(r42.len(), 1);
    assert_eq!(r42[0]["session_id"], json!(sessions[1].session_id.get()));
}

#[tokio::test]
async fn audit_list_prints_a_table_newest_first_up_to_the_limit() {
    let server = TestServer::start().await;
    let client = client_for(&server).await;
    for user in ["R41", "R42", "R43"] {
        let session = client.start_session(user, "desk").await.unwrap();
        client.end_session(session.session_id).await.unwrap();
    }
    let run = sessionctl(
        &server,
        &["audit", "list", "--newest-first", "--limit", "2"],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    let rows = table(&run.stdout);
    assert_eq!(rows.len(), 3, "a header and two rows: {rows:?}");
    assert_eq!(
        (rows[1][0].as_str(), rows[1][2].as_str()),
        ("6", "session_ended")
    );
    assert_eq!(rows[1][4], "R43");
    assert_eq!(rows[1][7], "end_reason=closed_by_client");
    assert_eq!(rows[2][2], "session_started");
}

#[tokio::test]
async fn audit_verify_exits_0_for_an_intact_ledger_and_1_naming_the_first_bad_revision() {
    let server = TestServer::start().await;
    let client = client_for(&server).await;
    let session = client.open_clientless_session("R41").await.unwrap();
    client
        .set_user_context(session.session_id, "R42")
        .await
        .unwrap();
    client.end_session(session.session_id).await.unwrap();

    let verified = sessionctl(&server, &["--output", "json", "audit", "verify"])
        .await
        .json();
    assert_eq!(verified["ok"], true, "{verified}");
    assert_eq!(verified["verified_events"], 3);
    assert_eq!(verified["first_bad_revision"], 0);
    let checkpoint = sessionctl(&server, &["--output", "json", "audit", "checkpoint"])
        .await
        .json();
    assert_eq!(checkpoint["head_revision"], 3);
    assert_eq!(checkpoint["head_hash"], verified["head_hash"]);
    assert_eq!(checkpoint["compact_revision"], 0);
    let run = sessionctl(&server, &["audit", "verify", "--from", "2", "--to", "2"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(field(&run.stdout, "verified_events"), "1");

    // Someone with the database file rewrites the second event's hash.
    let mut db = sqlx::SqliteConnection::connect(&common::database_url(server.dir.path()))
        .await
        .unwrap();
    sqlx::query("UPDATE events SET hash = zeroblob(32) WHERE revision = 2")
        .execute(&mut db)
        .await
        .unwrap();
    let run = sessionctl(&server, &["--output", "json", "audit", "verify"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    let broken: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(broken["ok"], false);
    assert_eq!(broken["first_bad_revision"], 2, "{broken}");
    let problem = broken["problem"].as_str().unwrap();
    assert!(!problem.is_empty());
    let complaint = run.stderr.trim();
    assert!(
        complaint.contains("revision 2") && complaint.contains(problem),
        "{complaint}"
    );
}

#[tokio::test]
async fn watch_after_a_revision_prints_what_followed_it() {
    // `--after` resumes where a previous watch stopped: here, after the
    // first session's start (revision 1).
    let server = quick_server().await;
    let client = client_for(&server).await;
    let first = client.start_session("R41", "desk").await.unwrap();
    client.end_session(first.session_id).await.unwrap();
    let second = client.start_session("R42", "desk").await.unwrap();
    let (mut watch, mut lines) =
        spawn_sessionctl(&server, &["--output", "json", "watch", "--after", "1"]);
    let mut events = Vec::new();
    while events.len() < 2 {
        let item: Value = serde_json::from_str(&next_line(&mut lines).await).unwrap();
        if !item["event"].is_null() {
            events.push(item["event"].clone());
        }
    }
    assert_eq!(events[0]["revision"], 2);
    assert_eq!(events[0]["kind"], "session_ended");
    assert_eq!(events[1]["session_id"], json!(second.session_id.get()));
    watch.kill().await.unwrap();
}
