//! The tests' prerequisites beyond Rust, decided when the root package is
//! built, so that a test that cannot run on this machine is compiled
//! `#[ignore]`d and `cargo test` counts it as ignored, not as passed:
//!
//! - `cfg(has_python)`: a Python that imports the packages the
//!   cross-language tests use ([`PYTHON_MODULES`]): `$SESSIOND_PYTHON`,
//!   else the workspace's `.venv/bin/python`. Its path reaches the tests as
//!   `SESSIOND_TEST_PYTHON` (`option_env!`), so they run the interpreter
//!   checked here.
//! - `cfg(has_python_client)`: that Python also runs the Python client's
//!   checks (`tests/python_package.rs`): it imports the package from
//!   `clients/python/src` (so it has the package's dependencies, at the
//!   versions its generated code needs) and [`PYTHON_CLIENT_TOOLS`], and
//!   has the grpcio-tools that `clients/python/requirements-dev.txt` pins
//!   (`pip install -e ./clients/python -r clients/python/requirements-dev.txt`).
//! - `cfg(has_browser)`: that Python also drives a browser for the web
//!   console's test (`tests/console.rs`): it imports `playwright` and
//!   `pytest`, and Chromium is at `$SESSIOND_CHROMIUM`, else
//!   `/usr/bin/chromium` (Debian's `chromium`; `playwright install` is not
//!   used). Its path reaches the test as `SESSIOND_TEST_CHROMIUM`.
//! - `cfg(has_postgres)`: `psql`, and a server to create databases on:
//!   `$SESSIOND_TEST_POSTGRES_URL`, else `initdb` and `pg_ctl` to start a
//!   throwaway cluster with, found as `sessiond_testkit::postgres` finds
//!   them at run time (the same file: `testkit/src/programs.rs`).
//!
//! With `SESSIOND_REQUIRE_ALL_TESTS=1` (`.ci/run` sets it) a missing
//! prerequisite fails the build instead.
//!
//! The answer is kept until cargo reruns the build script: when one of
//! those variables changes, or `.venv`'s interpreter or installed packages
//! do. Creating `.venv` where there was none is not noticed (cargo cannot
//! watch a path that does not exist without rerunning every time): set
//! `SESSIOND_PYTHON` or `touch build.rs` then. `PATH` is not watched either.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[path = "../testkit/src/programs.rs"]
mod programs;

/// The Python modules the cross-language tests import.
/// `jwt` is PyJWT; with `cryptography` it signs the ES256 tokens of
/// `tests/python/jwt_test.py`. Keep in step with `.ci/run`'s `PY_MODULES`.
const PYTHON_MODULES: &str =
    "grpc, grpc_tools, grpc_reflection, grpc_health, grpc_status, jwt, cryptography";

/// The dev tools the Python client's checks run, besides the package's own
/// dependencies. Keep in step with `clients/python/requirements-dev.txt`.
const PYTHON_CLIENT_TOOLS: &str = "pytest, mypy";

/// The Python modules the console's browser test imports.
const BROWSER_MODULES: &str = "playwright.sync_api, pytest";

/// Where Debian's `chromium` package puts the browser.
const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";

/// The environment variable that forbids ignoring a test.
const REQUIRE_ALL_TESTS: &str = "SESSIOND_REQUIRE_ALL_TESTS";

/// Emits `cfg(has_python)` and `cfg(has_postgres)` for what this machine
/// has, and what cargo should watch to decide again.
///
/// # Panics
/// When `SESSIOND_REQUIRE_ALL_TESTS=1` and a prerequisite is missing.
pub fn detect() {
    println!("cargo::rustc-check-cfg=cfg(has_python)");
    println!("cargo::rustc-check-cfg=cfg(has_postgres)");
    println!("cargo::rustc-check-cfg=cfg(has_python_client)");
    println!("cargo::rustc-check-cfg=cfg(has_browser)");
    println!("cargo::rerun-if-changed=clients/python/requirements-dev.txt");
    for var in [
        "SESSIOND_PYTHON",
        "SESSIOND_CHROMIUM",
        "SESSIOND_TEST_POSTGRES_URL",
        REQUIRE_ALL_TESTS,
    ] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    let require_all = std::env::var(REQUIRE_ALL_TESTS).is_ok_and(|value| value == "1");
    let mut missing = Vec::new();
    match python() {
        Ok(python) => {
            println!("cargo::rustc-cfg=has_python");
            println!("cargo::rustc-env=SESSIOND_TEST_PYTHON={}", python.display());
            match python_client(&python) {
                Ok(()) => println!("cargo::rustc-cfg=has_python_client"),
                Err(problem) => missing.push(format!(
                    "the Python client's tests need {} to import the package (clients/python) \
                     and {PYTHON_CLIENT_TOOLS}, with the pinned grpcio-tools: {problem}",
                    python.display()
                )),
            }
            match browser(&python) {
                Ok(chromium) => {
                    println!("cargo::rustc-cfg=has_browser");
                    println!(
                        "cargo::rustc-env=SESSIOND_TEST_CHROMIUM={}",
                        chromium.display()
                    );
                }
                Err(problem) => missing.push(format!(
                    "the web console's browser test needs Chromium and {} with {BROWSER_MODULES} \
                     (pip install playwright pytest; apt-get install chromium): {problem}",
                    python.display()
                )),
            }
        }
        Err(problem) => missing.push(format!(
            "the cross-language tests and the Python client's need a Python with \
             {PYTHON_MODULES}: {problem}"
        )),
    }
    match postgres() {
        Ok(()) => println!("cargo::rustc-cfg=has_postgres"),
        Err(problem) => missing.push(format!("the PostgreSQL tests need PostgreSQL: {problem}")),
    }
    if require_all && !missing.is_empty() {
        panic!(
            "{REQUIRE_ALL_TESTS}=1 and {}. Run `bash .ci/run`, which provides both, or see \
             README's section on the tests.",
            missing.join("; and ")
        );
    }
}

/// The interpreter to use, once it imported [`PYTHON_MODULES`].
fn python() -> Result<PathBuf, String> {
    let python = match std::env::var_os("SESSIOND_PYTHON").filter(|p| !p.is_empty()) {
        Some(python) => PathBuf::from(python),
        None => {
            let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
            let venv = root.join(".venv");
            let python = venv.join("bin/python");
            if !python.exists() {
                return Err(format!(
                    "SESSIOND_PYTHON is not set and there is no {}",
                    python.display()
                ));
            }
            watch_venv(&venv);
            python
        }
    };
    run_python(&python, &["-c", &format!("import {PYTHON_MODULES}")])?;
    Ok(python)
}

/// `Ok` when `python` imports the Python client from its source tree and
/// the tools its checks run, and has the pinned generator.
fn python_client(python: &Path) -> Result<(), String> {
    let imports = format!(
        "import sys; sys.path.insert(0, 'clients/python/src'); \
         import sessiond, sessiond.aio, {PYTHON_CLIENT_TOOLS}"
    );
    run_python(python, &["-c", &imports])?;
    run_python(
        python,
        &["clients/python/tools/generate.py", "--check-generator"],
    )
}

/// The Chromium to drive, once `python` imported [`BROWSER_MODULES`].
fn browser(python: &Path) -> Result<PathBuf, String> {
    let chromium = std::env::var_os("SESSIOND_CHROMIUM")
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_CHROMIUM), PathBuf::from);
    if !chromium.is_file() {
        return Err(format!("there is no {}", chromium.display()));
    }
    println!("cargo::rerun-if-changed={}", chromium.display());
    run_python(python, &["-c", &format!("import {BROWSER_MODULES}")])?;
    Ok(chromium)
}

/// Runs `python ARGS…` in the workspace root; `Err` with the last line of
/// its stderr when it fails.
fn run_python(python: &Path, args: &[&str]) -> Result<(), String> {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let output = Command::new(python)
        .args(args)
        .current_dir(root)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if output.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr
            .lines()
            .rfind(|line| !line.trim().is_empty())
            .unwrap_or("no error message");
        Err(format!("{} fails: {}", python.display(), last.trim()))
    }
}

/// Tells cargo to decide again when `venv`'s interpreter or its installed
/// packages change.
fn watch_venv(venv: &Path) {
    println!(
        "cargo::rerun-if-changed={}",
        venv.join("bin/python").display()
    );
    let packages = std::fs::read_dir(venv.join("lib"))
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok().map(|e| e.path().join("site-packages")))
        .filter(|dir| dir.is_dir());
    for dir in packages {
        println!("cargo::rerun-if-changed={}", dir.display());
    }
}

/// `Ok` when there is `psql` and a server, or the programs to start one.
fn postgres() -> Result<(), String> {
    programs::find_program("psql")?;
    if std::env::var("SESSIOND_TEST_POSTGRES_URL").is_ok_and(|url| !url.is_empty()) {
        return Ok(());
    }
    programs::find_program("initdb")
        .and_then(|_| programs::find_program("pg_ctl"))
        .map(drop)
        .map_err(|problem| format!("SESSIOND_TEST_POSTGRES_URL is not set and {problem}"))
}
