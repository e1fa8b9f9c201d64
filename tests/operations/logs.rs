//! The real binary's log with `--log-format json`: every line parses; at
//! `info` a session's start and end (with the reason as the contract spells
//! it), a run's conclusion (state, failure kind and message, duration) and
//! a refused call each make one line that names the request.

use std::path::Path;

use serde_json::Value;
use sessiond_proto::v1 as pb;
use sessiond_proto::v1::session_service_client::SessionServiceClient;
use tonic::Request;
use tonic::transport::Channel;

use super::common::credentials::static_token;
use super::common::{ServerProcess, database_url, eventually, logged};

/// `message` with `x-request-id: id` and `Bearer token`.
fn request<T>(id: &str, token: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("x-request-id", id.parse().unwrap());
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// The lines logged so far, each parsed (a line that is not JSON fails the
/// test).
fn lines(server: &ServerProcess) -> Vec<Value> {
    server
        .log
        .borrow()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect()
}

/// The one line with `message` and `request_id`.
fn line_of(lines: &[Value], message: &str, request_id: &str) -> Value {
    let found: Vec<&Value> = lines
        .iter()
        .filter(|line| line["message"] == message && line["request_id"] == request_id)
        .collect();
    assert_eq!(found.len(), 1, "{message} of {request_id} in {lines:#?}");
    found[0].clone()
}

/// A manifest with `fails`, an exec module that writes to stderr and exits
/// with status 3.
fn manifest(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("modules.toml");
    std::fs::write(
        &path,
        "[modules.fails]\ncommand = [\"sh\", \"-c\", \"echo broken >&2; exit 3\"]\n\
         timeout = \"30s\"\n",
    )
    .unwrap();
    path
}

#[tokio::test]
async fn json_lines_name_sessions_runs_refusals_and_their_requests() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.toml");
    let r41 = static_token(&tokens, "R41", &[]);
    let modules = manifest(dir.path());
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[[grant]]\nsubjects = [\"R41\"]\nopen_clientless_sessions_for = [\"R41\"]\n\
         read_sessions = \"own\"\nend_sessions = \"own\"\n",
    )
    .unwrap();
    let server = ServerProcess::spawn(
        &database_url(dir.path()),
        &[
            "--log-format",
            "json",
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
    let channel = Channel::from_shared(server.endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut sessions = SessionServiceClient::new(channel);

    let id = sessions
        .open_clientless_session(request(
            "open-1",
            &r41,
            pb::OpenClientlessSessionRequest { user: "R41".into() },
        ))
        .await
        .unwrap()
        .into_inner()
        .session_id;
    sessions
        .open_module(request(
            "run-1",
            &r41,
            pb::OpenModuleRequest {
                session_id: id,
                module_id: "fails".into(),
                parameters: None,
            },
        ))
        .await
        .unwrap();
    let failed = sessions
        .get_return_value(request(
            "value-1",
            &r41,
            pb::GetReturnValueRequest {
                session_id: id,
                module_id: "fails".into(),
                timeout: Some(prost_types::Duration {
                    seconds: 30,
                    nanos: 0,
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(failed.state(), pb::RunState::Failed);
    // R41 may not act for R42: PERMISSION_DENIED, refused by the service.
    let denied = sessions
        .open_clientless_session(request(
            "denied-1",
            &r41,
            pb::OpenClientlessSessionRequest { user: "R42".into() },
        ))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    // No credential at all: UNAUTHENTICATED, refused before any service.
    let mut anonymous = Request::new(pb::GetSessionUserRequest { session_id: id });
    anonymous
        .metadata_mut()
        .insert("x-request-id", "anonymous-1".parse().unwrap());
    let unauthenticated = sessions.get_session_user(anonymous).await.unwrap_err();
    assert_eq!(unauthenticated.code(), tonic::Code::Unauthenticated);
    sessions
        .close_clientless_session(request(
            "close-1",
            &r41,
            pb::CloseClientlessSessionRequest {
                session_id: id,
                grace: None,
            },
        ))
        .await
        .unwrap();

    let lines = eventually("the session's end to be logged", || async {
        let lines = lines(&server);
        lines
            .iter()
            .any(|line| line["message"] == "session ended")
            .then_some(lines)
    })
    .await;
    for line in &lines {
        for key in ["timestamp", "level", "target", "message"] {
            assert!(line.get(key).is_some(), "{key} missing from {line}");
        }
    }
    assert!(
        lines.iter().any(|line| logged(
            "admin endpoints (/metrics, /healthz, /readyz) listening",
            &line.to_string()
        )
        .is_some()),
        "the admin listener's address is logged"
    );

    let started = line_of(&lines, "session started", "open-1");
    assert_eq!(started["level"], "INFO");
    assert_eq!(started["session_id"], id);
    assert_eq!(started["user"], "R41");
    assert_eq!(started["kind"], "clientless");
    assert_eq!(started["caller"], "R41");

    let concluded = line_of(&lines, "module run concluded", "run-1");
    assert_eq!(concluded["session_id"], id);
    assert_eq!(concluded["module_id"], "fails");
    assert_eq!(concluded["state"], "failed");
    assert_eq!(concluded["failure_kind"], "exit_status");
    assert_eq!(concluded["exit_code"], 3);
    assert!(
        concluded["failure_message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    assert!(concluded["duration_ms"].is_u64());

    let ended = line_of(&lines, "session ended", "close-1");
    assert_eq!(ended["session_id"], id);
    assert_eq!(ended["reason"], "closed_by_client");

    let denied = line_of(&lines, "call refused", "denied-1");
    assert_eq!(denied["reason"], "PERMISSION_DENIED");
    assert_eq!(denied["caller"], "R41");
    assert_eq!(
        denied["method"],
        "/sessiond.v1.SessionService/OpenClientlessSession"
    );
    let unauthenticated = line_of(&lines, "call refused", "anonymous-1");
    assert_eq!(unauthenticated["reason"], "UNAUTHENTICATED");

    // Values are spelled as the contract spells them, never as Rust does.
    let text = server.log.borrow().clone();
    for rust in ["Some(", "ClosedByClient", "ExitStatus", "\"Clientless\""] {
        assert!(!text.contains(rust), "{rust} in the log:\n{text}");
    }
    // No secret reaches the log.
    assert!(!text.contains(&r41), "a token in the log");
}

/// An unreachable PostgreSQL is named, with the reason, at start.
#[tokio::test]
async fn an_unreachable_postgresql_is_named_with_its_reason() {
    // A port nothing listens on.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("postgres://sessiond@127.0.0.1:{port}/sessions");
    let output = tokio::process::Command::new(super::common::sessiond_binary())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "",
            "--database",
            &url,
        ])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("127.0.0.1:{port}")) && stderr.contains("refused"),
        "{stderr}"
    );
    assert!(!stderr.contains("pool timed out"), "{stderr}");
}
