//! Modules end to end: the seed's `ClientlessSession` — open a module, read
//! its return value with a timeout, close gracefully once running modules
//! concluded — with real child processes for exec modules and in-process
//! modules the test controls.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{
    ManualClock, ServerProcess, TestServer, assert_error, database_url, eventually, metadata,
    violated_fields,
};
use serde_json::json;
use sessiond::model::{FailureKind, ModuleFailure};
use sessiond::modules::{Module, ModuleContext, async_trait};
use sessiond_proto::v1::session_service_client::SessionServiceClient;
use sessiond_proto::v1::user_context_service_client::UserContextServiceClient;
use sessiond_proto::v1::{
    CloseClientlessSessionRequest, EndReason, GetReturnValueRequest, GetReturnValueResponse,
    GetSessionInfoRequest, ModuleFailureKind, OpenClientlessSessionRequest, OpenModuleRequest,
    PushUserContextRequest, RunState, SessionInfo, SessionState, StartSessionRequest,
};
use tokio::sync::Semaphore;
use tonic::Code;
use tonic::transport::Channel;

/// An in-process module that runs until the test releases it (or its run is
/// cancelled), then returns how many times it was released so far.
#[derive(Clone, Debug)]
struct Held {
    release: Arc<Semaphore>,
}

impl Default for Held {
    fn default() -> Self {
        Self {
            release: Arc::new(Semaphore::new(0)),
        }
    }
}

impl Held {
    fn release(&self, runs: usize) {
        self.release.add_permits(runs);
    }
}

#[async_trait]
impl Module for Held {
    async fn run(&self, ctx: ModuleContext) -> Result<serde_json::Value, ModuleFailure> {
        tokio::select! {
            permit = self.release.acquire() => {
                permit.expect("semaphore open").forget();
                Ok(json!({"released": true, "acting_user": ctx.acting_user.as_str()}))
            }
            () = ctx.cancelled() => Err(ModuleFailure::new(FailureKind::Cancelled, "cancelled while held")),
        }
    }
}

/// An in-process module that fails, or panics when asked to.
#[derive(Debug)]
struct Faulty;

#[async_trait]
impl Module for Faulty {
    async fn run(&self, ctx: ModuleContext) -> Result<serde_json::Value, ModuleFailure> {
        if ctx.parameters.get("panic") == Some(&json!(true)) {
            panic!("the module fell over");
        }
        Err(ModuleFailure::error("no such project"))
    }
}

fn seconds(s: u64) -> Option<prost_types::Duration> {
    Some(prost_types::Duration {
        seconds: i64::try_from(s).unwrap(),
        nanos: 0,
    })
}

fn millis(ms: i32) -> Option<prost_types::Duration> {
    Some(prost_types::Duration {
        seconds: 0,
        nanos: ms * 1_000_000,
    })
}

async fn open_session(sessions: &mut SessionServiceClient<Channel>, user: &str) -> i64 {
    sessions
        .open_clientless_session(OpenClientlessSessionRequest { user: user.into() })
        .await
        .unwrap()
        .into_inner()
        .session_id
}

async fn open_module(
    sessions: &mut SessionServiceClient<Channel>,
    session_id: i64,
    module_id: &str,
    parameters: serde_json::Value,
) -> Result<i64, tonic::Status> {
    let parameters = match parameters {
        serde_json::Value::Object(fields) => Some(prost_types::Struct {
            fields: fields.into_iter().map(|(k, v)| (k, to_value(v))).collect(),
        }),
        _ => None,
    };
    sessions
        .open_module(OpenModuleRequest {
            session_id,
            module_id: module_id.into(),
            parameters,
        })
        .await
        .map(|r| r.into_inner().run_id)
}

async fn return_value(
    sessions: &mut SessionServiceClient<Channel>,
    session_id: i64,
    module_id: &str,
    timeout: Option<prost_types::Duration>,
) -> Result<GetReturnValueResponse, tonic::Status> {
    sessions
        .get_return_value(GetReturnValueRequest {
            session_id,
            module_id: module_id.into(),
            timeout,
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn session_info(
    sessions: &mut SessionServiceClient<Channel>,
    session_id: i64,
) -> SessionInfo {
    sessions
        .get_session_info(GetSessionInfoRequest { session_id })
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap()
}

async fn close(
    sessions: &mut SessionServiceClient<Channel>,
    session_id: i64,
    grace: Option<prost_types::Duration>,
) -> SessionInfo {
    sessions
        .close_clientless_session(CloseClientlessSessionRequest { session_id, grace })
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap()
}

fn to_value(json: serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match json {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap()),
        serde_json::Value::String(s) => Kind::StringValue(s),
        serde_json::Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.into_iter().map(to_value).collect(),
        }),
        serde_json::Value::Object(fields) => Kind::StructValue(prost_types::Struct {
            fields: fields.into_iter().map(|(k, v)| (k, to_value(v))).collect(),
        }),
    };
    prost_types::Value { kind: Some(kind) }
}

fn to_json(value: &prost_types::Value) -> serde_json::Value {
    use prost_types::value::Kind;
    match value.kind.as_ref() {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::BoolValue(b)) => json!(b),
        Some(Kind::NumberValue(n)) if n.fract() == 0.0 => json!(*n as i64),
        Some(Kind::NumberValue(n)) => json!(n),
        Some(Kind::StringValue(s)) => json!(s),
        Some(Kind::ListValue(list)) => list.values.iter().map(to_json).collect(),
        Some(Kind::StructValue(fields)) => fields
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), to_json(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
    }
}

fn value_of(response: &GetReturnValueResponse) -> serde_json::Value {
    assert_eq!(response.state(), RunState::Succeeded, "{response:?}");
    to_json(
        response
            .value
            .as_ref()
            .expect("a succeeded run has a value"),
    )
}

/// Writes an exec-module manifest into `dir`; each module is `sh -c SCRIPT`.
fn manifest(dir: &Path, modules: &[(&str, &str, &str)]) -> std::path::PathBuf {
    let mut text = String::new();
    for (id, timeout, script) in modules {
        text.push_str(&format!(
            "[modules.{id:?}]\ncommand = [\"sh\", \"-c\", {script:?}]\ntimeout = {timeout:?}\n"
        ));
    }
    let path = dir.join("modules.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A server with the exec modules `modules`, plus `Held` and `Faulty`
/// in-process modules, and settings `configure` adjusts.
async fn server_with(
    modules: &[(&str, &str, &str)],
    held: &Held,
    configure: impl FnOnce(&mut sessiond::Config),
) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let path = manifest(dir.path(), modules);
    let held = held.clone();
    TestServer::build_in(
        dir,
        |config| {
            config.modules = Some(path);
            configure(config);
        },
        |builder| builder.module("held", held).module("faulty", Faulty),
    )
    .await
}

#[tokio::test]
async fn the_seed_example_runs_module_100000_and_reads_its_value() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/modules.toml");
    let server = TestServer::start_with(|config| config.modules = Some(examples)).await;
    let mut sessions = server.sessions().await;

    // with utilities.ClientlessSession('R41') as session:
    let session_id = open_session(&mut sessions, "R41").await;
    //     session.open_module(module_id='100000')
    open_module(
        &mut sessions,
        session_id,
        "100000",
        json!({"title": "Open projects"}),
    )
    .await
    .unwrap();
    //     data = session.get_return_value(module_id='100000', timeout=5)
    let data = value_of(
        &return_value(&mut sessions, session_id, "100000", seconds(5))
            .await
            .unwrap(),
    );
    assert_eq!(data["module"], "100000");
    assert_eq!(data["user"], "R41");
    assert_eq!(data["acting_user"], "R41");
    assert_eq!(data["session_id"], session_id);
    assert_eq!(data["title"], "Open projects");
    assert_eq!(data["rows"][0]["owner"], "R41");
    // (leaving the with block)
    let closed = close(&mut sessions, session_id, None).await;
    assert_eq!(closed.state(), SessionState::Ended);
    assert_eq!(closed.end_reason(), EndReason::ClosedByClient);
}

#[tokio::test]
async fn the_example_whoami_answers_valid_json_for_names_with_quotes_and_backslashes() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/modules.toml");
    let server = TestServer::start_with(|config| config.modules = Some(examples)).await;
    let mut sessions = server.sessions().await;
    let user = r#"o"brien\ops"#;
    let session_id = open_session(&mut sessions, user).await;
    open_module(&mut sessions, session_id, "whoami", json!(null))
        .await
        .unwrap();
    let data = value_of(
        &return_value(&mut sessions, session_id, "whoami", seconds(10))
            .await
            .unwrap(),
    );
    assert_eq!(data, json!({"user": user, "acting_user": user}));
    close(&mut sessions, session_id, None).await;
}

#[tokio::test]
async fn a_module_sees_the_session_and_the_pushed_user_context() {
    let script = r#"printf '{"user":"%s","acting":"%s","module":"%s","uuid":"%s","endpoint":"%s"}' \
        "$SESSIOND_USER" "$SESSIOND_ACTING_USER" "$SESSIOND_MODULE_ID" "$SESSIOND_SESSION_UUID" "$SESSIOND_ENDPOINT""#;
    let server = server_with(&[("whoami", "10s", script)], &Held::default(), |_| {}).await;
    let mut sessions = server.sessions().await;
    let mut contexts = UserContextServiceClient::new(server.channel().await);
    let opened = sessions
        .open_clientless_session(OpenClientlessSessionRequest {
            user: "ADMIN".into(),
        })
        .await
        .unwrap()
        .into_inner();
    contexts
        .push_user_context(PushUserContextRequest {
            session_id: opened.session_id,
            user: "R41".into(),
        })
        .await
        .unwrap();
    open_module(&mut sessions, opened.session_id, "whoami", json!(null))
        .await
        .unwrap();
    let response = return_value(&mut sessions, opened.session_id, "whoami", seconds(10))
        .await
        .unwrap();
    assert_eq!(response.acting_user, "R41");
    let seen = value_of(&response);
    assert_eq!(seen["user"], "ADMIN");
    assert_eq!(seen["acting"], "R41");
    assert_eq!(seen["module"], "whoami");
    assert_eq!(seen["uuid"], opened.session_uuid.as_str());
    assert_eq!(seen["endpoint"], server.endpoint().as_str());
}

#[tokio::test]
async fn parameters_round_trip_through_an_exec_module() {
    let server = server_with(&[("echo", "10s", "cat")], &Held::default(), |_| {}).await;
    let mut sessions = server.sessions().await;
    let session_id = open_session(&mut sessions, "R41").await;
    let parameters = json!({"n": 42, "ratio": 0.25, "name": "R41", "tags": ["a", "b"], "deep": {"ok": true, "nothing": null}});
    open_module(&mut sessions, session_id, "echo", parameters.clone())
        .await
        .unwrap();
    let echoed = value_of(
        &return_value(&mut sessions, session_id, "echo", seconds(10))
            .await
            .unwrap(),
    );
    assert_eq!(echoed, parameters);
}

#[tokio::test]
async fn every_kind_of_exec_failure_is_reported_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let not_executable = dir.path().join("not-executable");
    std::fs::write(&not_executable, "#!/bin/sh\necho 1\n").unwrap();
    let mut text = std::fs::read_to_string(manifest(
        dir.path(),
        &[
            ("exits", "10s", "echo 'lost the report' >&2; exit 3"),
            ("killed", "10s", "kill -9 $$"),
            ("garbled", "10s", "echo 'not json'"),
            ("sleepy", "1s", "echo 'about to sleep' >&2; sleep 30"),
            ("silent", "10s", "true"),
        ],
    ))
    .unwrap();
    text.push_str("[modules.unstartable]\ncommand = [\"./not-executable\"]\n");
    text.push_str(
        "[modules.capped]\ncommand = [\"sh\", \"-c\", \"head -c 5000 /dev/zero\"]\n\
         max_output_bytes = 100\n",
    );
    let path = dir.path().join("modules.toml");
    std::fs::write(&path, text).unwrap();
    let server = TestServer::build_in(
        dir,
        |config| config.modules = Some(path),
        |b| b.module("faulty", Faulty),
    )
    .await;
    let mut sessions = server.sessions().await;
    let session_id = open_session(&mut sessions, "R41").await;

    let mut outcome = async |module: &str, parameters: serde_json::Value| {
        open_module(&mut sessions, session_id, module, parameters)
            .await
            .unwrap();
        return_value(&mut sessions, session_id, module, seconds(30))
            .await
            .unwrap()
    };

    let exits = outcome("exits", json!(null)).await;
    assert_eq!(exits.state(), RunState::Failed);
    let failure = exits.failure.unwrap();
    assert_eq!(failure.kind(), ModuleFailureKind::ExitStatus);
    assert_eq!(failure.exit_code, Some(3));
    assert!(
        failure.stderr_tail.contains("lost the report"),
        "{failure:?}"
    );

    let killed = outcome("killed", json!(null)).await.failure.unwrap();
    assert_eq!(killed.kind(), ModuleFailureKind::Signal);
    assert_eq!(killed.signal, Some(9));

    let garbled = outcome("garbled", json!(null)).await.failure.unwrap();
    assert_eq!(garbled.kind(), ModuleFailureKind::InvalidOutput);

    let capped = outcome("capped", json!(null)).await.failure.unwrap();
    assert_eq!(capped.kind(), ModuleFailureKind::OutputTooLarge);

    let sleepy = outcome("sleepy", json!(null)).await.failure.unwrap();
    assert_eq!(sleepy.kind(), ModuleFailureKind::Timeout);
    assert!(sleepy.stderr_tail.contains("about to sleep"), "{sleepy:?}");

    let unstartable = outcome("unstartable", json!(null)).await.failure.unwrap();
    assert_eq!(unstartable.kind(), ModuleFailureKind::SpawnFailed);

    let silent = outcome("silent", json!(null)).await;
    assert_eq!(
        value_of(&silent),
        serde_json::Value::Null,
        "empty output is null"
    );

    let faulty = outcome("faulty", json!(null)).await.failure.unwrap();
    assert_eq!(faulty.kind(), ModuleFailureKind::Error);
    assert_eq!(faulty.message, "no such project");

    let panicked = outcome("faulty", json!({"panic": true})).await;
    assert_eq!(panicked.state(), RunState::Failed);
    assert!(panicked.failure.unwrap().message.contains("panicked"));
    // The server survived all of it.
    open_session(&mut sessions, "R41").await;
}

#[tokio::test]
async fn a_value_not_ready_in_time_is_still_running_and_comes_later() {
    let held = Held::default();
    let server = server_with(&[], &held, |_| {}).await;
    let mut sessions = server.sessions().await;
    let session_id = open_session(&mut sessions, "R41").await;
    let run_id = open_module(&mut sessions, session_id, "held", json!(null))
        .await
        .unwrap();

    let status = assert_error(
        return_value(&mut sessions, session_id, "held", millis(100)).await,
        Code::DeadlineExceeded,
        "MODULE_STILL_RUNNING",
    );
    assert_eq!(metadata(&status, "run_id"), Some(run_id.to_string()));
    // Giving up did not cancel the run: it concludes once released.
    held.release(1);
    let response = return_value(&mut sessions, session_id, "held", seconds(30))
        .await
        .unwrap();
    assert_eq!(response.run_id, run_id);
    assert_eq!(value_of(&response)["released"], true);
    assert!(response.end_time.is_some());
}

#[tokio::test]
async fn a_waiter_is_answered_with_the_record_as_stored() {
    let held = Held::default();
    let server = server_with(&[], &held, |_| {}).await;
    let mut sessions = server.sessions().await;
    let session_id = open_session(&mut sessions, "R41").await;
    let run_id = open_module(&mut sessions, session_id, "held", json!({"project": 7}))
        .await
        .unwrap();
    let waiter = tokio::spawn({
        let mut sessions = sessions.clone();
        async move { return_value(&mut sessions, session_id, "held", seconds(30)).await }
    });
    // Lets the waiter start waiting, so that it is woken by the run's
    // conclusion rather than finding it concluded; either way it must get
    // exactly what the store holds.
    tokio::time::sleep(Duration::from_millis(200)).await;
    held.release(1);

    let waited = waiter.await.unwrap().unwrap();
    assert_eq!(waited.run_id, run_id);
    assert_eq!(waited.state(), RunState::Succeeded);
    let stored = return_value(&mut sessions, session_id, "held", None)
        .await
        .unwrap();
    assert_eq!(waited, stored);
}

#[tokio::test]
async fn a_wait_never_outlasts_the_callers_own_deadline() {
    let held = Held::default();
    let server = server_with(&[], &held, |_| {}).await;
    let mut sessions = server.sessions().await;
    let session_id = open_session(&mut sessions, "R41").await;
    open_module(&mut sessions, session_id, "held", json!(null))
        .await
        .unwrap();
    let mut request = tonic::Request::new(GetReturnValueRequest {
        session_id,
        module_id: "held".into(),
        timeout: seconds(3600),
    });
    request.set_timeout(Duration::from_millis(500));
    // The server answers before the caller's deadline, with its own reason.
    assert_error(
        sessions.get_return_value(request).await,
        Code::DeadlineExceeded,
        "MODULE_STILL_RUNNING",
    );
    held.release(1);
}

#[tokio::test]
async fn close_waits_for_a_running_module_to_conclude() {
    let server = server_with(
        &[("two_seconds", "30s", "sleep 2; echo '\"done\"'")],
        &Held::default(),
        |_| {},
    )
    .await;
    let mut sessions = server.sessions().await;
    let session_id = open_session(&mut sessions, "R41").await;
    open_module(&mut sessions, session_id, "two_seconds", json!(null))
        .await
        .unwrap();

    let closed = close(&mut sessions, session_id, seconds(60)).await;
    assert_eq!(closed.state(), SessionState::Ended);
    assert_eq!(closed.end_reason(), EndReason::ClosedByClient);
    // The module concluded before the session ended: its value is there,
    // readable after the end without waiting.
    let response = return_value(&mut sessions, session_id, "two_seconds", None)
        .await
        .unwrap();
    assert_eq!(value_of(&response), json!("done"));
    let ended = closed.end_time.unwrap();
    let concluded = response.end_time.unwrap();
    assert!((concluded.seconds, concluded.nanos) <= (ended.seconds, ended.nanos));
}

#[tokio::test]
async fn when_the_grace_runs_out_a_hanging_module_is_cancelled_and_killed() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("module.pid");
    let script = format!("echo $$ > {}; trap '' TERM; sleep 600", pid_file.display());
    let server = server_with(
        &[("hangs", "10m", script.as_str())],
        &Held::default(),
        |_| {},
    )
    .await;
    let mut sessions = server.sessions().await;
    let session_id = open_session(&mut sessions, "R41").await;
    open_module(&mut sessions, session_id, "hangs", json!(null))
        .await
        .unwrap();
    let pid: i32 = eventually("the module to start", || async {
        std::fs::read_to_string(&pid_file).ok()?.trim().parse().ok()
    })
    .await;

    let closed = close(&mut sessions, session_id, millis(200)).await;
    assert_eq!(closed.state(), SessionState::Ended);
    let response = return_value(&mut sessions, session_id, "hangs", None)
        .await
        .unwrap();
    assert_eq!(response.state(), RunState::Cancelled);
    assert_eq!(
        response.failure.unwrap().kind(),
        ModuleFailureKind::Cancelled
    );
    // It ignored SIGTERM, so it got SIGKILL: the process is gone.
    let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
    assert!(!alive, "module process {pid} survived the close");
}

#[tokio::test]
async fn a_closing_session_refuses_new_modules_and_every_close_returns_when_it_ended() {
    let held = Held::default();
    let server = server_with(&[], &held, |_| {}).await;
    let mut sessions = server.sessions().await;
    let session_id = open_session(&mut sessions, "R41").await;
    open_module(&mut sessions, session_id, "held", json!(null))
        .await
        .unwrap();

    let closes: Vec<_> = (0..2)
        .map(|_| {
            let mut sessions = sessions.clone();
            tokio::spawn(async move { close(&mut sessions, session_id, seconds(600)).await })
        })
        .collect();
    eventually("the session to be closing", || {
        let mut sessions = sessions.clone();
        async move {
            (session_info(&mut sessions, session_id).await.state() == SessionState::Closing)
                .then_some(())
        }
    })
    .await;
    assert_error(
        open_module(&mut sessions, session_id, "held", json!(null)).await,
        Code::FailedPrecondition,
        "SESSION_CLOSING",
    );

    held.release(1);
    for closed in closes {
        let closed = closed.await.unwrap();
        assert_eq!(closed.state(), SessionState::Ended);
        assert_eq!(closed.end_reason(), EndReason::ClosedByClient);
    }
    let response = return_value(&mut sessions, session_id, "held", None)
        .await
        .unwrap();
    assert_eq!(
        response.state(),
        RunState::Succeeded,
        "the running module concluded first"
    );
    assert_error(
        open_module(&mut sessions, session_id, "held", json!(null)).await,
        Code::FailedPrecondition,
        "SESSION_ENDED",
    );
}

#[tokio::test]
async fn runs_go_on_side_by_side_and_the_latest_run_is_the_one_read() {
    let held = Held::default();
    let server = server_with(&[], &held, |_| {}).await;
    let mut sessions = server.sessions().await;
    let session_id = open_session(&mut sessions, "R41").await;
    let first = open_module(&mut sessions, session_id, "held", json!(null))
        .await
        .unwrap();
    let second = open_module(&mut sessions, session_id, "held", json!(null))
        .await
        .unwrap();
    let other_session = open_session(&mut sessions, "R42").await;
    let third = open_module(&mut sessions, other_session, "held", json!(null))
        .await
        .unwrap();
    assert!(first < second);
    // Three runs are running at once; releasing them all concludes them all.
    held.release(3);
    let latest = return_value(&mut sessions, session_id, "held", seconds(30))
        .await
        .unwrap();
    assert_eq!(latest.run_id, second);
    let elsewhere = return_value(&mut sessions, other_session, "held", seconds(30))
        .await
        .unwrap();
    assert_eq!(elsewhere.run_id, third);
    assert_eq!(value_of(&elsewhere)["acting_user"], "R42");
}

#[tokio::test]
async fn module_requests_that_cannot_run_are_refused_with_a_reason() {
    let held = Held::default();
    let server = server_with(&[], &held, |config| {
        config.max_running_modules_per_session = 1
    })
    .await;
    let mut sessions = server.sessions().await;
    let session_id = open_session(&mut sessions, "R41").await;

    assert_error(
        open_module(&mut sessions, session_id, "no-such-module", json!(null)).await,
        Code::NotFound,
        "MODULE_NOT_FOUND",
    );
    assert_error(
        return_value(&mut sessions, session_id, "held", None).await,
        Code::NotFound,
        "MODULE_NOT_OPENED",
    );
    assert_error(
        return_value(&mut sessions, 9999, "held", None).await,
        Code::NotFound,
        "SESSION_NOT_FOUND",
    );
    let status = assert_error(
        open_module(&mut sessions, session_id, "", json!(null)).await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["module_id"]);
    let status = assert_error(
        return_value(&mut sessions, session_id, "held", seconds(7200)).await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["timeout"]);

    let interactive = sessions
        .start_session(StartSessionRequest {
            user: "R41".into(),
            client: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .session_id;
    assert_error(
        open_module(&mut sessions, interactive, "held", json!(null)).await,
        Code::FailedPrecondition,
        "SESSION_NOT_CLIENTLESS",
    );

    open_module(&mut sessions, session_id, "held", json!(null))
        .await
        .unwrap();
    let status = assert_error(
        open_module(&mut sessions, session_id, "held", json!(null)).await,
        Code::ResourceExhausted,
        "TOO_MANY_RUNNING_MODULES",
    );
    assert_eq!(metadata(&status, "scope").as_deref(), Some("session"));
    held.release(1);
    return_value(&mut sessions, session_id, "held", seconds(30))
        .await
        .unwrap();
    open_module(&mut sessions, session_id, "held", json!(null))
        .await
        .expect("a concluded run frees its place");
    held.release(1);
}

#[tokio::test]
async fn runs_and_values_survive_shutdown_and_restart() {
    let held = Held::default();
    let dir = tempfile::tempdir().unwrap();
    let path = manifest(dir.path(), &[("answer", "10s", "echo 42")]);
    let server = TestServer::build_in(
        dir,
        |config| {
            config.modules = Some(path.clone());
            config.shutdown_grace = Duration::from_millis(100);
        },
        {
            let held = held.clone();
            |b| b.module("held", held)
        },
    )
    .await;
    let mut sessions = server.sessions().await;
    let session_id = open_session(&mut sessions, "R41").await;
    open_module(&mut sessions, session_id, "answer", json!(null))
        .await
        .unwrap();
    return_value(&mut sessions, session_id, "answer", seconds(10))
        .await
        .unwrap();
    open_module(&mut sessions, session_id, "held", json!(null))
        .await
        .unwrap();
    drop(sessions);
    let dir = server.stop().await;

    let server = TestServer::start_in(dir, |config| config.modules = Some(path)).await;
    let mut sessions = server.sessions().await;
    let info = session_info(&mut sessions, session_id).await;
    assert_eq!(info.state(), SessionState::Ended);
    assert_eq!(info.end_reason(), EndReason::ServerShutdown);
    let answer = return_value(&mut sessions, session_id, "answer", None)
        .await
        .unwrap();
    assert_eq!(value_of(&answer), json!(42));
    let cut_short = return_value(&mut sessions, session_id, "held", None)
        .await
        .unwrap();
    assert_eq!(
        cut_short.state(),
        RunState::Cancelled,
        "the shutdown grace ran out"
    );
}

#[tokio::test]
async fn the_reaper_ends_idle_and_old_sessions_but_not_busy_ones() {
    let held = Held::default();
    let clock = ManualClock::new();
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::build_in(
        dir,
        |config| {
            config.idle_timeout = Some(Duration::from_secs(60));
            config.max_lifetime = Some(Duration::from_secs(3600));
            config.reaper_interval = Duration::from_millis(10);
        },
        {
            let (held, clock) = (held.clone(), Arc::clone(&clock));
            |b| b.module("held", held).clock(clock)
        },
    )
    .await;
    let mut sessions = server.sessions().await;
    let idle = open_session(&mut sessions, "R41").await;
    let busy = open_session(&mut sessions, "R42").await;
    let interactive = sessions
        .start_session(StartSessionRequest {
            user: "R43".into(),
            client: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .session_id;
    open_module(&mut sessions, busy, "held", json!(null))
        .await
        .unwrap();

    clock.advance(Duration::from_secs(120));
    let ended = eventually("the idle session to end", || {
        let mut sessions = sessions.clone();
        async move {
            let info = session_info(&mut sessions, idle).await;
            (info.state() == SessionState::Ended).then_some(info)
        }
    })
    .await;
    assert_eq!(ended.end_reason(), EndReason::IdleTimeout);
    // The pass that ended the idle session saw the busy one too.
    assert_eq!(
        session_info(&mut sessions, busy).await.state(),
        SessionState::Open
    );
    assert_eq!(
        session_info(&mut sessions, interactive).await.state(),
        SessionState::Open
    );

    // Once its module concluded, the busy session's idle clock starts then.
    held.release(1);
    return_value(&mut sessions, busy, "held", seconds(30))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(3600));
    let ended = eventually("the old session to end", || {
        let mut sessions = sessions.clone();
        async move {
            let info = session_info(&mut sessions, busy).await;
            (info.state() == SessionState::Ended).then_some(info)
        }
    })
    .await;
    assert_eq!(ended.end_reason(), EndReason::MaxLifetime);
    assert_eq!(
        session_info(&mut sessions, interactive).await.state(),
        SessionState::Open
    );
}

/// A run inherits the server's environment but not sessiond's own settings
/// (`SESSIOND_DATABASE` may carry the database's password); it gets its
/// own `SESSIOND_*` facts.
#[tokio::test]
async fn a_run_does_not_inherit_the_servers_settings() {
    let dir = tempfile::tempdir().unwrap();
    let modules = dir.path().join("modules.toml");
    std::fs::write(
        &modules,
        r#"[modules.env]
command = ["sh", "-c", 'printf "\"%s|%s|%s|%s\"" "${SESSIOND_DATABASE-unset}" "${SESSIOND_CLOSE_GRACE-unset}" "${SESSIOND_MODULE_ID-unset}" "${MODULE_VISIBLE-unset}"']
"#,
    )
    .unwrap();
    let process = ServerProcess::spawn_with_env(
        &database_url(dir.path()),
        &["--modules", modules.to_str().unwrap()],
        &[
            // The --database flag wins; the variable is only there to be
            // hidden.
            (
                "SESSIOND_DATABASE",
                "postgres://sessiond:secret@db.example/sessiond",
            ),
            ("SESSIOND_CLOSE_GRACE", "7s"),
            ("MODULE_VISIBLE", "yes"),
        ],
    )
    .await;
    let mut sessions = process.sessions().await;
    let session_id = open_session(&mut sessions, "R41").await;
    open_module(&mut sessions, session_id, "env", json!(null))
        .await
        .unwrap();
    let response = return_value(&mut sessions, session_id, "env", seconds(10))
        .await
        .unwrap();
    assert_eq!(value_of(&response), json!("unset|unset|env|yes"));
}
