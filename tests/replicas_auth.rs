//! Replicas with authentication, as real processes on one PostgreSQL
//! database: a call forwarded to the session's owner keeps its original
//! caller. The owner here does not know the caller's token (its tokens file
//! holds another one), so what lets the call through is the caller the
//! forwarding replica stated and signed with the cluster secret; without
//! the secret the owner has only the token, and refuses it.

mod common;

use std::path::Path;

use common::credentials::static_token;
use common::pki::Pki;
use common::postgres::fresh_database;
use common::{ServerProcess, metadata, reason};
use sessiond_proto::v1 as pb;
use sessiond_proto::v1::session_service_client::SessionServiceClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};
use tonic::{Code, Request};

const MODULES: &str = "[modules.answer]\ncommand = [\"sh\", \"-c\", \"echo 42\"]\n";
const SECRET: &str = "a secret the replicas share, at least 32 characters long";

fn authorized<T>(token: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// Replica `name` with its own tokens file, the example policy, when
/// `secret` is set the cluster secret, and `extra` flags.
async fn replica(
    database: &str,
    dir: &Path,
    name: &str,
    tokens: &Path,
    secret: Option<&Path>,
    extra: &[&str],
) -> ServerProcess {
    let policy = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policy.toml");
    let modules = dir.join("modules.toml");
    std::fs::write(&modules, MODULES).unwrap();
    let mut flags = vec![
        "--node-id",
        name,
        "--modules",
        modules.to_str().unwrap(),
        "--tokens",
        tokens.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
    ];
    if let Some(secret) = secret {
        flags.extend(["--cluster-secret-file", secret.to_str().unwrap()]);
    }
    flags.extend(extra);
    ServerProcess::spawn(database, &flags).await
}

struct Pair {
    owner: ServerProcess,
    front: ServerProcess,
    /// A service's token known to both replicas.
    shared: String,
    /// A service's token known to the front replica only.
    front_only: String,
    _dir: tempfile::TempDir,
}

async fn pair(test: &str, with_secret: bool) -> Pair {
    pair_with(test, with_secret, &[]).await
}

/// [`pair`], both replicas started with `extra` flags too.
async fn pair_with(test: &str, with_secret: bool, extra: &[&str]) -> Pair {
    let database = fresh_database(test).await;
    let dir = tempfile::tempdir().unwrap();
    let (owner_tokens, front_tokens) =
        (dir.path().join("owner.toml"), dir.path().join("front.toml"));
    let shared = static_token(&front_tokens, "billing", &["services"]);
    std::fs::copy(&front_tokens, &owner_tokens).unwrap();
    let front_only = static_token(&front_tokens, "reports", &["services"]);
    let secret = dir.path().join("cluster-secret");
    std::fs::write(&secret, SECRET).unwrap();
    let secret = with_secret.then_some(secret.as_path());
    let owner = replica(&database, dir.path(), "owner", &owner_tokens, secret, extra).await;
    let front = replica(&database, dir.path(), "front", &front_tokens, secret, extra).await;
    Pair {
        owner,
        front,
        shared,
        front_only,
        _dir: dir,
    }
}

async fn open_on_owner(pair: &Pair) -> i64 {
    pair.owner
        .sessions()
        .await
        .open_clientless_session(authorized(
            &pair.shared,
            pb::OpenClientlessSessionRequest { user: "R41".into() },
        ))
        .await
        .unwrap()
        .into_inner()
        .session_id
}

async fn open_module(
    front: &mut SessionServiceClient<Channel>,
    token: &str,
    session_id: i64,
) -> Result<pb::OpenModuleResponse, tonic::Status> {
    front
        .open_module(authorized(
            token,
            pb::OpenModuleRequest {
                session_id,
                module_id: "answer".into(),
                parameters: None,
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
#[cfg_attr(
    not(has_postgres),
    ignore = "no PostgreSQL (SESSIOND_TEST_POSTGRES_URL, or initdb, pg_ctl and psql): see README"
)]
async fn a_forwarded_call_keeps_its_caller_through_the_cluster_secret() {
    let pair = pair("forwarded_keeps_caller", true).await;
    let id = open_on_owner(&pair).await;
    let mut front = pair.front.sessions().await;

    // The owner does not know `reports`' token: only the signed statement
    // of the front replica tells it who is calling, and the policy then
    // lets a service run modules as R41.
    let run = open_module(&mut front, &pair.front_only, id).await.unwrap();
    assert_eq!(run.acting_user, "R41");

    // A credential neither replica accepts is refused before anything is
    // forwarded; the known caller closes the session through the front.
    let refused = front
        .close_clientless_session(authorized(
            "sdt_not-a-token-either-replica-knows",
            pb::CloseClientlessSessionRequest {
                session_id: id,
                grace: None,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    let closed = front
        .close_clientless_session(authorized(
            &pair.front_only,
            pb::CloseClientlessSessionRequest {
                session_id: id,
                grace: None,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(closed.session.unwrap().state(), pb::SessionState::Ended);
}

#[tokio::test]
#[cfg_attr(
    not(has_postgres),
    ignore = "no PostgreSQL (SESSIOND_TEST_POSTGRES_URL, or initdb, pg_ctl and psql): see README"
)]
async fn without_the_cluster_secret_the_owner_authenticates_the_callers_own_credential() {
    let pair = pair("forwarded_without_secret", false).await;
    let id = open_on_owner(&pair).await;
    let mut front = pair.front.sessions().await;

    // A token both replicas know passes through with the call.
    let run = open_module(&mut front, &pair.shared, id).await.unwrap();
    assert_eq!(run.acting_user, "R41");

    // One only the front replica knows is refused by the owner: the front's
    // word alone is not believed.
    let refused = open_module(&mut front, &pair.front_only, id)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    assert_eq!(reason(&refused), "UNAUTHENTICATED");
    assert_eq!(metadata(&refused, "session_id"), None);
}

#[tokio::test]
#[cfg_attr(
    not(has_postgres),
    ignore = "no PostgreSQL (SESSIOND_TEST_POSTGRES_URL, or initdb, pg_ctl and psql): see README"
)]
async fn replicas_serving_tls_forward_to_each_other_over_tls() {
    let pki = Pki::new();
    let (cert, key, ca) = (
        pki.path("server.pem"),
        pki.path("server.key"),
        pki.path("ca.pem"),
    );
    let tls = [
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--tls-ca",
        ca.to_str().unwrap(),
    ];
    let pair = pair_with("forwarded_over_tls", true, &tls).await;
    let over_tls = |process: &ServerProcess| {
        let config = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(pki.read("ca.pem")))
            .domain_name("localhost");
        Channel::from_shared(format!("https://{}", process.addr))
            .unwrap()
            .tls_config(config)
            .unwrap()
    };
    let mut owner = SessionServiceClient::new(over_tls(&pair.owner).connect().await.unwrap());
    let id = owner
        .open_clientless_session(authorized(
            &pair.shared,
            pb::OpenClientlessSessionRequest { user: "R41".into() },
        ))
        .await
        .unwrap()
        .into_inner()
        .session_id;
    let info = owner
        .get_session_info(authorized(
            &pair.shared,
            pb::GetSessionInfoRequest { session_id: id },
        ))
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap();
    assert_eq!(info.owner_node, "owner");

    // Through the front replica, which reaches the owner at its https://
    // address, trusting --tls-ca.
    let mut front = SessionServiceClient::new(over_tls(&pair.front).connect().await.unwrap());
    let run = open_module(&mut front, &pair.front_only, id).await.unwrap();
    assert_eq!(run.acting_user, "R41");
    let closed = front
        .close_clientless_session(authorized(
            &pair.front_only,
            pb::CloseClientlessSessionRequest {
                session_id: id,
                grace: None,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(closed.session.unwrap().state(), pb::SessionState::Ended);
}
