//! PostgreSQL for the `pg_*` scenarios: a fresh database on the server
//! `$SESSIOND_BENCH_POSTGRES_URL` or `$SESSIOND_TEST_POSTGRES_URL` names (a
//! superuser's URL), else on a throwaway cluster started like the tests'
//! (`tests/common/postgres.rs`): `initdb` and `pg_ctl` on `PATH` or in
//! `/usr/lib/postgresql/*/bin`, run as the `postgres` account through
//! `runuser` when the benchmark runs as root, in a temporary directory, on a
//! free port, and stopped (`pg_ctl stop -m immediate`) when the [`Postgres`]
//! is dropped, on error too. PostgreSQL is not pinned: it runs on both
//! cores.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

/// The environment variables naming an existing server, in order.
pub const URL_ENVS: [&str; 2] = ["SESSIOND_BENCH_POSTGRES_URL", "SESSIOND_TEST_POSTGRES_URL"];

/// How many free ports to try before giving up on starting a cluster.
const START_ATTEMPTS: usize = 5;

/// A PostgreSQL server the benchmark may create databases on.
#[derive(Debug)]
pub struct Postgres {
    /// A superuser's URL (its database is only used to create others).
    admin_url: String,
    /// The `psql` that creates databases.
    psql: PathBuf,
    /// Where it came from, for the output.
    pub origin: String,
    /// The throwaway cluster, when the benchmark started one.
    cluster: Option<Cluster>,
}

/// A throwaway cluster, stopped and deleted on drop.
#[derive(Debug)]
struct Cluster {
    pg_ctl: PathBuf,
    as_root: bool,
    dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let mut stop = as_cluster_owner(&self.pg_ctl, self.as_root);
        stop.arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["stop", "-m", "immediate"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = stop.status();
    }
}

impl Postgres {
    /// Finds or starts a server; `Err` says why there is none.
    ///
    /// # Errors
    /// When there is no `psql`, or no URL and no cluster could be started.
    pub fn find_or_start() -> Result<Self, String> {
        let psql = find_program("psql")?;
        for name in URL_ENVS {
            if let Ok(url) = std::env::var(name)
                && !url.is_empty()
            {
                let mut check = Command::new(&psql);
                check
                    .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &url])
                    .args(["-c", "SELECT 1"])
                    .stdout(Stdio::null());
                run(check, &format!("psql on ${name}"))?;
                return Ok(Self {
                    admin_url: url,
                    psql,
                    origin: format!("the server of ${name}"),
                    cluster: None,
                });
            }
        }
        let (admin_url, cluster) = start_cluster()?;
        Ok(Self {
            origin: format!(
                "a throwaway cluster in {} ({admin_url})",
                cluster.dir.path().display()
            ),
            admin_url,
            psql,
            cluster: Some(cluster),
        })
    }

    /// Creates a new, empty database for `label` and returns its URL.
    ///
    /// # Errors
    /// When `psql` fails.
    pub fn fresh_database(&self, label: &str) -> Result<String, String> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let name = format!("sessiond_bench_{label}_{}_{nanos}", std::process::id());
        let output = Command::new(&self.psql)
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &self.admin_url])
            .args(["-c", &format!("CREATE DATABASE {name}")])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running psql: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "creating database {name} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(with_database(&self.admin_url, &name))
    }

    /// Whether the benchmark started (and will stop) this server.
    pub fn is_throwaway(&self) -> bool {
        self.cluster.is_some()
    }

    /// The postmaster's pid, for a throwaway cluster (from
    /// `postmaster.pid`): its CPU and its backends' are then not counted as
    /// other load. `None` for a given server, whose CPU (when it is on this
    /// machine) counts as other load.
    pub fn postmaster_pid(&self) -> Option<u32> {
        let cluster = self.cluster.as_ref()?;
        std::fs::read_to_string(cluster.dir.path().join("data").join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }
}

/// `url` naming database `name` instead of its own.
fn with_database(url: &str, name: &str) -> String {
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
    // Newest first: "15" before "9.6".
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

/// Starts a throwaway cluster; returns its superuser's URL and the cluster
/// (which stops it when dropped).
fn start_cluster() -> Result<(String, Cluster), String> {
    let initdb = find_program("initdb")?;
    let pg_ctl = find_program("pg_ctl")?;
    let as_root = is_root();
    let dir = tempfile::Builder::new()
        .prefix("sessiond-bench-pg-")
        .tempdir()
        .map_err(|e| format!("cannot create a directory for the cluster: {e}"))?;
    let data = dir.path().join("data");
    if as_root {
        let mut chown = Command::new("chown");
        chown.arg("postgres:").arg(dir.path());
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
    let log = dir.path().join("server.log");
    // From here on, dropping the cluster stops the server.
    let cluster = Cluster {
        pg_ctl: pg_ctl.clone(),
        as_root,
        dir,
    };
    let mut last_error = String::new();
    for _ in 0..START_ATTEMPTS {
        let port = free_port()?;
        let mut start = as_cluster_owner(&pg_ctl, as_root);
        start
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "-o"])
            .arg(format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
                cluster.dir.path().display()
            ))
            .arg("start");
        match run(start, "pg_ctl start") {
            Ok(()) => {
                return Ok((
                    format!("postgres://postgres@127.0.0.1:{port}/postgres"),
                    cluster,
                ));
            }
            Err(error) => last_error = error,
        }
    }
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    Err(format!("{last_error}\nserver log:\n{log}"))
}
