//! A run's processes end with the run: a child a module leaves behind dies
//! when the run concludes, when its session closes, and when sessiond is
//! killed (at once, by its warden; at the next start if the warden died
//! too); a module's value is what it printed before it exited, whoever
//! still holds its stdout; and a module runs as the account its manifest
//! entry names.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{ServerProcess, TestServer, database_url, eventually};
use sessiond_client::{Client, Error, ModuleFailureKind};

/// Writes a manifest into `dir` whose modules are `sh -c SCRIPT`, each with
/// the extra TOML lines given.
fn manifest(dir: &Path, modules: &[(&str, &str, &str)]) -> PathBuf {
    let mut text = String::new();
    for (id, script, extra) in modules {
        text.push_str(&format!(
            "[modules.{id:?}]\ncommand = [\"sh\", \"-c\", {script:?}]\ntimeout = \"60s\"\n{extra}\n"
        ));
    }
    let path = dir.join("modules.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Whether process `pid` is alive (a zombie, dead but not yet reaped by
/// its new parent, is not).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.bytes().next());
        !matches!(state, Some(b'Z' | b'X'))
    })
}

/// The pid a module wrote to `file`, once it did.
async fn pid_in(file: &Path) -> i32 {
    eventually("the module to write its pid", || async {
        std::fs::read_to_string(file).ok()?.trim().parse().ok()
    })
    .await
}

/// Waits until process `pid` is gone (SIGKILL is delivered, not awaited).
async fn gone(pid: i32, what: &str) {
    eventually(what, || async { (!alive(pid)).then_some(()) }).await;
}

/// Kills what a failed test left running.
struct Cleanup(Vec<i32>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for &pid in &self.0 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// A module that exits at once, leaving a child that holds its stdout.
#[tokio::test]
async fn a_module_is_over_when_it_exits_and_its_child_dies_with_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let child_pid = dir.path().join("child.pid");
    let script = format!(
        "sleep 300 & echo $! > {}; echo '\"done\"'",
        child_pid.display()
    );
    let path = manifest(dir.path(), &[("leaves-a-child", &script, "")]);
    let server = TestServer::build_in(dir, |config| config.modules = Some(path), |b| b).await;
    let client = Client::connect(server.endpoint()).await.unwrap();
    let session = client.clientless_session("R41").await.unwrap();

    session.open_module("leaves-a-child").await.unwrap();
    let value = session
        .get_return_value("leaves-a-child", Duration::from_secs(20))
        .await
        .expect("the run concluded when the module exited");
    assert_eq!(value, "done", "its value is what it printed");
    let child = pid_in(&child_pid).await;
    let _cleanup = Cleanup(vec![child]);
    gone(child, "the module's child to die with the run").await;
}

/// A module still running when its session closes, whose child ignores
/// SIGTERM.
#[tokio::test]
async fn a_child_that_ignores_sigterm_does_not_outlive_its_sessions_close() {
    let dir = tempfile::tempdir().unwrap();
    let child_pid = dir.path().join("child.pid");
    let script = format!(
        "(trap '' TERM; exec sleep 300) & echo $! > {}; exec sleep 600",
        child_pid.display()
    );
    let path = manifest(dir.path(), &[("hangs", &script, "")]);
    let server = TestServer::build_in(dir, |config| config.modules = Some(path), |b| b).await;
    let client = Client::connect(server.endpoint()).await.unwrap();
    let session = client.clientless_session("R41").await.unwrap();
    session.open_module("hangs").await.unwrap();
    let child = pid_in(&child_pid).await;
    let _cleanup = Cleanup(vec![child]);
    assert!(alive(child));

    session
        .close_with_grace(Duration::from_millis(200))
        .await
        .unwrap();
    gone(child, "the child to die with its session").await;
}

/// Starts the real binary with a module that leaves a child behind, opens
/// it, and returns the server, the run's session and the module's and its
/// child's pids.
async fn server_with_a_run(
    dir: &Path,
    args: &[&str],
) -> (ServerProcess, sessiond_client::SessionId, i32, i32) {
    let (leader_pid, child_pid) = (dir.join("leader.pid"), dir.join("child.pid"));
    let script = format!(
        "sleep 300 & echo $! > {}; echo $$ > {}; wait",
        child_pid.display(),
        leader_pid.display()
    );
    manifest(dir, &[("long", &script, "")]);
    let process = ServerProcess::spawn(&database_url(dir), args).await;
    let client = Client::connect(process.endpoint()).await.unwrap();
    let session = client.open_clientless_session("R41").await.unwrap();
    client
        .open_module(session.session_id, "long", serde_json::Value::Null)
        .await
        .unwrap();
    let (leader, child) = (pid_in(&leader_pid).await, pid_in(&child_pid).await);
    (process, session.session_id, leader, child)
}

/// The pid of the warden of sessiond's process `server`.
fn warden_of(server: u32) -> i32 {
    let children = std::fs::read_dir("/proc").unwrap().filter_map(|entry| {
        let pid: i32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let parent: u32 = stat.rsplit_once(") ")?.1.split(' ').nth(1)?.parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let named = cmdline
            .split(|&byte| byte == 0)
            .any(|arg| arg == sessiond::modules::warden::WARDEN_NAME.as_bytes());
        (parent == server && named).then_some(pid)
    });
    let wardens: Vec<i32> = children.collect();
    assert_eq!(wardens.len(), 1, "sessiond {server} should have one warden");
    wardens[0]
}

/// kill -9 of the real binary: its warden kills the run's whole process
/// group at once, the module and the child it left behind.
#[tokio::test]
async fn a_crash_kills_every_process_of_a_run_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("modules.toml");
    let args = ["--modules", path.to_str().unwrap(), "--admin-listen", ""];
    let (mut process, _, leader, child) = server_with_a_run(dir.path(), &args).await;
    let _cleanup = Cleanup(vec![leader, child]);
    let warden = warden_of(process.child.id().unwrap());

    process.child.kill().await.unwrap();
    gone(leader, "the module to die with sessiond").await;
    gone(child, "the module's child to die with sessiond").await;
    gone(warden, "the warden to exit").await;
}

/// kill -9 of the warden and then of the real binary: the run's processes
/// survive both, and the next start kills them before it records the run
/// as interrupted.
#[tokio::test]
async fn after_a_crash_no_process_of_a_run_survives_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("modules.toml");
    let args = ["--modules", path.to_str().unwrap(), "--admin-listen", ""];
    let (mut process, session_id, leader, child) = server_with_a_run(dir.path(), &args).await;
    let _cleanup = Cleanup(vec![leader, child]);
    let warden = warden_of(process.child.id().unwrap());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(warden),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    gone(warden, "the warden to die").await;
    process.child.kill().await.unwrap();
    process.exited().await;
    assert!(
        alive(leader) && alive(child),
        "only the next start can find them"
    );

    let restarted = ServerProcess::spawn(&database_url(dir.path()), &args).await;
    gone(leader, "the next start to kill the module").await;
    gone(child, "the next start to kill the module's child").await;
    let client = Client::connect(restarted.endpoint()).await.unwrap();
    let Err(Error::ModuleFailed { failure, .. }) = client
        .get_return_value(session_id, "long", Duration::ZERO)
        .await
    else {
        panic!("the run should have failed");
    };
    assert_eq!(failure.kind, Some(ModuleFailureKind::Interrupted));
}

/// A module's `user` (sessiond runs as root here; elsewhere the manifest is
/// refused at start).
#[tokio::test]
async fn a_module_runs_as_the_user_its_entry_names() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"printf '"%s:%s:%s"' "$(id -u)" "$(id -g)" "$(id -G)""#;
    let path = manifest(dir.path(), &[("whoami", script, "user = \"nobody\"")]);
    if !nix::unistd::Uid::effective().is_root() {
        let config = sessiond::Config {
            database: database_url(dir.path()),
            modules: Some(path),
            ..sessiond::Config::default()
        };
        let error = sessiond::Sessiond::open(config).await.unwrap_err();
        assert!(error.to_string().contains("runs as root"), "{error}");
        return;
    }
    // The run's working directory is the manifest's: nobody must enter it.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let id = |flag: &str| {
        let out = std::process::Command::new("id")
            .args([flag, "nobody"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let expected = format!("{}:{}:{}", id("-u"), id("-g"), id("-g"));
    let server = TestServer::build_in(dir, |config| config.modules = Some(path), |b| b).await;
    let client = Client::connect(server.endpoint()).await.unwrap();
    let session = client.clientless_session("R41").await.unwrap();
    session.open_module("whoami").await.unwrap();
    let value = session
        .get_return_value("whoami", Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(value, expected.as_str(), "nobody's ids, no other group");
}
