//! `/metrics`, `/healthz` and `/readyz` of the admin listener, read after
//! known calls to an in-process server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sessiond::model::{FailureKind, ModuleFailure};
use sessiond::modules::{Module, ModuleContext, async_trait};
use sessiond::{Config, SessiondBuilder};
use sessiond_proto::v1 as pb;
use sessiond_proto::v1::session_service_client::SessionServiceClient;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tonic::Code;
use tonic::transport::Channel;

use super::common::{TestServer, eventually};
use super::{Scrape, http_get, scrape};

/// A module that answers once the test releases it, or fails when its
/// parameters say so.
#[derive(Clone, Debug)]
struct Gate(Arc<Semaphore>);

impl Default for Gate {
    fn default() -> Self {
        Self(Arc::new(Semaphore::new(0)))
    }
}

#[async_trait]
impl Module for Gate {
    async fn run(&self, ctx: ModuleContext) -> Result<serde_json::Value, ModuleFailure> {
        if ctx.parameters.contains_key("fail") {
            return Err(ModuleFailure::error("asked to fail"));
        }
        tokio::select! {
            permit = self.0.acquire() => {
                permit.expect("semaphore open").forget();
                Ok(serde_json::json!("released"))
            }
            () = ctx.cancelled() => Err(ModuleFailure::new(FailureKind::Cancelled, "cancelled")),
        }
    }
}

/// A server with an admin listener and the `gate` module; `database` is a
/// PostgreSQL URL, or `None` for SQLite.
async fn server(
    database: Option<String>,
    gate: &Gate,
    configure: impl FnOnce(&mut Config),
) -> (TestServer, SocketAddr) {
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin_addr = admin.local_addr().unwrap();
    let gate = gate.clone();
    let server = TestServer::build_in(
        tempfile::tempdir().unwrap(),
        |config| {
            if let Some(url) = database {
                config.database = url;
            }
            configure(config);
        },
        move |builder: SessiondBuilder| builder.admin(admin).module("gate", gate),
    )
    .await;
    (server, admin_addr)
}

const SESSIONS: &str = "sessiond.v1.SessionService";

fn method(name: &str) -> [(&'static str, &str); 3] {
    [
        ("grpc_type", "unary"),
        ("grpc_service", SESSIONS),
        ("grpc_method", name),
    ]
}

fn handled<'a>(name: &'a str, code: &'a str) -> [(&'static str, &'a str); 4] {
    let [t, s, m] = method(name);
    [t, s, m, ("grpc_code", code)]
}

async fn open(sessions: &mut SessionServiceClient<Channel>, user: &str) -> i64 {
    sessions
        .open_clientless_session(pb::OpenClientlessSessionRequest { user: user.into() })
        .await
        .unwrap()
        .into_inner()
        .session_id
}

async fn close(sessions: &mut SessionServiceClient<Channel>, id: i64) {
    sessions
        .close_clientless_session(pb::CloseClientlessSessionRequest {
            session_id: id,
            grace: None,
        })
        .await
        .unwrap();
}

/// Calls are counted by method and code — OK from the trailers of a
/// response with a body, an error from a trailers-only response, a stream
/// the caller dropped as Canceled, a path no service serves as `unknown` —
/// and timed; every method's series exist before its first call.
#[tokio::test]
async fn calls_are_counted_by_method_and_code() {
    let (server, admin) = server(None, &Gate::default(), |_| {}).await;
    let before = scrape(admin).await;
    assert_eq!(
        before.get("grpc_server_started_total", &method("ListSessions")),
        0.0
    );
    assert_eq!(
        before.get(
            "grpc_server_handled_total",
            &handled("GetSessionUser", "NotFound")
        ),
        0.0
    );
    let mut sessions = server.sessions().await;
    let a = open(&mut sessions, "R41").await;
    open(&mut sessions, "R42").await;
    let missing = sessions
        .get_session_user(pb::GetSessionUserRequest {
            session_id: a + 100,
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    sessions
        .get_session_user(pb::GetSessionUserRequest { session_id: a })
        .await
        .unwrap();

    // A path that names no method.
    let mut raw = tonic::client::Grpc::new(server.channel().await);
    raw.ready().await.unwrap();
    let unknown = raw
        .unary::<(), (), _>(
            tonic::Request::new(()),
            http::uri::PathAndQuery::from_static("/sessiond.v1.NoSuchService/Nothing"),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::Unimplemented);

    // A watch the caller drops.
    let mut watch = sessions
        .watch_sessions(pb::WatchSessionsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let _ = tokio::time::timeout(Duration::from_millis(200), watch.message()).await;
    drop(watch);

    let after = scrape(admin).await;
    assert_eq!(
        after.get(
            "grpc_server_started_total",
            &method("OpenClientlessSession")
        ),
        2.0
    );
    assert_eq!(
        after.get(
            "grpc_server_handled_total",
            &handled("OpenClientlessSession", "OK")
        ),
        2.0
    );
    assert_eq!(
        after.get(
            "grpc_server_handled_total",
            &handled("GetSessionUser", "NotFound")
        ),
        1.0
    );
    assert_eq!(
        after.get(
            "grpc_server_handled_total",
            &handled("GetSessionUser", "OK")
        ),
        1.0
    );
    assert_eq!(
        after.get(
            "grpc_server_handling_seconds_count",
            &method("GetSessionUser")
        ),
        2.0
    );
    assert_eq!(
        after.get(
            "grpc_server_handling_seconds_bucket",
            &[("grpc_method", "GetSessionUser"), ("le", "+Inf")]
        ),
        2.0
    );
    assert_eq!(
        after.get(
            "grpc_server_handled_total",
            &[
                ("grpc_service", "unknown"),
                ("grpc_method", "unknown"),
                ("grpc_code", "Unimplemented")
            ]
        ),
        1.0
    );
    assert!(
        !after.0.contains("NoSuchService"),
        "a caller's path must not become a label"
    );
    let watch = [
        ("grpc_type", "server_stream"),
        ("grpc_service", SESSIONS),
        ("grpc_method", "WatchSessions"),
    ];
    assert_eq!(after.get("grpc_server_started_total", &watch), 1.0);
    eventually("the dropped watch to count as Canceled", || async {
        let scraped = scrape(admin).await;
        let [t, s, m] = watch;
        (scraped.get(
            "grpc_server_handled_total",
            &[t, s, m, ("grpc_code", "Canceled")],
        ) == 1.0)
            .then_some(())
    })
    .await;
    server.stop().await;
}

/// Sessions, runs, watches, the log's revision and the replica's lease, as
/// gauges and counters that follow what the test does.
async fn sessions_runs_and_watches_are_measured(database: Option<String>) {
    let gate = Gate::default();
    let (server, admin) = server(database, &gate, |_| {}).await;
    let clientless = [("kind", "clientless")];
    let scraped = scrape(admin).await;
    assert_eq!(scraped.get("sessiond_open_sessions", &clientless), 0.0);
    assert_eq!(
        scraped.get("sessiond_open_sessions", &[("kind", "interactive")]),
        0.0
    );
    let revision = scraped.get("sessiond_event_revision", &[]);
    // The server's own lease, just renewed: its age is within the TTL.
    let node = Config::default().node_id;
    let age = scraped.get("sessiond_replica_lease_age_seconds", &[("replica", &node)]);
    assert!((0.0..=15.0).contains(&age), "lease age {age}");

    let mut sessions = server.sessions().await;
    let a = open(&mut sessions, "R41").await;
    let b = open(&mut sessions, "R42").await;
    sessions
        .start_session(pb::StartSessionRequest {
            user: "R43".into(),
            client: String::new(),
        })
        .await
        .unwrap();
    let scraped = scrape(admin).await;
    assert_eq!(scraped.get("sessiond_open_sessions", &clientless), 2.0);
    assert_eq!(
        scraped.get("sessiond_open_sessions", &[("kind", "interactive")]),
        1.0
    );
    assert_eq!(scraped.get("sessiond_event_revision", &[]), revision + 3.0);
    assert!(scraped.get("sessiond_store_commit_duration_seconds_count", &[]) >= 3.0);
    assert!(scraped.get("sessiond_store_commit_batch_size_count", &[]) >= 3.0);

    // A run held open, then released; another that fails.
    sessions
        .open_module(pb::OpenModuleRequest {
            session_id: a,
            module_id: "gate".into(),
            parameters: None,
        })
        .await
        .unwrap();
    assert_eq!(
        scrape(admin).await.get("sessiond_module_runs_running", &[]),
        1.0
    );
    gate.0.add_permits(1);
    let value = sessions
        .get_return_value(pb::GetReturnValueRequest {
            session_id: a,
            module_id: "gate".into(),
            timeout: Some(prost_types::Duration {
                seconds: 30,
                nanos: 0,
            }),
        })
        .await
        .unwrap();
    drop(value);
    let fail = prost_types::Struct {
        fields: [(
            "fail".to_owned(),
            prost_types::Value {
                kind: Some(prost_types::value::Kind::BoolValue(true)),
            },
        )]
        .into(),
    };
    sessions
        .open_module(pb::OpenModuleRequest {
            session_id: b,
            module_id: "gate".into(),
            parameters: Some(fail),
        })
        .await
        .unwrap();
    eventually("both runs to be counted", || async {
        let scraped = scrape(admin).await;
        (scraped.value("sessiond_module_runs_total", &[("state", "failed")]) == Some(1.0))
            .then_some(scraped)
    })
    .await;
    let scraped = scrape(admin).await;
    assert_eq!(
        scraped.get("sessiond_module_runs_total", &[("state", "succeeded")]),
        1.0
    );
    assert_eq!(scraped.get("sessiond_module_runs_running", &[]), 0.0);
    assert_eq!(
        scraped.get(
            "sessiond_module_run_duration_seconds_count",
            &[("state", "succeeded")]
        ),
        1.0
    );

    // Sessions going down, counted by reason.
    close(&mut sessions, a).await;
    let scraped = scrape(admin).await;
    assert_eq!(scraped.get("sessiond_open_sessions", &clientless), 1.0);
    assert_eq!(
        scraped.get(
            "sessiond_sessions_ended_total",
            &[("reason", "closed_by_client")]
        ),
        1.0
    );
    close(&mut sessions, b).await;
    let scraped = scrape(admin).await;
    assert_eq!(scraped.get("sessiond_open_sessions", &clientless), 0.0);
    assert_eq!(
        scraped.get(
            "sessiond_sessions_ended_total",
            &[("reason", "closed_by_client")]
        ),
        2.0
    );

    // A watch, counted while it runs.
    let mut watch = sessions
        .watch_sessions(pb::WatchSessionsRequest::default())
        .await
        .unwrap()
        .into_inner();
    eventually("the watch to be counted", || async {
        (scrape(admin).await.get("sessiond_watchers", &[]) == 1.0).then_some(())
    })
    .await;
    let _ = tokio::time::timeout(Duration::from_millis(100), watch.message()).await;
    drop(watch);
    eventually("the ended watch to be uncounted", || async {
        (scrape(admin).await.get("sessiond_watchers", &[]) == 0.0).then_some(())
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn sessions_runs_and_watches_are_measured_on_sqlite() {
    sessions_runs_and_watches_are_measured(None).await;
}

#[tokio::test]
#[cfg_attr(
    not(has_postgres),
    ignore = "no PostgreSQL (SESSIOND_TEST_POSTGRES_URL, or initdb, pg_ctl and psql): see README"
)]
async fn sessions_runs_and_watches_are_measured_on_postgres() {
    let database = super::common::postgres::fresh_database("operations_metrics").await;
    sessions_runs_and_watches_are_measured(Some(database)).await;
}

/// `/healthz` answers while the process runs; `/readyz` follows the gRPC
/// health status: ready while serving, 503 once a shutdown began (here held
/// open by a running module whose grace has not run out).
#[tokio::test]
async fn readiness_follows_the_health_status() {
    let gate = Gate::default();
    let (server, admin) = server(None, &gate, |config| {
        config.shutdown_grace = Duration::from_secs(120);
    })
    .await;
    assert_eq!(http_get(admin, "/healthz").await.0, 200);
    assert_eq!(http_get(admin, "/readyz").await.0, 200);
    assert_eq!(http_get(admin, "/nothing").await.0, 404);
    let mut sessions = server.sessions().await;
    let id = open(&mut sessions, "R41").await;
    sessions
        .open_module(pb::OpenModuleRequest {
            session_id: id,
            module_id: "gate".into(),
            parameters: None,
        })
        .await
        .unwrap();
    let stopping = tokio::spawn(server.stop());
    eventually("readiness to turn off at the shutdown", || async {
        (http_get(admin, "/readyz").await.0 == 503).then_some(())
    })
    .await;
    assert_eq!(http_get(admin, "/healthz").await.0, 200);
    let metrics: Scrape = scrape(admin).await;
    assert_eq!(metrics.get("sessiond_module_runs_running", &[]), 1.0);
    gate.0.add_permits(1);
    stopping.await.unwrap();
}

/// The Grafana dashboard in the repository asks only for metrics sessiond
/// serves.
#[tokio::test]
async fn the_dashboard_names_only_served_metrics() {
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/grafana/sessiond.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let (server, admin) = server(None, &Gate::default(), |_| {}).await;
    let scraped = scrape(admin).await;
    let families: Vec<&str> = scraped
        .0
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    let mut asked = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let names = expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|word| word.starts_with("grpc_server_") || word.starts_with("sessiond_"));
            for name in names {
                let family = ["_bucket", "_count", "_sum", "_total"]
                    .iter()
                    .find_map(|suffix| name.strip_suffix(suffix))
                    .unwrap_or(name);
                assert!(
                    families.contains(&family),
                    "the dashboard asks for {name}, which /metrics does not serve"
                );
                asked += 1;
            }
        }
    }
    assert!(asked >= 16, "the dashboard asks for {asked} metrics");
    server.stop().await;
}
