//! PostgreSQL for the tests: a fresh, empty database per test.
//!
//! The server is the one `$SESSIOND_TEST_POSTGRES_URL` names (a superuser's
//! URL; `bash .ci/run` starts a throwaway cluster and exports it).
//! Otherwise, when PostgreSQL's `initdb` and `pg_ctl` are found, each test
//! process starts its own throwaway cluster (`sessiond_testkit::postgres`:
//! a temporary directory, a free port, the `postgres` account when the
//! tests run as root), and a watchdog process stops it and deletes its
//! directory once the test process has exited, however it exits.
//!
//! Databases are created with `psql`. Whether there is a server (or the
//! programs to start one) is decided when the root package is built
//! (`build/prerequisites.rs`): without one, the tests that need it are
//! compiled ignored (`#[cfg_attr(not(has_postgres), ignore = …)]`), unless
//! `SESSIOND_REQUIRE_ALL_TESTS=1`, which fails the build instead.

use std::path::PathBuf;
use std::sync::OnceLock;

use sessiond_testkit::postgres::{Cluster, create_database, find_program};

/// The environment variable naming an existing server.
pub const URL_ENV: &str = "SESSIOND_TEST_POSTGRES_URL";

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
            _ => Cluster::start("sessiond-pg-")?.stop_when_process_exits()?,
        };
        Ok(Server { admin_url, psql })
    })
}

/// The URL of a new, empty database for `test`.
///
/// # Panics
/// When there is no PostgreSQL (the tests calling this are then ignored,
/// unless run with `--include-ignored`), or when the database cannot be
/// created.
pub async fn fresh_database(test: &str) -> String {
    let test = test.to_owned();
    tokio::task::spawn_blocking(move || fresh_database_blocking(&test))
        .await
        .expect("creating a test database")
}

fn fresh_database_blocking(test: &str) -> String {
    let server = server().as_ref().unwrap_or_else(|problem| {
        panic!(
            "no PostgreSQL for {test}: {problem}. Set {URL_ENV} to a superuser's URL, install \
             PostgreSQL's server (initdb, pg_ctl) and psql, or run `bash .ci/run`."
        )
    });
    let name = format!("sessiond_test_{}", uuid::Uuid::now_v7().simple());
    create_database(&server.psql, &server.admin_url, &name)
        .unwrap_or_else(|e| panic!("creating a database for {test}: {e}"))
}

/// Runs `sql` on the database at `url` with `psql`, as the test's own
/// client (not through sessiond).
///
/// # Panics
/// When there is no server or `psql` fails.
pub async fn execute(url: &str, sql: &str) {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    tokio::task::spawn_blocking(move || {
        let server = server().as_ref().expect("a PostgreSQL server");
        let mut psql = std::process::Command::new(&server.psql);
        psql.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &url, "-c", &sql]);
        sessiond_testkit::postgres::run(psql, &format!("psql {sql}"))
            .unwrap_or_else(|e| panic!("{e}"));
    })
    .await
    .expect("running psql");
}
