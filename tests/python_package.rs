//! The Python client (`clients/python`, package `sessiond`) checked from
//! `cargo test`, so that CI runs it:
//!
//! - its pytest suite (`clients/python/tests`), against real `sessiond`
//!   binaries its fixtures start (this workspace's, built here and handed
//!   over as `SESSIOND_BIN`); it must pass, and run tests, and skip none;
//! - its generated code (`clients/python/src/sessiond/v1`) against what the
//!   pinned grpcio-tools makes of `proto/` now
//!   (`clients/python/tools/generate.py --check`);
//! - its types: `mypy --strict` over the package, its tests, examples and
//!   benchmark (settings in `clients/python/pyproject.toml`).
//!
//! They run the package from its source tree (`PYTHONPATH`), whatever copy
//! is installed, with the interpreter the root package's build script
//! checked (`build/prerequisites.rs`, `cfg(has_python_client)`): it must
//! import the package's dependencies, pytest and mypy, and have the pinned
//! grpcio-tools (`pip install -e ./clients/python -r
//! clients/python/requirements-dev.txt`; `bash .ci/run` does it). Without
//! one they are compiled ignored, unless `SESSIOND_REQUIRE_ALL_TESTS=1`,
//! which fails the build instead.

mod common;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// How long one Python program may run before the test fails (the pytest
/// suite takes well under a minute).
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

#[tokio::test]
#[cfg_attr(
    not(has_python_client),
    ignore = "no Python with the Python client's dependencies and dev tools (SESSIOND_PYTHON or .venv): see README"
)]
async fn the_python_packages_pytest_suite_passes_against_the_real_server() {
    let binary = common::sessiond_binary();
    let output = run(
        &[
            "-m",
            "pytest",
            "clients/python/tests",
            "-q",
            "-rfEs",
            "-p",
            "no:cacheprovider",
        ],
        &[("SESSIOND_BIN", binary.as_os_str().to_owned())],
    )
    .await;
    let summary = common::pytest::assert_all_passed(output.success, &output.stdout, &output.report);
    eprintln!("clients/python/tests: {summary}");
}

#[tokio::test]
#[cfg_attr(
    not(has_python_client),
    ignore = "no Python with the Python client's dependencies and dev tools (SESSIOND_PYTHON or .venv): see README"
)]
async fn the_python_packages_generated_code_matches_the_contract() {
    let output = run(&["clients/python/tools/generate.py", "--check"], &[]).await;
    assert!(output.success, "{}", output.report);
}

#[tokio::test]
#[cfg_attr(
    not(has_python_client),
    ignore = "no Python with the Python client's dependencies and dev tools (SESSIOND_PYTHON or .venv): see README"
)]
async fn the_python_package_type_checks() {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mypy-cache");
    let mut args = vec![OsString::from("-m"), "mypy".into(), "--cache-dir".into()];
    args.push(cache.into_os_string());
    let args: Vec<&std::ffi::OsStr> = args.iter().map(OsString::as_os_str).collect();
    let output = run_in(&workspace_root().join("clients/python"), &args, &[]).await;
    assert!(output.success, "{}", output.report);
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
            "the build script found no Python for the Python client's checks: set SESSIOND_PYTHON, \
             or create .venv (see README), then build again"
        ),
    }
}

/// What a Python program did.
struct Output {
    success: bool,
    stdout: String,
    /// Everything it printed, and how it ended, for assertion messages.
    report: String,
}

/// Runs `python ARGS…` in the workspace root.
async fn run(args: &[&str], env: &[(&str, OsString)]) -> Output {
    let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    run_in(workspace_root(), &args, env).await
}

/// Runs `python ARGS…` in `dir` with the package's source tree first on
/// `PYTHONPATH`.
async fn run_in(dir: &Path, args: &[&std::ffi::OsStr], env: &[(&str, OsString)]) -> Output {
    let python = python();
    let source = workspace_root().join("clients/python/src");
    let mut path = vec![source];
    path.extend(
        std::env::var_os("PYTHONPATH")
            .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .unwrap_or_default(),
    );
    let mut command = Command::new(&python);
    command
        .args(args)
        .current_dir(dir)
        .env(
            "PYTHONPATH",
            std::env::join_paths(path).expect("paths without separators"),
        )
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let shown = args
        .iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let output = tokio::time::timeout(RUN_TIMEOUT, command.output())
        .await
        .unwrap_or_else(|_| panic!("{shown} did not finish within {RUN_TIMEOUT:?}"))
        .unwrap_or_else(|error| panic!("cannot run {} {shown}: {error}", python.display()));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report = format!(
        "{} {shown} exited with {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        python.display(),
        output.status
    );
    Output {
        success: output.status.success(),
        stdout,
        report,
    }
}

#[test]
fn pytest_summaries_are_read() {
    use common::pytest::counts;
    assert_eq!(
        counts("57 passed, 2 skipped, 1 warning in 21.37s"),
        [
            (57, "passed".to_owned()),
            (2, "skipped".to_owned()),
            (1, "warning".to_owned())
        ]
    );
    assert_eq!(
        counts("===== 1 failed, 3 passed in 0.12s ====="),
        [(1, "failed".to_owned()), (3, "passed".to_owned())]
    );
}
