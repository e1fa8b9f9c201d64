//! Several replicas on one PostgreSQL database, as real processes: any
//! replica answers any RPC; module runs and closes reach the session's owner
//! wherever they arrive; a killed replica's sessions end as NODE_LOST while
//! the others keep serving; a replica paused past its lease cancels, once
//! back, the runs of the sessions another replica ended.

mod common;

use common::postgres::fresh_database;
use common::{ServerProcess, eventually};
use futures::future::join_all;
use sessiond_proto::v1::session_service_client::SessionServiceClient;
use sessiond_proto::v1::user_context_service_client::UserContextServiceClient;
use sessiond_proto::v1::{
    CloseClientlessSessionRequest, EndReason, GetReturnValueRequest, GetSessionInfoRequest,
    GetSessionUserRequest, ModuleFailureKind, OpenClientlessSessionRequest, OpenModuleRequest,
    PopUserContextRequest, PushUserContextRequest, RunState, SessionInfo, SessionState,
};
use tonic::transport::Channel;

/// The modules every replica runs.
const MODULES: &str = "[modules.answer]\ncommand = [\"sh\", \"-c\", \"echo 42\"]\n\
                       [modules.trapped]\ncommand = [\"sh\", \"-c\", \"trap 'echo cancelled > cancelled-$SESSIOND_RUN_ID; exit 1' TERM; sleep 600 & wait\"]\n\
                       [modules.slow]\ncommand = [\"sh\", \"-c\", \"sleep 2; echo '\\\"done\\\"'\"]\n\
                       [modules.forever]\ncommand = [\"sleep\", \"600\"]\n";

/// A lease short enough for a test to watch one expire.
const LEASE: &str = "2s";

struct Replicas {
    nodes: Vec<ServerProcess>,
    /// The modules' manifest and working directory.
    dir: tempfile::TempDir,
}

impl Replicas {
    /// Starts `count` replicas `a`, `b`, … on a fresh database.
    async fn start(test: &str, count: usize) -> Self {
        let database = fresh_database(test).await;
        let dir = tempfile::tempdir().unwrap();
        let modules = dir.path().join("modules.toml");
        std::fs::write(&modules, MODULES).unwrap();
        let mut nodes = Vec::new();
        for name in ["a", "b", "c"].into_iter().take(count) {
            let flags = [
                "--node-id",
                name,
                "--lease-ttl",
                LEASE,
                "--modules",
                modules.to_str().unwrap(),
            ];
            nodes.push(ServerProcess::spawn(&database, &flags).await);
        }
        Self { nodes, dir }
    }

    async fn sessions(&self, node: usize) -> SessionServiceClient<Channel> {
        self.nodes[node].sessions().await
    }

    async fn contexts(&self, node: usize) -> UserContextServiceClient<Channel> {
        UserContextServiceClient::connect(self.nodes[node].endpoint())
            .await
            .unwrap()
    }
}

async fn open(sessions: &mut SessionServiceClient<Channel>, user: &str) -> i64 {
    sessions
        .open_clientless_session(OpenClientlessSessionRequest { user: user.into() })
        .await
        .unwrap()
        .into_inner()
        .session_id
}

async fn info(sessions: &mut SessionServiceClient<Channel>, session_id: i64) -> SessionInfo {
    sessions
        .get_session_info(GetSessionInfoRequest { session_id })
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap()
}

/// The session once `sessions` reports it ended (waiting for `what`).
async fn ended(
    sessions: &SessionServiceClient<Channel>,
    session_id: i64,
    what: &str,
) -> SessionInfo {
    eventually(what, || {
        let mut sessions = sessions.clone();
        async move {
            let session = info(&mut sessions, session_id).await;
            (session.state() == SessionState::Ended).then_some(session)
        }
    })
    .await
}

async fn open_module(sessions: &mut SessionServiceClient<Channel>, session_id: i64, module: &str) {
    sessions
        .open_module(OpenModuleRequest {
            session_id,
            module_id: module.into(),
            parameters: None,
        })
        .await
        .unwrap();
}

fn seconds(seconds: i64) -> Option<prost_types::Duration> {
    Some(prost_types::Duration { seconds, nanos: 0 })
}

#[tokio::test]
#[cfg_attr(
    not(has_postgres),
    ignore = "no PostgreSQL (SESSIOND_TEST_POSTGRES_URL, or initdb, pg_ctl and psql): see README"
)]
async fn any_replica_answers_for_a_session_another_one_opened() {
    let replicas = Replicas::start("any_replica_answers", 3).await;
    let mut a = replicas.sessions(0).await;
    let mut b = replicas.sessions(1).await;
    let mut c = replicas.sessions(2).await;
    let id = open(&mut a, "R41").await;

    let user = b
        .get_session_user(GetSessionUserRequest { session_id: id })
        .await
        .unwrap()
        .into_inner()
        .user;
    assert_eq!(user, "R41");
    let on_c = info(&mut c, id).await;
    assert_eq!(on_c.owner_node, "a");
    assert_eq!(on_c.state(), SessionState::Open);

    let mut contexts_a = replicas.contexts(0).await;
    let mut contexts_b = replicas.contexts(1).await;
    let scope = contexts_a
        .push_user_context(PushUserContextRequest {
            session_id: id,
            user: "R42".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .scope_id;
    assert_eq!(info(&mut c, id).await.effective_user, "R42");
    let restored = contexts_b
        .pop_user_context(PopUserContextRequest {
            session_id: id,
            scope_id: scope,
        })
        .await
        .unwrap()
        .into_inner()
        .user;
    assert_eq!(restored, "R41");
}

#[tokio::test]
#[cfg_attr(
    not(has_postgres),
    ignore = "no PostgreSQL (SESSIOND_TEST_POSTGRES_URL, or initdb, pg_ctl and psql): see README"
)]
async fn a_module_opened_through_one_replica_runs_on_the_owner_and_its_value_reads_anywhere() {
    let replicas = Replicas::start("module_on_owner", 2).await;
    let mut a = replicas.sessions(0).await;
    let mut b = replicas.sessions(1).await;
    let id = open(&mut a, "R41").await;
    open_module(&mut b, id, "answer").await;
    for sessions in [&mut b, &mut a] {
        let value = sessions
            .get_return_value(GetReturnValueRequest {
                session_id: id,
                module_id: "answer".into(),
                timeout: seconds(30),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(value.state(), RunState::Succeeded);
        let Some(prost_types::value::Kind::NumberValue(n)) = value.value.unwrap().kind else {
            panic!("expected a number");
        };
        assert!((n - 42.0).abs() < f64::EPSILON);
    }
}

#[tokio::test]
#[cfg_attr(
    not(has_postgres),
    ignore = "no PostgreSQL (SESSIOND_TEST_POSTGRES_URL, or initdb, pg_ctl and psql): see README"
)]
async fn a_close_through_another_replica_waits_for_the_owners_running_module() {
    let replicas = Replicas::start("close_elsewhere", 2).await;
    let mut a = replicas.sessions(0).await;
    let mut b = replicas.sessions(1).await;
    let id = open(&mut a, "R41").await;
    open_module(&mut a, id, "slow").await;
    let closed = b
        .close_clientless_session(CloseClientlessSessionRequest {
            session_id: id,
            grace: seconds(60),
        })
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap();
    assert_eq!(closed.state(), SessionState::Ended);
    assert_eq!(closed.end_reason(), EndReason::ClosedByClient);
    let run = b
        .get_return_value(GetReturnValueRequest {
            session_id: id,
            module_id: "slow".into(),
            timeout: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        run.state(),
        RunState::Succeeded,
        "the module concluded before the end"
    );
}

#[tokio::test]
#[cfg_attr(
    not(has_postgres),
    ignore = "no PostgreSQL (SESSIOND_TEST_POSTGRES_URL, or initdb, pg_ctl and psql): see README"
)]
async fn a_killed_replicas_sessions_end_as_node_lost_and_the_others_keep_serving() {
    let mut replicas = Replicas::start("node_lost", 2).await;
    let mut a = replicas.sessions(0).await;
    let id = open(&mut a, "R41").await;
    open_module(&mut a, id, "forever").await;
    let mut b = replicas.sessions(1).await;
    let survivor = open(&mut b, "R42").await;

    let killed = &mut replicas.nodes[0].child;
    killed.start_kill().unwrap();
    killed.wait().await.unwrap();

    let ended = ended(&b, id, "the lost replica's session to end").await;
    assert_eq!(ended.end_reason(), EndReason::NodeLost);
    let run = b
        .get_return_value(GetReturnValueRequest {
            session_id: id,
            module_id: "forever".into(),
            timeout: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(run.state(), RunState::Failed);
    assert_eq!(run.failure.unwrap().kind(), ModuleFailureKind::Interrupted);
    // B still serves, and its own session is untouched.
    assert_eq!(info(&mut b, survivor).await.state(), SessionState::Open);
    open(&mut b, "R43").await;
}

#[tokio::test]
#[cfg_attr(
    not(has_postgres),
    ignore = "no PostgreSQL (SESSIOND_TEST_POSTGRES_URL, or initdb, pg_ctl and psql): see README"
)]
async fn two_hundred_concurrent_opens_across_replicas_get_distinct_ids() {
    let replicas = Replicas::start("concurrent_opens", 3).await;
    let mut clients = Vec::new();
    for node in 0..3 {
        clients.push(replicas.sessions(node).await);
    }
    let opens = (0..200).map(|n| {
        let mut sessions = clients[n % 3].clone();
        async move { open(&mut sessions, &format!("user-{}", n % 11)).await }
    });
    let mut ids = join_all(opens).await;
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 200);
}

#[tokio::test]
#[cfg_attr(
    not(has_postgres),
    ignore = "no PostgreSQL (SESSIOND_TEST_POSTGRES_URL, or initdb, pg_ctl and psql): see README"
)]
async fn a_replica_paused_past_its_lease_cancels_the_runs_of_its_ended_sessions() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    let replicas = Replicas::start("paused_replica", 2).await;
    let mut a = replicas.sessions(0).await;
    let id = open(&mut a, "R41").await;
    let run_id = a
        .open_module(OpenModuleRequest {
            session_id: id,
            module_id: "trapped".into(),
            parameters: None,
        })
        .await
        .unwrap()
        .into_inner()
        .run_id;
    let paused = Pid::from_raw(i32::try_from(replicas.nodes[0].child.id().unwrap()).unwrap());
    kill(paused, Signal::SIGSTOP).unwrap();

    // B takes the silent replica over: the session ends, the run is
    // recorded as interrupted — while A's module process still runs.
    let mut b = replicas.sessions(1).await;
    let ended = ended(&b, id, "the paused replica's session to end").await;
    assert_eq!(ended.end_reason(), EndReason::NodeLost);
    let marker = replicas.dir.path().join(format!("cancelled-{run_id}"));
    assert!(!marker.exists(), "the module is still running");

    // Back, A learns at its next renewal that it was taken over, and
    // cancels the run (SIGTERM, which the module's trap records).
    kill(paused, Signal::SIGCONT).unwrap();
    let written = eventually("the paused replica to cancel its run", || {
        let marker = marker.clone();
        async move { std::fs::read_to_string(&marker).ok() }
    })
    .await;
    assert_eq!(written.trim(), "cancelled");
    let run = b
        .get_return_value(GetReturnValueRequest {
            session_id: id,
            module_id: "trapped".into(),
            timeout: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        run.failure.unwrap().kind(),
        ModuleFailureKind::Interrupted,
        "the takeover's record stands"
    );
    // A serves again, with a new lease.
    let mut a = replicas.sessions(0).await;
    open(&mut a, "R42").await;
}
