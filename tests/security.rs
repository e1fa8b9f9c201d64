//! The security settings of the real binary: refusing to serve without
//! authentication on an address other hosts can reach, refusing a bad
//! policy at start with its file and line, and reloading the policy on
//! SIGHUP (keeping the old one when the new one is invalid); reflection
//! behind a credential when asked, health never.

mod common;

use std::path::Path;
use std::time::Duration;

use common::credentials::static_token;
use common::{ServerProcess, database_url, eventually, sessiond_binary};
use sessiond_proto::v1 as pb;
use sessiond_proto::v1::session_service_client::SessionServiceClient;
use tonic::{Code, Request};

/// Runs the binary with `args` until it exits; its status and stderr.
async fn run_to_exit(args: &[&str]) -> (std::process::ExitStatus, String) {
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(sessiond_binary())
            .args(args)
            .env("NO_COLOR", "1")
            .output(),
    )
    .await
    .expect("sessiond exits instead of serving")
    .unwrap();
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn no_authentication_on_a_reachable_address_is_refused_unless_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let database = database_url(dir.path());
    let (status, stderr) = run_to_exit(&["--listen", "0.0.0.0:0", "--database", &database]).await;
    assert!(!status.success());
    assert!(stderr.contains("0.0.0.0:0"), "{stderr}");
    assert!(stderr.contains("without authentication"), "{stderr}");
    assert!(stderr.contains("--insecure-no-auth"), "{stderr}");

    let mut insecure = tokio::process::Command::new(sessiond_binary())
        .args([
            "--listen",
            "0.0.0.0:0",
            "--database",
            &database,
            "--insecure-no-auth",
        ])
        .env("NO_COLOR", "1")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(
        insecure.stderr.take().unwrap(),
    ));
    let mut log = String::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        log.push_str(&line);
        log.push('\n');
        if line.contains("sessiond listening") {
            break;
        }
    }
    assert!(
        log.contains("WITHOUT authentication"),
        "it warns at start: {log}"
    );
}

#[tokio::test]
async fn a_bad_policy_is_refused_at_start_naming_its_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.toml");
    static_token(&tokens, "someone", &[]);
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[[grant]]\ngroups = [\"x\"]\nend_sessions = \"sometimes\"\n",
    )
    .unwrap();
    let database = database_url(dir.path());
    let (status, stderr) = run_to_exit(&[
        "--database",
        &database,
        "--tokens",
        tokens.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
    ])
    .await;
    assert!(!status.success());
    assert!(
        stderr.contains(&format!("policy {}, line 3", policy.display())),
        "{stderr}"
    );
    assert!(stderr.contains("sometimes"), "{stderr}");
}

/// Whether `token`'s caller may read session `id`.
async fn can_read(
    sessions: &mut SessionServiceClient<tonic::transport::Channel>,
    token: &str,
    id: i64,
) -> bool {
    let mut request = Request::new(pb::GetSessionUserRequest { session_id: id });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    match sessions.get_session_user(request).await {
        Ok(_) => true,
        Err(status) if status.code() == Code::NotFound => false,
        Err(status) => panic!("{status:?}"),
    }
}

fn write_policy(path: &Path, operators_read: &str) {
    std::fs::write(
        path,
        format!(
            "[[grant]]\nsubjects = [\"setup\"]\nread_sessions = \"any\"\nstart_sessions_for = [\"*\"]\n\n\
             [[grant]]\ngroups = [\"operators\"]\nread_sessions = \"{operators_read}\"\n"
        ),
    )
    .unwrap();
}

#[tokio::test]
async fn the_policy_is_reloaded_on_sighup_and_an_invalid_one_keeps_the_old() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.toml");
    let setup = static_token(&tokens, "setup", &[]);
    let operator = static_token(&tokens, "olga", &["operators"]);
    let policy = dir.path().join("policy.toml");
    write_policy(&policy, "none");
    let server = ServerProcess::spawn(
        &database_url(dir.path()),
        &[
            "--tokens",
            tokens.to_str().unwrap(),
            "--policy",
            policy.to_str().unwrap(),
        ],
    )
    .await;
    let mut sessions = server.sessions().await;
    let mut start = Request::new(pb::StartSessionRequest {
        user: "R41".into(),
        client: String::new(),
    });
    start
        .metadata_mut()
        .insert("authorization", format!("Bearer {setup}").parse().unwrap());
    let id = sessions
        .start_session(start)
        .await
        .unwrap()
        .into_inner()
        .session_id;
    assert!(!can_read(&mut sessions, &operator, id).await);

    let pid = nix::unistd::Pid::from_raw(server.child.id().unwrap().try_into().unwrap());
    write_policy(&policy, "any");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    eventually("the new policy applies", || {
        let mut sessions = sessions.clone();
        let operator = operator.clone();
        async move { can_read(&mut sessions, &operator, id).await.then_some(()) }
    })
    .await;

    std::fs::write(&policy, "[[grant]]\nread_sessions = \"any\"\n").unwrap();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    let mut log = server.log.clone();
    log.wait_for(|log| log.contains("access policy not reloaded"))
        .await
        .unwrap();
    assert!(
        log.borrow().contains(policy.to_str().unwrap()),
        "the error names the file"
    );
    assert!(
        can_read(&mut sessions, &operator, id).await,
        "the previous policy stays"
    );
}

#[tokio::test]
async fn reflection_can_require_a_credential_while_health_never_does() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.toml");
    let token = static_token(&tokens, "someone", &[]);
    let server = common::TestServer::start_in(dir, |config| {
        config.security.tokens = Some(tokens);
        config.security.reflection_requires_auth = true;
    })
    .await;
    let channel = server.channel().await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let check = tonic_health::pb::HealthCheckRequest {
        service: "sessiond.v1.AccessService".to_owned(),
    };
    let status = health.check(check).await.unwrap().into_inner().status();
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );

    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    let list = || ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut reflection = ServerReflectionClient::new(channel);
    let refused = reflection
        .server_reflection_info(tokio_stream::once(list()))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    let mut request = Request::new(tokio_stream::once(list()));
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let mut answers = reflection
        .server_reflection_info(request)
        .await
        .unwrap()
        .into_inner();
    assert!(answers.message().await.unwrap().is_some());
}
