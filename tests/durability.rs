//! Durability and recovery end to end: acknowledged records survive a
//! restart and a kill -9; clientless sessions a dead process left open are
//! ended with SERVER_RESTART while interactive ones stay open; concurrent
//! writers never collide; SIGTERM stops the real binary cleanly.

mod common;

use common::{ServerProcess, TestServer, database_url};
use futures::future::join_all;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use sessiond_proto::v1::user_context_service_client::UserContextServiceClient;
use sessiond_proto::v1::{
    EndReason, GetSessionInfoRequest, GetUserContextRequest, OpenClientlessSessionRequest,
    PushUserContextRequest, SessionState, StartSessionRequest,
};

#[tokio::test]
async fn acknowledged_sessions_survive_a_restart() {
    let server = TestServer::start().await;
    let mut sessions = server.sessions().await;
    let interactive = sessions
        .start_session(StartSessionRequest {
            user: "R41".into(),
            client: "web".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap();
    let mut contexts = server.user_contexts().await;
    contexts
        .push_user_context(PushUserContextRequest {
            session_id: interactive.session_id,
            user: "R42".into(),
        })
        .await
        .unwrap();
    drop((sessions, contexts));
    let dir = server.stop().await;

    let server = TestServer::start_in(dir, |_| {}).await;
    let mut sessions = server.sessions().await;
    let after = sessions
        .get_session_info(GetSessionInfoRequest {
            session_id: interactive.session_id,
        })
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap();
    assert_eq!(after.session_uuid, interactive.session_uuid);
    assert_eq!(
        after.state(),
        SessionState::Open,
        "interactive sessions stay open"
    );
    assert_eq!(after.effective_user, "R42");
    assert_eq!(after.user_context_depth, 1);
}

#[tokio::test]
async fn a_killed_server_leaves_no_clientless_session_open() {
    let dir = tempfile::tempdir().unwrap();
    let database = database_url(dir.path());
    let mut process = ServerProcess::spawn(&database, &[]).await;
    let mut sessions = process.sessions().await;
    let clientless = sessions
        .open_clientless_session(OpenClientlessSessionRequest { user: "R41".into() })
        .await
        .unwrap()
        .into_inner()
        .session_id;
    let interactive = sessions
        .start_session(StartSessionRequest {
            user: "R42".into(),
            client: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .session_id;
    process.child.start_kill().unwrap();
    process.child.wait().await.unwrap();

    let process = ServerProcess::spawn(&database, &[]).await;
    let mut sessions = process.sessions().await;
    let info = |session_id| GetSessionInfoRequest { session_id };
    let recovered = sessions
        .get_session_info(info(clientless))
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap();
    assert_eq!(recovered.state(), SessionState::Ended);
    assert_eq!(recovered.end_reason(), EndReason::ServerRestart);
    assert!(recovered.end_time.is_some());
    let kept = sessions
        .get_session_info(info(interactive))
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap();
    assert_eq!(kept.state(), SessionState::Open);
    let mut contexts = UserContextServiceClient::connect(process.endpoint())
        .await
        .unwrap();
    let context = contexts
        .get_user_context(GetUserContextRequest {
            session_id: interactive,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(context.user, "R42");
}

#[tokio::test]
async fn two_hundred_concurrent_opens_get_distinct_ids() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let opens = (0..200).map(|n| {
        let mut sessions =
            sessiond_proto::v1::session_service_client::SessionServiceClient::new(channel.clone());
        async move {
            sessions
                .open_clientless_session(OpenClientlessSessionRequest {
                    user: format!("user-{}", n % 7),
                })
                .await
                .map(|r| r.into_inner())
        }
    });
    let opened: Vec<_> = join_all(opens)
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("no open fails under concurrency");
    let mut ids: Vec<i64> = opened.iter().map(|o| o.session_id).collect();
    let mut uuids: Vec<&str> = opened.iter().map(|o| o.session_uuid.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    uuids.sort_unstable();
    uuids.dedup();
    assert_eq!(ids.len(), 200);
    assert_eq!(uuids.len(), 200);
}

#[tokio::test]
async fn sigterm_stops_the_binary_with_exit_code_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut process =
        ServerProcess::spawn(&database_url(dir.path()), &["--drain-timeout", "5s"]).await;
    let mut sessions = process.sessions().await;
    sessions
        .open_clientless_session(OpenClientlessSessionRequest { user: "R41".into() })
        .await
        .unwrap();
    let pid = i32::try_from(process.child.id().unwrap()).unwrap();
    kill(Pid::from_raw(pid), Signal::SIGTERM).unwrap();
    let status = process.exited().await;
    assert!(status.success(), "exit status {status:?}");
    let log = process.log.borrow().clone();
    assert!(log.contains("shutting down"), "{log}");
}

#[tokio::test]
async fn a_run_a_crash_interrupted_is_recorded_as_failed_at_the_next_start() {
    use sessiond_proto::v1::{
        GetReturnValueRequest, ModuleFailureKind, OpenModuleRequest, RunState,
    };
    let dir = tempfile::tempdir().unwrap();
    let modules = dir.path().join("modules.toml");
    std::fs::write(&modules, "[modules.slow]\ncommand = [\"sleep\", \"5\"]\n").unwrap();
    let database = database_url(dir.path());
    let flags = ["--modules", modules.to_str().unwrap()];
    let mut process = ServerProcess::spawn(&database, &flags).await;
    let mut sessions = process.sessions().await;
    let session_id = sessions
        .open_clientless_session(OpenClientlessSessionRequest { user: "R41".into() })
        .await
        .unwrap()
        .into_inner()
        .session_id;
    sessions
        .open_module(OpenModuleRequest {
            session_id,
            module_id: "slow".into(),
            parameters: None,
        })
        .await
        .unwrap();
    process.child.start_kill().unwrap();
    process.child.wait().await.unwrap();

    let process = ServerProcess::spawn(&database, &flags).await;
    let mut sessions = process.sessions().await;
    let run = sessions
        .get_return_value(GetReturnValueRequest {
            session_id,
            module_id: "slow".into(),
            timeout: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(run.state(), RunState::Failed);
    assert_eq!(run.failure.unwrap().kind(), ModuleFailureKind::Interrupted);
    let info = sessions
        .get_session_info(GetSessionInfoRequest { session_id })
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap();
    assert_eq!(info.end_reason(), EndReason::ServerRestart);
}
