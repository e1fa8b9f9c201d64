//! The contract from another language: Python clients against a real
//! in-process sessiond on an ephemeral port.
//!
//! - `tests/python/contract_test.py` generates stubs from `proto/` with
//!   `grpc_tools.protoc` and exercises both services, reading the error
//!   details (`ErrorInfo`, `BadRequest`) with `grpcio-status`.
//! - `tests/python/reflect_test.py` drives `tests/python/reflect.py`, a
//!   grpcurl-style client that knows the API only through server reflection
//!   (v1alpha): `list`, `describe`, JSON `call`s and the health check.
//!
//! The interpreter is the one the root package's build script found and
//! checked (`build/prerequisites.rs`): `$SESSIOND_PYTHON`, else the
//! workspace's `.venv/bin/python`, importing `grpc`, `grpc_tools`,
//! `grpc_reflection`, `grpc_health` and `grpc_status` (`bash .ci/run`
//! creates such a `.venv`). Without one these tests are compiled ignored,
//! unless `SESSIOND_REQUIRE_ALL_TESTS=1`, which fails the build instead.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::TestServer;
use tokio::process::Command;

/// How long one Python program may run before the test fails.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

#[tokio::test]
#[cfg_attr(
    not(has_python),
    ignore = "no Python with the gRPC packages (SESSIOND_PYTHON or .venv): see README"
)]
async fn python_stubs_exercise_the_contract() {
    let server = TestServer::start().await;
    run_python(&python(), "contract_test.py", &server).await;
}

#[tokio::test]
#[cfg_attr(
    not(has_python),
    ignore = "no Python with the gRPC packages (SESSIOND_PYTHON or .venv): see README"
)]
async fn reflection_only_client_lists_describes_and_calls() {
    let server = TestServer::start().await;
    run_python(&python(), "reflect_test.py", &server).await;
}

/// The workspace root (the root package's directory).
fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The interpreter the build script checked.
///
/// # Panics
/// When it found none (the tests calling this are then ignored, unless run
/// with `--include-ignored`).
fn python() -> PathBuf {
    match option_env!("SESSIOND_TEST_PYTHON") {
        Some(python) => PathBuf::from(python),
        None => panic!(
            "the build script found no Python with the gRPC packages: set SESSIOND_PYTHON, or \
             create .venv (see README), then build again"
        ),
    }
}

/// Runs `tests/python/SCRIPT HOST:PORT` against `server` and asserts that it
/// succeeded and that its last line reports `N passed, 0 failed` with N > 0.
/// On failure the panic message shows everything the program printed.
async fn run_python(python: &Path, script: &str, server: &TestServer) {
    let path = workspace_root().join("tests/python").join(script);
    let mut command = Command::new(python);
    command
        .arg(&path)
        .arg(server.addr.to_string())
        .current_dir(workspace_root())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(RUN_TIMEOUT, command.output())
        .await
        .unwrap_or_else(|_| panic!("{script} did not finish within {RUN_TIMEOUT:?}"))
        .unwrap_or_else(|error| panic!("cannot run {} {script}: {error}", python.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report = format!(
        "{} {script} {} exited with {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        python.display(),
        server.addr,
        output.status
    );
    assert!(output.status.success(), "{report}");
    let summary = stdout.lines().last().unwrap_or_default();
    let Some((passed, failed)) = parse_summary(summary) else {
        panic!("the last line is not `N passed, M failed`\n{report}");
    };
    assert!(passed > 0 && failed == 0, "{report}");
    eprintln!("{script}: {summary}");
}

/// `(N, M)` of a line `N passed, M failed`.
fn parse_summary(line: &str) -> Option<(u32, u32)> {
    let (passed, rest) = line.trim().split_once(" passed, ")?;
    let failed = rest.strip_suffix(" failed")?;
    Some((passed.parse().ok()?, failed.parse().ok()?))
}
