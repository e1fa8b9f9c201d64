//! `sessionctl whoami` and `can-i` where no sessiond is needed: their usage
//! errors, and a server that is older than `AccessService`. What they
//! print against the real server, with authentication on (tokens, TLS,
//! the policy's answers and refusals), is tested in the workspace's
//! `tests/sessionctl/access.rs`.

use std::process::Stdio;

use tonic::transport::Server;

/// What one run of `sessionctl` did.
#[derive(Debug)]
struct Run {
    /// Its exit code.
    code: i32,
    /// Everything it printed on stdout.
    stdout: String,
    /// Everything it printed on stderr.
    stderr: String,
}

impl Run {
    /// Asserts failure with `code`, nothing on stdout, and returns the one
    /// line on stderr.
    #[track_caller]
    fn failure(&self, code: i32) -> String {
        assert_eq!(self.code, code, "{self:?}");
        assert_eq!(self.stdout, "", "nothing on stdout when failing");
        let lines: Vec<_> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one clear line: {self:?}");
        lines[0].to_owned()
    }
}

/// Runs `sessionctl ARGS…` with `env` as its only sessiond settings.
async fn sessionctl_with(env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_sessionctl"));
    command
        .args(args)
        .env_remove("SESSIOND_ENDPOINT")
        .env_remove("SESSIOND_TOKEN")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().await.expect("running sessionctl");
    Run {
        code: output.status.code().expect("sessionctl exited by itself"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// Runs `sessionctl ARGS…` against `endpoint`.
async fn sessionctl(endpoint: &str, args: &[&str]) -> Run {
    sessionctl_with(&[("SESSIOND_ENDPOINT", endpoint)], args).await
}

#[tokio::test]
async fn a_server_without_access_service_is_named_as_older() {
    // A server with some other service only.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (_reporter, health) = tonic_health::server::health_reporter();
    tokio::spawn(
        Server::builder()
            .add_service(health)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    for args in [&["whoami"][..], &["can-i", "read_audit"]] {
        let line = sessionctl(&endpoint, args).await.failure(1);
        assert_eq!(
            line,
            "sessionctl: the server does not implement sessiond.v1.AccessService \
             (it is older than this sessionctl)"
        );
    }
}

#[tokio::test]
async fn usage_errors_exit_2_and_say_what_is_wrong() {
    let nowhere = "http://127.0.0.1:9";

    let run = sessionctl(nowhere, &["--tls-cert", "client.pem", "whoami"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--tls-key <FILE>"), "{run:?}");
    let run = sessionctl(nowhere, &["whoami", "--tls-key", "client.key"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--tls-cert <FILE>"), "{run:?}");

    let run = sessionctl(nowhere, &["can-i", "fly"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains(
            "unknown value \"fly\"; expected one of: read_session, start_session, \
             open_clientless_session, touch_session, end_session, act_as, run_module, read_audit"
        ),
        "{run:?}"
    );
    let run = sessionctl(nowhere, &["can-i", "act_as", "--session", "seven"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stdout, "");
}
