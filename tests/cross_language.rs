//! The contract from another language: Python clients against a real
//! in-process sessiond on an ephemeral port.
//!
//! - `tests/python/contract_test.py` generates stubs from `proto/` with
//!   `grpc_tools.protoc` and exercises both services, reading the error
//!   details (`ErrorInfo`, `BadRequest`) with `grpcio-status`.
//! - `tests/python/reflect_test.py` drives `tests/python/reflect.py`, a
//!   grpcurl-style client that knows the API only through server reflection
//!   (v1alpha): `list`, `describe`, JSON `call`s and the health check.
//! - `tests/python/mtls_test.py`: a grpcio client with a client certificate
//!   (mutual TLS) against a server with a client CA; the certificates are
//!   made here (`common::pki`).
//! - `tests/python/jwt_test.py`: JWTs that Python signs with PyJWT, with the
//!   issuer key made here (`common::credentials::Issuer`), against a server
//!   that trusts its JWKS and applies `examples/policy.toml`.
//!
//! The interpreter is the one the root package's build script found and
//! checked (`build/prerequisites.rs`): `$SESSIOND_PYTHON`, else the
//! workspace's `.venv/bin/python`, importing `grpc`, `grpc_tools`,
//! `grpc_reflection`, `grpc_health`, `grpc_status`, `jwt` (PyJWT) and
//! `cryptography` (`bash .ci/run` creates such a `.venv`). Without one these
//! tests are compiled ignored, unless `SESSIOND_REQUIRE_ALL_TESTS=1`, which
//! fails the build instead.

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::TestServer;
use common::credentials::{AUDIENCE, ISSUER, Issuer};
use common::pki::{CLIENT_SUBJECT, Pki};
use sessiond::config::security::JwtConfig;
use tokio::process::Command;

/// How long one Python program may run before the test fails.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

#[tokio::test]
#[cfg_attr(
    not(has_python),
    ignore = "no Python with the packages the tests import (SESSIOND_PYTHON or .venv): see README"
)]
async fn python_stubs_exercise_the_contract() {
    let server = TestServer::start().await;
    run_python(&python(), "contract_test.py", &server, &[]).await;
}

#[tokio::test]
#[cfg_attr(
    not(has_python),
    ignore = "no Python with the packages the tests import (SESSIOND_PYTHON or .venv): see README"
)]
async fn reflection_only_client_lists_describes_and_calls() {
    let server = TestServer::start().await;
    run_python(&python(), "reflect_test.py", &server, &[]).await;
}

#[tokio::test]
#[cfg_attr(
    not(has_python),
    ignore = "no Python with the packages the tests import (SESSIOND_PYTHON or .venv): see README"
)]
async fn python_client_authenticates_with_a_client_certificate() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[[grant]]\nsubjects = [\"{CLIENT_SUBJECT}\"]\nread_sessions = \"any\"\n\
             open_clientless_sessions_for = [\"R*\"]\n"
        ),
    )
    .unwrap();
    let server = TestServer::start_in(dir, |config| {
        config.security.tls = Some(pki.server_with_client_ca());
        config.security.policy = Some(policy);
    })
    .await;
    let args = [pki.dir().as_os_str(), OsStr::new(CLIENT_SUBJECT)];
    run_python(&python(), "mtls_test.py", &server, &args).await;
}

#[tokio::test]
#[cfg_attr(
    not(has_python),
    ignore = "no Python with the packages the tests import (SESSIOND_PYTHON or .venv): see README"
)]
async fn python_signed_jwts_meet_the_example_policy() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = Issuer::new("python-key");
    let jwks = issuer.write_jwks(dir.path());
    let key = dir.path().join("issuer-key.pem");
    issuer.write_private_key(&key);
    let policy = workspace_root().join("examples/policy.toml");
    let server = TestServer::start_in(dir, |config| {
        config.security.jwt = Some(JwtConfig {
            issuer: ISSUER.to_owned(),
            audience: AUDIENCE.to_owned(),
            jwks: jwks.display().to_string(),
            subject_claim: "sub".to_owned(),
            groups_claim: "groups".to_owned(),
        });
        config.security.policy = Some(policy);
    })
    .await;
    let args = [
        key.as_os_str(),
        OsStr::new(issuer.kid()),
        OsStr::new(ISSUER),
        OsStr::new(AUDIENCE),
    ];
    run_python(&python(), "jwt_test.py", &server, &args).await;
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
            "the build script found no Python with the packages the tests import: set SESSIOND_PYTHON, or \
             create .venv (see README), then build again"
        ),
    }
}

/// Runs `tests/python/SCRIPT HOST:PORT ARGS…` against `server` and asserts
/// that it succeeded and that its last line reports `N passed, 0 failed`
/// with N > 0. On failure the panic message shows everything the program
/// printed.
async fn run_python(python: &Path, script: &str, server: &TestServer, args: &[&OsStr]) {
    let path = workspace_root().join("tests/python").join(script);
    let mut command = Command::new(python);
    command
        .arg(&path)
        .arg(server.addr.to_string())
        .args(args)
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
