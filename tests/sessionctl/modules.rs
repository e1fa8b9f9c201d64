//! Modules through `sessionctl`: `run` (its value, its failures, its
//! `--timeout`, and Ctrl-C once and twice) and `open-module` / `value` in a
//! session that exists. Children are interrupted with a real SIGINT once
//! the server records their run as running; what is checked afterwards is
//! the exit status, what was printed, and the session and run as the
//! server recorded them, never how long anything took.

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use sessiond_client::{EndReason, Error, ModuleFailureKind, SessionFilter};
use tokio::process::Child;

use super::*;

/// The longest a test waits for `sessionctl` to exit (a guard against
/// hanging, not a measurement).
const PATIENCE: Duration = Duration::from_secs(60);

/// `sessionctl ARGS…` running against `server`, its stdout and stderr
/// collected (killed when dropped).
fn start(server: &TestServer, args: &[&str]) -> Child {
    tokio::process::Command::new(sessionctl_binary())
        .args(args)
        .env("SESSIOND_ENDPOINT", server.endpoint())
        .env_remove("SESSIOND_TOKEN")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starting sessionctl")
}

/// Presses Ctrl-C: SIGINT to `child`.
fn ctrl_c(child: &Child) {
    let pid = i32::try_from(child.id().expect("sessionctl is running")).unwrap();
    kill(Pid::from_raw(pid), Signal::SIGINT).unwrap();
}

/// What `child` did, once it exited by itself.
async fn finished(child: Child) -> Run {
    let output = tokio::time::timeout(PATIENCE, child.wait_with_output())
        .await
        .expect("sessionctl exits")
        .unwrap();
    Run {
        code: output.status.code().expect("sessionctl exited by itself"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// The session `sessionctl run` opened for `user`, once the server records
/// its run of `module` as running.
async fn running(client: &Client, user: &str, module: &str) -> SessionId {
    common::eventually("the module's run to be running", || async {
        let sessions = client
            .list_sessions(&SessionFilter::new().user(user))
            .await
            .unwrap();
        let session = sessions.first()?;
        match client
            .get_return_value(session.session_id, module, Duration::ZERO)
            .await
        {
            Err(Error::ModuleStillRunning { .. }) => Some(session.session_id),
            Err(Error::ModuleNotOpened { .. }) => None,
            other => panic!("the run ended before it was interrupted: {other:?}"),
        }
    })
    .await
}

/// Asserts that the latest run of `module` in session `id` was cancelled,
/// as the server recorded it.
async fn assert_cancelled(client: &Client, id: SessionId, module: &str) {
    let outcome = client.get_return_value(id, module, Duration::ZERO).await;
    assert!(
        matches!(
            outcome,
            Err(Error::ModuleFailed { ref failure, .. })
                if failure.kind == Some(ModuleFailureKind::Cancelled)
        ),
        "the run was cancelled: {outcome:?}"
    );
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
        .list_sessions(&SessionFilter::new().user("R41"))
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
        .list_sessions(&SessionFilter::new().user("R41"))
        .await
        .unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].state, SessionState::Ended);
}

#[tokio::test]
async fn run_past_its_timeout_says_so_stops_the_run_and_exits_124() {
    let server = server_with_example_modules().await;
    let run = sessionctl(
        &server,
        &[
            "run",
            "R41",
            "slow",
            "--param",
            "seconds=60",
            "--timeout",
            "1s",
        ],
    )
    .await;

    let line = run.failure(124);
    let client = client_for(&server).await;
    let sessions = client
        .list_sessions(&SessionFilter::new().user("R41"))
        .await
        .unwrap();
    assert_eq!(sessions.len(), 1);
    let session = &sessions[0];
    assert_eq!(
        line,
        format!(
            "sessionctl: module slow gave no value within 1s; stopping it \
             (closing session {}, grace 1s)",
            session.session_id
        )
    );
    assert_eq!(session.state, SessionState::Ended, "run closed its session");
    assert_eq!(session.end_reason, Some(EndReason::ClosedByClient));
    assert_cancelled(&client, session.session_id, "slow").await;
}

#[tokio::test]
async fn the_first_ctrl_c_cancels_the_run_closing_its_session_with_a_short_grace() {
    let server = server_with_example_modules().await;
    let client = client_for(&server).await;
    let child = start(
        &server,
        &[
            "run",
            "R41",
            "slow",
            "--param",
            "seconds=60",
            "--timeout",
            "60s",
        ],
    );
    let id = running(&client, "R41", "slow").await;

    ctrl_c(&child);
    let run = finished(child).await;

    assert_eq!(
        run.failure(130),
        format!(
            "sessionctl: cancelling: closing session {id} (grace 1s); Ctrl-C again to exit now"
        )
    );
    let session = client.get_session_info(id).await.unwrap();
    assert_eq!(session.state, SessionState::Ended);
    assert_eq!(session.end_reason, Some(EndReason::ClosedByClient));
    assert_cancelled(&client, id, "slow").await;
}

#[tokio::test]
async fn a_second_ctrl_c_exits_at_once_and_the_server_finishes_the_close() {
    let server = server_with_example_modules().await;
    let client = client_for(&server).await;
    let child = start(
        &server,
        &[
            "run",
            "R41",
            "slow",
            "--param",
            "seconds=300",
            "--timeout",
            "300s",
            "--grace",
            "300s",
        ],
    );
    let id = running(&client, "R41", "slow").await;
    ctrl_c(&child);
    common::eventually("the session to be closing", || async {
        let state = client.get_session_info(id).await.unwrap().state;
        (state == SessionState::Closing).then_some(())
    })
    .await;

    ctrl_c(&child);
    let run = finished(child).await;

    assert_eq!(
        run.failure(130),
        format!(
            "sessionctl: cancelling: closing session {id} (grace 5m); Ctrl-C again to exit now"
        )
    );
    // sessionctl did not wait for the grace: the module still sleeps, and
    // the session is still closing.
    assert!(matches!(
        client.get_return_value(id, "slow", Duration::ZERO).await,
        Err(Error::ModuleStillRunning { .. })
    ));
    assert_eq!(
        client.get_session_info(id).await.unwrap().state,
        SessionState::Closing
    );

    let ended = client
        .close_clientless_session(id, Some(Duration::ZERO))
        .await
        .unwrap();
    assert_eq!(ended.end_reason, Some(EndReason::ClosedByClient));
    assert_cancelled(&client, id, "slow").await;
}

#[tokio::test]
async fn open_module_starts_a_run_and_value_reads_what_it_returns() {
    let server = server_with_example_modules().await;
    let client = client_for(&server).await;
    let id = client
        .open_clientless_session("R41")
        .await
        .unwrap()
        .session_id;
    let arg = id.to_string();

    let started = sessionctl(
        &server,
        &["--output", "json", "open-module", &arg, "whoami"],
    )
    .await
    .json();
    let mut got = keys(&started);
    got.sort_unstable();
    assert_eq!(
        got,
        [
            "acting_user",
            "module_id",
            "run_id",
            "session_id",
            "start_time",
            "state"
        ]
    );
    assert_eq!(started["session_id"], json!(id.get()));
    assert_eq!(started["module_id"], "whoami");
    assert!(started["run_id"].as_i64().unwrap() > 0);
    assert!(
        ["running", "succeeded"].contains(&started["state"].as_str().unwrap()),
        "{started}"
    );
    assert_eq!(started["acting_user"], "R41");

    let line = sessionctl(
        &server,
        &[
            "--output",
            "json",
            "value",
            &arg,
            "whoami",
            "--timeout",
            "30s",
        ],
    )
    .await
    .json();
    assert_eq!(
        line,
        json!({
            "session_id": id.get(),
            "module_id": "whoami",
            "value": {"user": "R41", "acting_user": "R41"},
        })
    );
    let run = sessionctl(&server, &["value", &arg, "whoami"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        field(&run.stdout, "value"),
        r#"{"acting_user":"R41","user":"R41"}"#
    );

    let line = sessionctl(&server, &["value", &arg, "100000"])
        .await
        .failure(1);
    assert_eq!(
        line,
        format!("sessionctl: module \"100000\" was never opened in session {id}")
    );
    assert_eq!(
        client.get_session_info(id).await.unwrap().state,
        SessionState::Open,
        "open-module and value leave the session open"
    );
}

#[tokio::test]
async fn value_past_its_timeout_exits_124_and_the_run_goes_on() {
    let server = server_with_example_modules().await;
    let client = client_for(&server).await;
    let id = client
        .open_clientless_session("R41")
        .await
        .unwrap()
        .session_id;
    let arg = id.to_string();
    let run = sessionctl(
        &server,
        &["open-module", &arg, "slow", "--param", "seconds=300"],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(field(&run.stdout, "state"), "running");

    let line = sessionctl(&server, &["value", &arg, "slow", "--timeout", "0s"])
        .await
        .failure(124);
    assert_eq!(
        line,
        format!(
            "sessionctl: module slow gave no value within 0s; it goes on running in session {id}"
        )
    );
    assert!(matches!(
        client.get_return_value(id, "slow", Duration::ZERO).await,
        Err(Error::ModuleStillRunning { .. })
    ));
    client
        .close_clientless_session(id, Some(Duration::ZERO))
        .await
        .unwrap();
    assert_cancelled(&client, id, "slow").await;
}
