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
//! The interpreter is `$SESSIOND_PYTHON`, else the workspace's
//! `.venv/bin/python` when it exists, else `python3`; it must import `grpc`,
//! `grpc_tools`, `grpc_reflection` and `grpc_status` (`bash .ci/run` creates
//! such a `.venv`). Without one the tests are skipped with a message, unless
//! `SESSIOND_REQUIRE_ALL_TESTS=1`, which makes them fail instead.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::TestServer;
use tokio::process::Command;

/// The Python modules the programs need.
const PYTHON_MODULES: &str = "grpc, grpc_tools, grpc_reflection, grpc_status";

/// How long one Python program may run before the test fails.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

#[tokio::test]
async fn python_stubs_exercise_the_contract() {
    let Some(python) = python().await else {
        return;
    };
    let server = TestServer::start().await;
    run_python(&python, "contract_test.py", &server).await;
}

#[tokio::test]
async fn reflection_only_client_lists_describes_and_calls() {
    let Some(python) = python().await else {
        return;
    };
    let server = TestServer::start().await;
    run_python(&python, "reflect_test.py", &server).await;
}

/// The workspace root (the root package's directory).
fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The interpreter to try: `$SESSIOND_PYTHON`, `.venv/bin/python`, `python3`.
fn python_candidate() -> PathBuf {
    if let Some(python) = std::env::var_os("SESSIOND_PYTHON").filter(|p| !p.is_empty()) {
        return PathBuf::from(python);
    }
    let venv = workspace_root().join(".venv/bin/python");
    if venv.exists() {
        return venv;
    }
    PathBuf::from("python3")
}

/// Whether skipping is forbidden (`SESSIOND_REQUIRE_ALL_TESTS=1`).
fn require_all_tests() -> bool {
    std::env::var("SESSIOND_REQUIRE_ALL_TESTS").is_ok_and(|value| value == "1")
}

/// A Python interpreter with the gRPC packages, or `None` (after saying why)
/// when there is none and skipping is allowed.
async fn python() -> Option<PathBuf> {
    let python = python_candidate();
    let check = Command::new(&python)
        .args(["-c", &format!("import {PYTHON_MODULES}")])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .output()
        .await;
    let problem = match check {
        Ok(output) if output.status.success() => return Some(python),
        Ok(output) => format!(
            "{} cannot `import {PYTHON_MODULES}`: {}",
            python.display(),
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .rfind(|line| !line.trim().is_empty())
                .unwrap_or("no error message")
                .trim()
        ),
        Err(error) => format!("cannot run {}: {error}", python.display()),
    };
    assert!(
        !require_all_tests(),
        "SESSIOND_REQUIRE_ALL_TESTS=1 and {problem}"
    );
    eprintln!(
        "SKIPPED cross-language test: {problem}. Set SESSIOND_PYTHON to a Python with \
         grpcio, grpcio-tools, grpcio-reflection and grpcio-status, or run `bash .ci/run`, \
         which creates .venv."
    );
    None
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
