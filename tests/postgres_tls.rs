//! sessiond on a PostgreSQL that accepts its role only over TLS and with a
//! password (scram-sha-256): `sslmode=require` in the URL, the password in
//! `--database-password-file`, never in the URL.
//!
//! A throwaway cluster of its own (`sessiond_testkit::postgres::Cluster`),
//! with TLS turned on and `pg_hba.conf` rewritten; ignored when the build
//! found no PostgreSQL (`cfg(has_postgres)`).

mod common;

use std::path::Path;
use std::process::Command;

use common::TestServer;
use common::pki::Pki;
use sessiond_proto::v1::OpenClientlessSessionRequest;
use sessiond_testkit::postgres::{Cluster, find_program, run};

/// Runs one statement as the cluster's superuser.
fn psql(cluster: &Cluster, sql: &str) {
    let mut psql = Command::new(find_program("psql").unwrap());
    psql.args([
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        cluster.admin_url(),
        "-c",
        sql,
    ]);
    run(psql, &format!("psql {sql}")).unwrap();
}

/// Copies `from` into the cluster's directory as `name`, readable by the
/// server's account only (PostgreSQL refuses a key others can read).
fn install(cluster: &Cluster, from: &Path, name: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let to = cluster.dir().join(name);
    std::fs::copy(from, &to).unwrap();
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap();
    // Made by root (the file's owner says who runs the test): give it to
    // the account the cluster runs as.
    if std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&to).unwrap()) == 0 {
        let mut chown = Command::new("chown");
        chown.arg("postgres:").arg(&to);
        run(chown, "chown postgres:").unwrap();
    }
    to.display().to_string()
}

#[tokio::test]
#[cfg_attr(
    not(has_postgres),
    ignore = "no PostgreSQL (initdb, pg_ctl and psql): see README"
)]
async fn sessiond_reaches_postgres_over_tls_with_a_password_file() {
    let cluster = tokio::task::spawn_blocking(|| Cluster::start("sessiond-tls-").unwrap())
        .await
        .unwrap();
    let pki = Pki::new();
    let cert = install(&cluster, &pki.path("server.pem"), "server.crt");
    let key = install(&cluster, &pki.path("server.key"), "server.key");
    // The role `app` only over TLS, only with its password.
    std::fs::write(
        cluster.dir().join("data").join("pg_hba.conf"),
        "local all all trust\n\
         hostssl all app 127.0.0.1/32 scram-sha-256\n\
         hostnossl all app 127.0.0.1/32 reject\n\
         host all postgres 127.0.0.1/32 trust\n",
    )
    .unwrap();
    for sql in [
        "ALTER SYSTEM SET ssl = on".to_owned(),
        format!("ALTER SYSTEM SET ssl_cert_file = '{cert}'"),
        format!("ALTER SYSTEM SET ssl_key_file = '{key}'"),
        "SELECT pg_reload_conf()".to_owned(),
        "CREATE ROLE app LOGIN PASSWORD 'correct horse'".to_owned(),
        "CREATE DATABASE app OWNER app".to_owned(),
    ] {
        psql(&cluster, &sql);
    }
    let port = cluster.admin_url().rsplit_once(':').unwrap().1;
    let port = port.split('/').next().unwrap();
    let url = format!("postgres://app@127.0.0.1:{port}/app?sslmode=require");

    let secrets = tempfile::tempdir().unwrap();
    let password_file = secrets.path().join("password");
    std::fs::write(&password_file, "correct horse\n").unwrap();
    let server = TestServer::start_with(|config| {
        config.database = url.clone();
        config.database_password_file = Some(password_file.clone());
    })
    .await;
    let mut sessions = server.sessions().await;
    let opened = sessions
        .open_clientless_session(OpenClientlessSessionRequest { user: "R41".into() })
        .await
        .unwrap()
        .into_inner();
    assert!(opened.session_id > 0);
    server.stop().await;

    // A wrong password is refused by the database, naming it.
    std::fs::write(&password_file, "wrong\n").unwrap();
    let config = sessiond::Config {
        database: url,
        database_password_file: Some(password_file),
        ..sessiond::Config::default()
    };
    let error = sessiond::Sessiond::open(config)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("password authentication failed"), "{error}");
    assert!(
        !error.contains("wrong"),
        "the password is not shown: {error}"
    );
}
