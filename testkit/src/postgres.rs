//! Throwaway PostgreSQL for tests and benchmarks: find PostgreSQL's
//! programs, start a cluster in a temporary directory on a free port, and
//! create fresh databases on a server.
//!
//! Programs are looked up on `PATH`, then in the newest
//! `/usr/lib/postgresql/*/bin` (where Debian installs the server). When the
//! caller runs as root, the cluster runs as the `postgres` account through
//! `runuser`, since PostgreSQL refuses to run as root. Clusters use trust
//! authentication on 127.0.0.1 and a socket in their own directory.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub use crate::programs::find_program;

/// How many free ports to try before giving up on starting a cluster.
const START_ATTEMPTS: usize = 5;

/// A throwaway cluster. Dropping it stops the server
/// (`pg_ctl stop -m immediate`) and deletes its directory, unless
/// [`Cluster::stop_when_process_exits`] handed that to a watchdog.
#[derive(Debug)]
pub struct Cluster {
    /// Its superuser's URL, on database `postgres`.
    admin_url: String,
    /// The `pg_ctl` that started it.
    pg_ctl: PathBuf,
    /// Whether it runs as the `postgres` account.
    as_root: bool,
    /// Its directory: `data/`, `server.log` and the socket.
    dir: Option<tempfile::TempDir>,
    /// The server options it was started with (`pg_ctl -o`), for a
    /// restart on the same port.
    options: String,
}

impl Cluster {
    /// Initialises and starts a cluster in a new temporary directory whose
    /// name starts with `prefix`.
    ///
    /// # Errors
    /// When `initdb` or `pg_ctl` is missing or fails (the message has the
    /// server's log).
    pub fn start(prefix: &str) -> Result<Self, String> {
        let initdb = find_program("initdb")?;
        let pg_ctl = find_program("pg_ctl")?;
        let as_root = is_root();
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .map_err(|e| format!("cannot create a directory for the cluster: {e}"))?;
        if as_root {
            let mut chown = Command::new("chown");
            chown.arg("postgres:").arg(dir.path());
            run(
                chown,
                "chown postgres: (PostgreSQL refuses to run as root; is there a postgres account?)",
            )?;
        }
        let data = dir.path().join("data");
        let log = dir.path().join("server.log");
        let mut init = as_cluster_owner(&initdb, as_root);
        init.arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C"])
            .arg("--no-sync");
        run(init, "initdb")?;
        // From here on, dropping the cluster stops the server.
        let mut cluster = Self {
            admin_url: String::new(),
            pg_ctl,
            as_root,
            dir: Some(dir),
            options: String::new(),
        };
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            cluster.options = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
                cluster.dir().display()
            );
            match cluster.pg_ctl_start() {
                Ok(()) => {
                    cluster.admin_url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
                    return Ok(cluster);
                }
                Err(error) => last_error = error,
            }
        }
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        Err(format!("{last_error}\nserver log:\n{log}"))
    }

    /// `pg_ctl start` with the cluster's options, waiting until it accepts
    /// connections.
    fn pg_ctl_start(&self) -> Result<(), String> {
        let mut start = as_cluster_owner(&self.pg_ctl, self.as_root);
        start
            .arg("-D")
            .arg(self.dir().join("data"))
            .arg("-l")
            .arg(self.dir().join("server.log"))
            .args(["-w", "-t", "60", "-o", &self.options, "start"]);
        run(start, "pg_ctl start")
    }

    /// Stops the server (`pg_ctl stop -m fast`: connections are ended,
    /// what committed is on disk), keeping its data for
    /// [`Cluster::start_again`].
    ///
    /// # Errors
    /// When `pg_ctl` fails.
    pub fn stop(&self) -> Result<(), String> {
        let mut stop = as_cluster_owner(&self.pg_ctl, self.as_root);
        stop.arg("-D")
            .arg(self.dir().join("data"))
            .args(["-w", "stop", "-m", "fast"]);
        run(stop, "pg_ctl stop")
    }

    /// Starts the stopped server again, on the same port.
    ///
    /// # Errors
    /// When `pg_ctl` fails.
    pub fn start_again(&self) -> Result<(), String> {
        self.pg_ctl_start()
    }

    /// Its superuser's URL.
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    /// Its directory.
    ///
    /// # Panics
    /// Never: the directory is only taken by `stop_when_process_exits`,
    /// which consumes the cluster.
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("the cluster's directory").path()
    }

    /// The postmaster's pid, from `postmaster.pid`.
    pub fn postmaster_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir().join("data").join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// Keeps the cluster running for the rest of this process: a watchdog
    /// process, in its own process group (so a Ctrl-C to this process does
    /// not stop it), waits for this process to exit however it exits, then
    /// stops the cluster and deletes its directory. Returns the superuser's
    /// URL.
    ///
    /// # Errors
    /// When the watchdog cannot be started (the cluster is then stopped).
    pub fn stop_when_process_exits(mut self) -> Result<String, String> {
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
            .arg(&self.pg_ctl)
            .arg(self.dir().join("data"))
            .arg(self.dir())
            .arg(if self.as_root { "root" } else { "user" })
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start the cluster's watchdog: {e}"))?;
        // The watchdog owns the directory now.
        let _ = self.dir.take().map(tempfile::TempDir::keep);
        Ok(std::mem::take(&mut self.admin_url))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let Some(dir) = &self.dir else {
            return;
        };
        let mut stop = as_cluster_owner(&self.pg_ctl, self.as_root);
        stop.arg("-D")
            .arg(dir.path().join("data"))
            .args(["stop", "-m", "immediate"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = stop.status();
    }
}

/// Creates database `name` on the server `admin_url` names (a superuser's
/// URL) with `psql`, and returns the URL of the new database.
///
/// # Errors
/// When `psql` cannot run or fails.
pub fn create_database(psql: &Path, admin_url: &str, name: &str) -> Result<String, String> {
    let mut create = Command::new(psql);
    create
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", admin_url])
        .args(["-c", &format!("CREATE DATABASE {name}")]);
    run(create, &format!("psql CREATE DATABASE {name}"))?;
    Ok(with_database(admin_url, name))
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

/// Runs `command` with no input; `Err` with its output when it fails.
///
/// # Errors
/// When it cannot start or exits unsuccessfully.
pub fn run(mut command: Command, what: &str) -> Result<(), String> {
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

/// A TCP port nobody listens on right now.
fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("no free port: {e}"))
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn with_database_replaces_only_the_database() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres?sslmode=disable", "d1"),
            "postgres://u:p@h:5432/d1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "d2"), "postgres://h/d2");
    }
}
