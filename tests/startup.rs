//! Start-up errors of the real binary: each names the setting and its
//! cause, and leaves nothing behind.

mod common;

use std::path::Path;
use std::time::Duration;

use common::sessiond_binary;

/// Runs the binary in `dir` with `args` until it exits; its status and
/// stderr.
async fn run_in(dir: &Path, args: &[&str]) -> (std::process::ExitStatus, String) {
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(sessiond_binary())
            .args(args)
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .output(),
    )
    .await
    .expect("sessiond exits instead of serving")
    .unwrap();
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The files in `dir`.
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn an_empty_sqlite_path_is_refused_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (status, stderr) = run_in(dir.path(), &["--database", "sqlite://"]).await;
    assert!(!status.success());
    assert!(
        stderr.contains("sqlite:// needs the database file's path"),
        "{stderr}"
    );
    assert!(files(dir.path()).is_empty(), "{:?}", files(dir.path()));
}

#[tokio::test]
async fn an_address_in_use_is_named_and_no_database_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let (status, stderr) = run_in(
        dir.path(),
        &["--listen", &address, "--database", "sqlite://sessiond.db"],
    )
    .await;
    assert!(!status.success());
    assert!(
        stderr.contains(&format!("cannot listen on {address}")),
        "{stderr}"
    );
    assert!(files(dir.path()).is_empty(), "{:?}", files(dir.path()));
}

#[tokio::test]
async fn a_manifest_named_by_its_bare_file_name_runs_its_modules() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("m.toml"),
        "[modules.answer]\ncommand = [\"sh\", \"-c\", \"echo 42\"]\n",
    )
    .unwrap();
    let server = common::ServerProcess::spawn_in(
        Some(dir.path()),
        "sqlite://sessiond.db",
        &["--modules", "m.toml"],
        &[],
    )
    .await;
    let client = sessiond_client::Client::connect(server.endpoint())
        .await
        .unwrap();
    let session = client.clientless_session("R41").await.unwrap();
    session.open_module("answer").await.unwrap();
    let value = session
        .get_return_value("answer", Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(value, serde_json::json!(42));
    session.close().await.unwrap();
}
