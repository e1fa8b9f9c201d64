//! PostgreSQL for the tests: a fresh, empty database per test.
//!
//! The server is the one `$SESSIOND_TEST_POSTGRES_URL` names (a superuser's
//! URL; `bash .ci/run` starts a throwaway cluster and exports it).
//! Otherwise, when PostgreSQL's `initdb` and `pg_ctl` are found (on `PATH`
//! or in `/usr/lib/postgresql/*/bin`), each test process starts its own
//! throwaway cluster in a temporary directory on a free port — as the
//! `postgres` account through `runuser` when the tests run as root, which
//! PostgreSQL refuses to run as — and a watchdog process stops it
//! (`pg_ctl stop -m immediate`) and deletes its directory once the test
//! process has exited, however it exits.
//!
//! Databases are created with `psql`. Without a server (or without `psql`)
//! the tests that need one are skipped with a message, unless
//! `SESSIOND_REQUIRE_ALL_TESTS=1`, which makes them fail instead.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The environment variable naming an existing server.
pub const URL_ENV: &str = "SESSIOND_TEST_POSTGRES_URL";

/// How many free ports to try before giving up on starting a cluster.
const START_ATTEMPTS: usize = 5;

/// A server the tests may create databases on.
#[derive(Debug)]
struct Server {
    /// A superuser's URL (its database is only used to create others).
    admin_url: String,
    /// The `psql` that creates databases.
    psql: PathBuf,
}

/// The server of this test process, found or started once; `Err` says why
/// there is none.
fn server() -> &'static Result<Server, String> {
    static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
    SERVER.get_or_init(|| {
        let psql = find_program("psql")?;
        let admin_url = match std::env::var(URL_ENV) {
            Ok(url) if !url.is_empty() => url,
            _ => start_cluster()?,
        };
        Ok(Server { admin_url, psql })
    })
}

/// Whether skipping is forbidden (`SESSIOND_REQUIRE_ALL_TESTS=1`).
fn require_all_tests() -> bool {
    std::env::var("SESSIOND_REQUIRE_ALL_TESTS").is_ok_and(|value| value == "1")
}

/// The URL of a new, empty database for `test`, or `None` (after saying
/// why) when there is no PostgreSQL and skipping is allowed.
///
/// # Panics
/// When there is no PostgreSQL and `SESSIOND_REQUIRE_ALL_TESTS=1`, or when
/// the database cannot be created.
pub async fn fresh_database(test: &str) -> Option<String> {
    let test = test.to_owned();
    tokio::task::spawn_blocking(move || fresh_database_blocking(&test))
        .await
        .expect("creating a test database")
}

fn fresh_database_blocking(test: &str) -> Option<String> {
    let server = match server() {
        Ok(server) => server,
        Err(problem) => {
            assert!(
                !require_all_tests(),
                "SESSIOND_REQUIRE_ALL_TESTS=1 and there is no PostgreSQL for {test}: {problem}"
            );
            eprintln!(
                "SKIPPED {test}: no PostgreSQL: {problem}. Set {URL_ENV} to a superuser's URL, \
                 install PostgreSQL's server (initdb, pg_ctl) and psql, or run `bash .ci/run`."
            );
            return None;
        }
    };
    let name = format!("sessiond_test_{}", uuid::Uuid::now_v7().simple());
    let output = Command::new(&server.psql)
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &server.admin_url])
        .args(["-c", &format!("CREATE DATABASE {name}")])
        .stdin(Stdio::null())
        .output()
        .expect("running psql");
    assert!(
        output.status.success(),
        "creating database {name} for {test} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(with_database(&server.admin_url, &name))
}

/// `url` naming database `name` instead of its own.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// `name` on `PATH`, else in the newest `/usr/lib/postgresql/*/bin`.
fn find_program(name: &str) -> Result<PathBuf, String> {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| {
            dir.filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
                .collect()
        })
        .unwrap_or_default();
    // Newest first: "15" before "9.6"
    versions.sort_by_key(|dir| {
        let version = dir
            .parent()
            .and_then(Path::file_name)
            .and_then(|v| v.to_str())
            .and_then(|v| v.split('.').next())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0);
        std::cmp::Reverse(version)
    });
    on_path
        .into_iter()
        .chain(versions)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| format!("`{name}` is neither on PATH nor in /usr/lib/postgresql/*/bin"))
}

/// Whether this process runs as root.
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// A command running `program` as the account that owns the cluster: the
/// `postgres` account when we are root, else ourselves.
fn as_cluster_owner(program: &Path, as_root: bool) -> Command {
    if as_root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// Runs `command`; `Err` with its output when it fails.
fn run(mut command: Command, what: &str) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// A TCP port nobody listens on right now.
fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// Starts a throwaway cluster for this test process; returns its
/// superuser's URL.
fn start_cluster() -> Result<String, String> {
    let initdb = find_program("initdb")?;
    let pg_ctl = find_program("pg_ctl")?;
    let as_root = is_root();
    let dir = tempfile::Builder::new()
        .prefix("sessiond-pg-")
        .tempdir()
        .map_err(|e| format!("cannot create a directory for the cluster: {e}"))?
        .keep();
    let data = dir.join("data");
    spawn_watchdog(&pg_ctl, &data, &dir, as_root)?;
    if as_root {
        let mut chown = Command::new("chown");
        chown.arg("postgres:").arg(&dir);
        run(
            chown,
            "chown postgres: (PostgreSQL refuses to run as root; is there a postgres account?)",
        )?;
    }
    let mut init = as_cluster_owner(&initdb, as_root);
    init.arg("-D")
        .arg(&data)
        .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C"])
        .arg("--no-sync");
    run(init, "initdb")?;
    let mut last_error = String::new();
    for _ in 0..START_ATTEMPTS {
        let port = free_port()?;
        let mut start = as_cluster_owner(&pg_ctl, as_root);
        start
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.join("server.log"))
            .args(["-w", "-t", "60", "-o"])
            .arg(format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
                dir.display()
            ))
            .arg("start");
        match run(start, "pg_ctl start") {
            Ok(()) => return Ok(format!("postgres://postgres@127.0.0.1:{port}/postgres")),
            Err(error) => last_error = error,
        }
    }
    let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
    Err(format!("{last_error}\nserver log:\n{log}"))
}

/// Starts a process, in its own process group (so a Ctrl-C to the tests
/// does not stop it), that waits for this test process to exit, then
/// stops the cluster in `data` and deletes `dir`.
fn spawn_watchdog(pg_ctl: &Path, data: &Path, dir: &Path, as_root: bool) -> Result<(), String> {
    const SCRIPT: &str = r#"
        while kill -0 "$1" 2>/dev/null; do sleep 1; done
        if [ "$5" = root ]; then
            runuser -u postgres -- "$2" -D "$3" stop -m immediate
        else
            "$2" -D "$3" stop -m immediate
        fi
        rm -rf "$4"
    "#;
    Command::new("sh")
        .args(["-c", SCRIPT, "sessiond-pg-watchdog"])
        .arg(std::process::id().to_string())
        .arg(pg_ctl)
        .arg(data)
        .arg(dir)
        .arg(if as_root { "root" } else { "user" })
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map(drop)
        .map_err(|e| format!("cannot start the cluster's watchdog: {e}"))
}
