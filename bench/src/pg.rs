//! PostgreSQL for the `pg_*` scenarios: a fresh database on the server
//! `$SESSIOND_BENCH_POSTGRES_URL` or `$SESSIOND_TEST_POSTGRES_URL` names (a
//! superuser's URL), else on a throwaway cluster started like the tests'
//! (`sessiond_testkit::postgres`: `initdb` and `pg_ctl` on `PATH` or in
//! `/usr/lib/postgresql/*/bin`, run as the `postgres` account through
//! `runuser` when the benchmark runs as root, in a temporary directory, on a
//! free port), stopped (`pg_ctl stop -m immediate`) when the [`Postgres`]
//! is dropped, on error too. PostgreSQL is not pinned: it runs on both
//! cores.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use sessiond_testkit::postgres::{Cluster, create_database, find_program, run};

/// The environment variables naming an existing server, in order.
pub const URL_ENVS: [&str; 2] = ["SESSIOND_BENCH_POSTGRES_URL", "SESSIOND_TEST_POSTGRES_URL"];

/// A PostgreSQL server the benchmark may create databases on.
#[derive(Debug)]
pub struct Postgres {
    /// A superuser's URL (its database is only used to create others).
    admin_url: String,
    /// The `psql` that creates databases.
    psql: PathBuf,
    /// Where it came from, for the output.
    pub origin: String,
    /// The throwaway cluster, when the benchmark started one; stopped when
    /// dropped.
    cluster: Option<Cluster>,
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
        let cluster = Cluster::start("sessiond-bench-pg-")?;
        Ok(Self {
            origin: format!(
                "a throwaway cluster in {} ({})",
                cluster.dir().display(),
                cluster.admin_url()
            ),
            admin_url: cluster.admin_url().to_owned(),
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
        create_database(&self.psql, &self.admin_url, &name)
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
        self.cluster.as_ref()?.postmaster_pid()
    }
}
