//! The web console (`console/`, served at `/` on the admin listener) in a
//! real browser: headless Chromium driven by Playwright for Python
//! (`tests/console/console_test.py`), against the real `sessiond` binary
//! with authentication (static tokens), an access policy and exec modules,
//! and real data made by other gRPC clients. What the scripts check: a
//! session another client opens appears in the list (live) and one ended
//! elsewhere changes state in place; filters go into the URL; the detail
//! page shows a module's return value, a failed run's exit code and stderr,
//! the user-context stack and the timeline; ending from the console (one
//! session, and several at once) ends them, as gRPC then reads; the audit
//! view shows a verified ledger and filters events; what the caller may not
//! do is disabled with the policy's reason, and an action the server
//! refuses shows PERMISSION_DENIED with the server's message. Each view's
//! screenshot is saved (under this test's target directory; copies are in
//! `docs/console/`), with the first paint and the bytes transferred
//! (`figures.json`).
//!
//! It runs when the root package's build script found Chromium and a
//! Python with Playwright (`build/prerequisites.rs`, `cfg(has_browser)`);
//! without them it is compiled ignored, unless `SESSIOND_REQUIRE_ALL_TESTS=1`,
//! which fails the build instead. The test fails when pytest fails, skips
//! or runs nothing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// How long the browser script may run (it takes well under a minute).
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// Who may do what: the operator everything the console offers, the
/// viewer only reading sessions. The script later withdraws the operator's
/// right to end sessions and reloads the policy with SIGHUP.
const POLICY: &str = r#"
[[grant]]
subjects = ["operator"]
read_sessions = "any"
end_sessions = "any"
start_sessions_for = ["*"]
open_clientless_sessions_for = ["*"]
act_as = ["*"]
read_audit = true

[[grant]]
subjects = ["viewer"]
read_sessions = "any"
"#;

/// Two exec modules: one returns a value naming the user it acts as, one
/// fails with exit code 3 and a line on stderr.
const MODULES: &str = r#"
[modules.greeting]
command = ["sh", "-c", "printf '{\"greeting\": \"hello %s\"}' \"$SESSIOND_ACTING_USER\""]

[modules.failing]
command = ["sh", "-c", "echo 'disk full' >&2; exit 3"]
"#;

#[tokio::test]
#[cfg_attr(
    not(has_browser),
    ignore = "no Chromium, or no Python with playwright and pytest (SESSIOND_PYTHON or .venv): see README"
)]
async fn the_console_shows_and_ends_sessions_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.toml");
    let operator = common::credentials::static_token(&tokens, "operator", &[]);
    let viewer = common::credentials::static_token(&tokens, "viewer", &[]);
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let modules = dir.path().join("modules.toml");
    std::fs::write(&modules, MODULES).unwrap();
    let server = common::ServerProcess::spawn(
        &common::database_url(dir.path()),
        &[
            "--admin-listen",
            "127.0.0.1:0",
            "--tokens",
            tokens.to_str().unwrap(),
            "--policy",
            policy.to_str().unwrap(),
            "--modules",
            modules.to_str().unwrap(),
        ],
    )
    .await;
    let admin = server
        .log
        .borrow()
        .lines()
        .find_map(|line| {
            common::logged(
                "admin endpoints (/metrics, /healthz, /readyz) listening",
                line,
            )
        })
        .expect("sessiond logs its admin address");
    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    let pid = server.child.id().expect("sessiond runs").to_string();
    let console = format!("http://{admin}/");
    let endpoint = server.addr.to_string();
    let env = [
        ("SESSIOND_CONSOLE_URL", console.as_str()),
        ("SESSIOND_ENDPOINT", endpoint.as_str()),
        ("SESSIOND_PID", pid.as_str()),
        ("SESSIOND_POLICY", policy.to_str().unwrap()),
        ("SESSIOND_OPERATOR_TOKEN", operator.as_str()),
        ("SESSIOND_VIEWER_TOKEN", viewer.as_str()),
        ("SESSIOND_CHROMIUM", chromium()),
        ("SESSIOND_SCREENSHOTS", screenshots.to_str().unwrap()),
    ];
    let (success, stdout, report) = pytest(&env).await;
    let report = format!("{report}\n--- sessiond\n{}", server.log.borrow().as_str());
    let summary = common::pytest::assert_all_passed(success, &stdout, &report);
    eprintln!(
        "tests/console: {summary}; screenshots in {}",
        screenshots.display()
    );
    if let Ok(figures) = std::fs::read_to_string(screenshots.join("figures.json")) {
        eprintln!("{figures}");
    }
}

/// The workspace root (the root package's directory).
fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The Chromium the build script found.
fn chromium() -> &'static str {
    match option_env!("SESSIOND_TEST_CHROMIUM") {
        Some(chromium) => chromium,
        None => panic!("the build script found no Chromium: see README's section on the tests"),
    }
}

/// Runs the browser script with pytest, the Python client's generated
/// stubs first on `PYTHONPATH`: whether it succeeded, its stdout, and a
/// report of everything it printed.
async fn pytest(env: &[(&str, &str)]) -> (bool, String, String) {
    let python = match option_env!("SESSIOND_TEST_PYTHON") {
        Some(python) => PathBuf::from(python),
        None => panic!("the build script found no Python: see README's section on the tests"),
    };
    let mut command = Command::new(&python);
    command
        .args([
            "-m",
            "pytest",
            "tests/console/console_test.py",
            "-q",
            "-rfEs",
            "-p",
            "no:cacheprovider",
        ])
        .current_dir(workspace_root())
        .env("PYTHONPATH", workspace_root().join("clients/python/src"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(RUN_TIMEOUT, command.output())
        .await
        .unwrap_or_else(|_| panic!("the browser test did not finish within {RUN_TIMEOUT:?}"))
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", python.display()));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let report = format!(
        "pytest tests/console/console_test.py exited with {}\n--- stdout\n{stdout}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), stdout, report)
}
