//! What the scenarios set up before they measure: the servers (the
//! baseline, the durable floor, sessiond; with TLS or authentication for
//! the `tls_*` and `auth_*` scenarios), and sessions created or looked up
//! through gRPC (with a bearer token when the server asks for one).

use std::ffi::OsString;
use std::path::Path;

use futures::{StreamExt, TryStreamExt};
use sessiond_proto::v1::session_service_client::SessionServiceClient;
use sessiond_proto::v1::{
    CloseClientlessSessionRequest, GetSessionUserRequest, OpenClientlessSessionRequest,
    StartSessionRequest,
};
use tonic::transport::Channel;

use super::Bench;
use crate::Result;
use crate::child::{self, Server};
use crate::credentials::{Credentials, TlsFiles};
use crate::load::{Bearer, request};
use crate::serve::NODE_ID;

/// Requests in flight while seeding and opening sessions.
pub(super) const SETUP_CONCURRENCY: usize = 64;

impl Bench {
    pub(super) async fn start_baseline(&self) -> Result<Server> {
        Server::start(
            "the baseline server",
            &child::args(["serve-baseline"]),
            self.server_core,
        )
        .await
    }

    /// The baseline serving TLS with `tls`'s certificate.
    pub(super) async fn start_baseline_tls(&self, tls: &TlsFiles) -> Result<Server> {
        let mut args = child::args(["serve-baseline"]);
        args.extend(tls.server_args());
        Ok(
            Server::start("the baseline over TLS", &args, self.server_core)
                .await?
                .over_tls(tls.client_config()),
        )
    }

    /// The durable floor: the baseline, answering writes once a log file
    /// `file` (in the run's directory) has made them durable.
    pub(super) async fn start_floor(&self, file: &str) -> Result<Server> {
        let args: Vec<OsString> = vec![
            "serve-baseline".into(),
            "--durable-log".into(),
            self.path(file).into(),
        ];
        Server::start("the durable floor", &args, self.server_core).await
    }

    pub(super) async fn start_sessiond(&self, database: &Path) -> Result<Server> {
        self.start_sessiond_on(&format!("sqlite://{}", database.display()), NODE_ID)
            .await
    }

    /// sessiond on `database` keeping `cached` sessions in memory (unless
    /// `--cached-sessions` was given: that one).
    pub(super) async fn start_sessiond_caching(
        &self,
        database: &Path,
        cached: usize,
    ) -> Result<Server> {
        let mut args = self.sessiond_args(&format!("sqlite://{}", database.display()), NODE_ID);
        if self.options.cached_sessions.is_none() {
            args.extend(["--cached-sessions".into(), cached.to_string().into()]);
        }
        Server::start("sessiond", &args, self.server_core).await
    }

    /// sessiond on `database`, authenticating its callers with
    /// `credentials` and enforcing their policy.
    pub(super) async fn start_sessiond_authenticating(
        &self,
        database: &Path,
        credentials: &Credentials,
    ) -> Result<Server> {
        let mut args = self.sessiond_args(&format!("sqlite://{}", database.display()), NODE_ID);
        args.extend(credentials.server_args());
        Server::start("sessiond with authentication", &args, self.server_core).await
    }

    /// sessiond on `database`, serving TLS with `tls`'s certificate (no
    /// authentication).
    pub(super) async fn start_sessiond_tls(
        &self,
        database: &Path,
        tls: &TlsFiles,
    ) -> Result<Server> {
        let mut args = self.sessiond_args(&format!("sqlite://{}", database.display()), NODE_ID);
        args.extend(tls.server_args());
        Ok(Server::start("sessiond over TLS", &args, self.server_core)
            .await?
            .over_tls(tls.client_config()))
    }

    /// sessiond on `database` recording no event log.
    pub(super) async fn start_sessiond_without_event_log(&self, database: &Path) -> Result<Server> {
        let mut args = self.sessiond_args(&format!("sqlite://{}", database.display()), NODE_ID);
        args.push("--no-event-log".into());
        Server::start("sessiond without the event log", &args, self.server_core).await
    }

    /// sessiond on the database `url` as node `node_id`.
    pub(super) async fn start_sessiond_on(&self, url: &str, node_id: &str) -> Result<Server> {
        let args = self.sessiond_args(url, node_id);
        Server::start("sessiond", &args, self.server_core).await
    }

    /// sessiond on `database` without metrics (no admin listener).
    pub(super) async fn start_sessiond_without_metrics(&self, database: &Path) -> Result<Server> {
        let args: Vec<OsString> = self
            .sessiond_args(&format!("sqlite://{}", database.display()), NODE_ID)
            .into_iter()
            .filter(|arg| arg != "--metrics")
            .collect();
        Server::start("sessiond without metrics", &args, self.server_core).await
    }

    /// The arguments of sessiond on the database `url` as node `node_id`,
    /// operated as deployed: metrics on, the log at `info` in a file of the
    /// run's directory (named after the database).
    fn sessiond_args(&self, url: &str, node_id: &str) -> Vec<OsString> {
        let log = self.path(&format!(
            "{}-{node_id}.log",
            url.rsplit(['/', '\\']).next().unwrap_or("sessiond")
        ));
        let mut args: Vec<OsString> = vec![
            "serve-sessiond".into(),
            "--database".into(),
            url.into(),
            "--node-id".into(),
            node_id.into(),
            "--modules".into(),
            self.manifest.clone().into(),
            "--metrics".into(),
            "--log-file".into(),
            log.into(),
        ];
        if let Some(cached) = self.options.cached_sessions {
            args.extend(["--cached-sessions".into(), cached.to_string().into()]);
        }
        args
    }
}

async fn client(server: &Server) -> Result<SessionServiceClient<Channel>> {
    let channel = server.connect(1).await?.remove(0);
    Ok(SessionServiceClient::new(channel))
}

/// Creates `count` interactive sessions through `StartSession`, each call
/// carrying `bearer` if given.
pub(super) async fn start_sessions(
    server: &Server,
    count: u64,
    bearer: Option<&Bearer>,
) -> Result<Vec<i64>> {
    let client = client(server).await?;
    let ids: Vec<i64> = futures::stream::iter(0..count)
        .map(|i| {
            let mut client = client.clone();
            async move {
                client
                    .start_session(request(
                        bearer,
                        StartSessionRequest {
                            user: format!("user-{}", i % 1000),
                            client: "sessiond-bench".to_owned(),
                        },
                    ))
                    .await
                    .map(|r| r.into_inner().session_id)
            }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_collect()
        .await
        .map_err(|s| format!("StartSession: {:?}: {}", s.code(), s.message()))?;
    Ok(ids)
}

/// Calls `GetSessionUser` once for every session of `ids`.
pub(super) async fn look_up_all(server: &Server, ids: &[i64]) -> Result<()> {
    let client = client(server).await?;
    futures::stream::iter(ids.iter().copied())
        .map(|session_id| {
            let mut client = client.clone();
            async move {
                client
                    .get_session_user(GetSessionUserRequest { session_id })
                    .await
                    .map(drop)
            }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await
        .map_err(|s| format!("GetSessionUser: {:?}: {}", s.code(), s.message()))?;
    Ok(())
}

/// Opens `count` clientless sessions (users `<prefix>-0…999`), each call
/// carrying `bearer` if given.
pub(super) async fn open_sessions(
    server: &Server,
    count: usize,
    prefix: &str,
    bearer: Option<&Bearer>,
) -> Result<Vec<i64>> {
    let client = client(server).await?;
    let ids: Vec<i64> = futures::stream::iter(0..count)
        .map(|i| {
            let mut client = client.clone();
            let user = format!("{prefix}-{}", i % 1000);
            async move {
                client
                    .open_clientless_session(request(bearer, OpenClientlessSessionRequest { user }))
                    .await
                    .map(|r| r.into_inner().session_id)
            }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_collect()
        .await
        .map_err(|s| format!("OpenClientlessSession: {:?}: {}", s.code(), s.message()))?;
    Ok(ids)
}

/// Opens and closes `count` clientless sessions.
pub(super) async fn open_close_cycles(server: &Server, count: u64) -> Result<()> {
    let client = client(server).await?;
    futures::stream::iter(0..count)
        .map(|i| {
            let mut client = client.clone();
            async move {
                let id = client
                    .open_clientless_session(OpenClientlessSessionRequest {
                        user: format!("warm-{}", i % 1000),
                    })
                    .await?
                    .into_inner()
                    .session_id;
                client
                    .close_clientless_session(CloseClientlessSessionRequest {
                        session_id: id,
                        grace: None,
                    })
                    .await?;
                Ok::<_, tonic::Status>(())
            }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await
        .map_err(|s| format!("warm-up open+close: {:?}: {}", s.code(), s.message()))?;
    Ok(())
}
